"""Worker that tests/test_distributed.py runs under ``torchrun`` (not a test itself).

    torchrun --nproc_per_node=2 tests/ddp_worker.py synthetic DATA.h5 OUT_DIR
    torchrun --nproc_per_node=2 tests/ddp_worker.py hybrid DATA.h5 OUT_DIR

Each rank writes ``OUT_DIR/rank<r>.npz``: the network's weights, the epoch losses and (hybrid) the
physical estimate. The same functions run the single-process reference in the test itself.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from hybridkit import GridSpec
from hybridkit.data import CacheManager, DataManager, HybridDataset, generate_dataset
from hybridkit.models import UNet
from hybridkit.physics import Burgers, learnable
from hybridkit.training import (HybridConfig, HybridTrainer, PhysicalTrainer, SyntheticTrainer,
                                cleanup_distributed, distributed_loader, init_distributed)

GLOBAL_BATCH = 12
EPOCHS = 3
STEPS = 2


def model() -> Burgers:
    return Burgers(GridSpec((32,), (100.0,)), viscosity=0.5)


def make_data(path: Path) -> Path:
    """4 simulations x 11 frames: 4 x 9 = 36 two-step windows (3 global batches of 12)."""
    return generate_dataset(model(), path, num_sims=4, num_frames=11, seed=0, progress=False)


def dataset(path: Path) -> HybridDataset:
    return HybridDataset(DataManager(path), range(4), ["velocity"], num_predict_steps=STEPS)


class Float64(torch.nn.Module):
    """Computes in float64, takes and returns float32 (the data's dtype).

    In float32, Adam turns round-off (sums over 6 + 6 samples instead of 12) into weight differences
    of ~1e-4 relative after a few steps; in float64 the same comparison holds to ~1e-12, which shows
    that two ranks compute exactly what one process computes. The float32 loss and its gradient
    are per sample, so they do not depend on how the batch is split.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net.double()

    def forward(self, x):
        return self.net(x.double()).float()


def network() -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights on every rank (DDP broadcasts rank 0's anyway)
    return Float64(UNet(in_channels=1, out_channels=1, ndim=1, features=4, levels=1))


def run_synthetic(path: Path) -> dict:
    trainer = SyntheticTrainer({"num_predict_steps": STEPS, "learning_rate": 3e-3, "device": "cpu"}, network())
    run = trainer.train(distributed_loader(dataset(path), GLOBAL_BATCH, seed=7), EPOCHS, progress=False)
    out = {f"w/{k}": v.detach().cpu().numpy() for k, v in trainer.model.state_dict().items()}
    out["loss"] = np.asarray(run["loss"])
    return out


def run_hybrid(path: Path, cache: Path) -> dict:
    synthetic = SyntheticTrainer({"num_predict_steps": STEPS, "learning_rate": 3e-3, "device": "cpu"}, network())
    physical = PhysicalTrainer({"num_predict_steps": 5, "max_iterations": 30, "on_failure": "warn"}, model(),
                               [learnable("viscosity", 2.5)])
    cfg = HybridConfig(warmup_epochs=1, synthetic_epochs=2, physical_trajectories=2, batch_size=8, seed=1)
    hybrid = HybridTrainer(cfg, synthetic, physical, cache=CacheManager(cache))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit may end unconverged: the test compares, not judges
        hist = hybrid.train(dataset(path), 1, progress=False)
    out = {f"w/{k}": v.detach().cpu().numpy() for k, v in synthetic.model.state_dict().items()}
    out["loss"] = np.asarray(synthetic.history["loss"])
    out["viscosity"] = np.asarray(physical.params["viscosity"])
    out["reverted"] = np.asarray([hist[0].synthetic.reverted, hist[0].physical.reverted])
    return out


def main(argv: list[str]) -> None:
    mode, data, out = argv[0], Path(argv[1]), Path(argv[2])
    torch.set_num_threads(1)
    info = init_distributed(device="cpu")
    try:
        result = run_synthetic(data) if mode == "synthetic" else run_hybrid(data, out / "cache")
        np.savez(out / f"rank{info.rank}.npz", world_size=info.world_size, **result)
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main(sys.argv[1:])
