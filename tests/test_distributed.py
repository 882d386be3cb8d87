"""Data-parallel training: 2 CPU processes under torchrun (gloo, loopback) give the result of one
process with the same global batch."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

import ddp_worker as worker
from hybridkit.training import distributed_loader
from hybridkit.training._distributed import broadcast_json

HERE = Path(__file__).parent
# relative L2 over all weights; the networks compute in float64 (see ddp_worker.Float64): the
# float32 data path and loss are unchanged, only round-off inside the network is made negligible
RTOL = 1e-9
LOSS_RTOL = 1e-6  # epoch losses are float32 sums over the batches


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return worker.make_data(tmp_path_factory.mktemp("ddp") / "data.h5")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(mode: str, data: Path, out: Path, nproc: int = 2) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(HERE / "ddp_worker.py"),
           mode, str(data), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(nproc)]


def _assert_same_weights(a: dict, b: dict, rtol: float = RTOL):
    keys = [k for k in a if k.startswith("w/")]
    assert keys and keys == [k for k in b if k.startswith("w/")]
    wa, wb = (np.concatenate([d[k].ravel() for k in keys]) for d in (a, b))
    err = np.linalg.norm(wa - wb) / np.linalg.norm(wa)
    assert err <= rtol, f"weights differ by {err:.2e} (relative L2), tolerance {rtol:.0e}"


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_the_global_batch(data, tmp_path):
    ranks = _torchrun("synthetic", data, tmp_path / "out")
    assert [int(r["world_size"]) for r in ranks] == [2, 2]
    # DDP keeps the replicas identical: the same weights and the same (all-reduced) losses
    _assert_same_weights(ranks[0], ranks[1], rtol=0)
    np.testing.assert_array_equal(ranks[0]["loss"], ranks[1]["loss"])

    torch.set_num_threads(1)
    single = worker.run_synthetic(data)  # no process group: a plain single process, batch 12
    _assert_same_weights(ranks[0], single)
    np.testing.assert_allclose(ranks[0]["loss"], single["loss"], rtol=LOSS_RTOL)
    assert single["loss"][-1] < single["loss"][0]  # it did train


@pytest.mark.slow
def test_hybrid_cycle_on_two_ranks_matches_one_rank(data, tmp_path):
    ranks = _torchrun("hybrid", data, tmp_path / "out")
    # the physical fit ran on rank 0 and was broadcast: bit-identical estimates
    assert float(ranks[0]["viscosity"]) == float(ranks[1]["viscosity"])
    _assert_same_weights(ranks[0], ranks[1], rtol=0)

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        single = worker.run_hybrid(data, tmp_path / "cache1")
    finally:
        dist.destroy_process_group()
    _assert_same_weights(ranks[0], single)
    np.testing.assert_allclose(ranks[0]["loss"], single["loss"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(float(ranks[0]["viscosity"]), float(single["viscosity"]), rtol=1e-4)
    np.testing.assert_array_equal(ranks[0]["reverted"], single["reverted"])
    assert abs(float(single["viscosity"]) - 0.5) < abs(2.5 - 0.5)  # the fit moved towards the truth


def test_distributed_loader_shards_each_global_batch(data):
    ds = worker.dataset(data)
    whole = [b[0] for b in distributed_loader(ds, 12, seed=3)]
    assert [len(b) for b in whole] == [12, 12, 12]
    again = [b[0] for b in distributed_loader(ds, 12, seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(whole, again))  # the order depends on the seed only
    with pytest.raises(ValueError, match="multiple of the world size"):
        distributed_loader(ds, 0)


def test_single_process_helpers_are_no_ops():
    assert broadcast_json({"a": [1.5]}) == {"a": [1.5]}


TINY = """\
name: tiny_ddp
mode: compare
cycles: 1
data:
  pde: Burgers
  pde_params: {resolution: [32], domain_size: [100.0], boundary: periodic, dt: 0.1, viscosity: 0.5}
  num_train: 4
  num_test: 2
  num_frames: 11
synthetic:
  model: UNet
  model_params: {features: 4, levels: 1}
  trainer_params: {learning_rate: 0.003, num_predict_steps: 2}
  batch_size: 8
  epochs: 2
physical:
  initial: {viscosity: 2.5}
  trainer_params: {num_predict_steps: 5, max_iterations: 30}
hybrid: {warmup_epochs: 1, synthetic_epochs: 1, physical_trajectories: 2, batch_size: 8}
evaluate: {steps: 5}
"""


@pytest.mark.slow
def test_experiment_runner_under_torchrun(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "HYBRIDKIT_DATA": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "hybridkit", "run", str(config),
           "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("results in") == 1 and proc.stdout.count("[hybrid]") == 1  # rank 0 speaks
    result = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(result["modes"]) == {"physical", "synthetic", "hybrid"}
    assert abs(result["modes"]["hybrid"]["params"]["viscosity"] - 0.5) < 1e-3
    assert result["modes"]["synthetic"]["loss"][-1] < result["modes"]["synthetic"]["loss"][0]
