"""Data loading: training windows read from HDF5 against the same windows held in memory.

A generated 1D Burgers dataset (N=64, 16 simulations x 21 frames, 2-step windows: 304 windows) is
read three ways, each through a ``DataLoader`` with batch 32, shuffled:

* **in memory**: a ``TensorDataset`` of all windows (the reference: no reads at all);
* **HDF5, cached**: ``HybridDataset`` over ``DataManager`` with its default LRU budget (every
  trajectory is read once, then served from memory);
* **HDF5, streaming**: ``DataManager(cache_mb=0)``: every window is read from the file's chunks
  (what a dataset larger than the cache does).

Two measurements per way: one pass of the loader alone (read throughput), and one epoch of
``SyntheticTrainer`` (UNet) fed by it. The issue's target is on the second: data loading is not
the bottleneck when a training epoch fed from HDF5 takes at most ~10% longer than one fed from
memory (ratio in-memory / HDF5 >= 0.9).

Run:  .venv/bin/python benchmarks/bench_data_loading.py [--quick] [--threads 1]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from _common import Row, interleaved, ms, paired_ratio, setup
from hybridkit import GridSpec
from hybridkit.data import DataManager, HybridDataset, generate_dataset, make_loader
from hybridkit.models import UNet
from hybridkit.physics import Burgers
from hybridkit.training import SyntheticTrainer

RES, SIMS, FRAMES, STEPS, BATCH = 64, 16, 21, 2, 32


def loaders(path: Path) -> dict:
    """The three loaders over the same windows, with the same shuffling seed."""
    cached = HybridDataset(DataManager(path), range(SIMS), num_predict_steps=STEPS)
    streaming = HybridDataset(DataManager(path, cache_mb=0), range(SIMS), num_predict_steps=STEPS)
    items = [cached[i] for i in range(len(cached))]
    memory = TensorDataset(torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]))
    return {
        "memory": DataLoader(memory, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)),
        "hdf5": make_loader(cached, batch_size=BATCH, seed=0),
        "streaming": make_loader(streaming, batch_size=BATCH, seed=0),
    }


def measure(path: Path, repeats: int) -> dict:
    lds = loaders(path)

    def read(loader):
        return lambda: sum(len(b[0]) for b in loader)

    reads = interleaved({k: read(v) for k, v in lds.items()}, repeats)
    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=1, features=16, levels=2)
    trainers = {k: SyntheticTrainer({"num_predict_steps": STEPS, "device": "auto"}, copy.deepcopy(net))
                for k in lds}

    def epoch(k):
        return lambda: trainers[k].train(lds[k], 1, progress=False)

    epochs = interleaved({k: epoch(k) for k in lds}, repeats)
    return {"read": reads, "epoch": epochs, "windows": len(lds["memory"].dataset)}


def suite(quick: bool = False) -> list:
    """Rows for ``run_all.py``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = generate_dataset(Burgers(GridSpec((RES,), (100.0,))), Path(tmp) / "b.h5", num_sims=SIMS,
                                num_frames=FRAMES, progress=False)
        r = measure(path, 5 if quick else 11)
    rd, ep, n = r["read"], r["epoch"], r["windows"]
    med = statistics.median
    rows = []
    for k, label in (("hdf5", "cached"), ("streaming", "streaming, cache_mb=0")):
        ratio = paired_ratio(rd["memory"], rd[k])
        rows.append(Row(f"loader pass, HDF5 {label} ({n} windows)", f"{ms(med(rd[k]))} ({1e6 * med(rd[k]) / n:.0f} us/window)",
                        f"in memory {ms(med(rd['memory']))}", ratio, "report", None,
                        "reads alone, no training"))
    for k, label in (("hdf5", "cached"), ("streaming", "streaming")):
        ratio = paired_ratio(ep["memory"], ep[k])
        rows.append(Row(f"training epoch fed from HDF5 {label}", ms(med(ep[k])),
                        f"fed from memory {ms(med(ep['memory']))}", ratio, ">= 0.9 (not the bottleneck)",
                        ratio >= 0.9, "UNet, 1D N=64, batch 32"))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    setup(args.threads)
    for row in suite(args.quick):
        print(f"{row.benchmark:55s} {row.hybridkit:>28s}  vs {row.reference:28s} ratio {row.ratio:5.2f}  {row.note}")


if __name__ == "__main__":
    main()
