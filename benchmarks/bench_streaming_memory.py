"""Peak resident memory while training windows stream from an HDF5 file larger than the cache.

A 2D dataset (64x64 vector velocity, 32 frames per simulation, 1 MiB per trajectory) of
``--mib`` MiB (default 256) is written with :func:`hybridkit.data.write_trajectories` (random
values: only the bytes matter here), then a fresh Python process opens it with
``DataManager(cache_mb=--cache-mb)`` (default 32), wraps it in ``HybridDataset`` and iterates a
shuffled ``make_loader`` over every window once. That process reports its resident set before the
pass and its peak during it (``VmRSS`` / ``VmHWM`` of ``/proc/self/status``, the high-water mark
reset before the pass); the growth is what streaming costs. Holding the data in memory instead would cost the file's size.

Target: growth <= cache budget + 64 MiB (h5py's chunk cache, one batch, allocator slack),
whatever the file size.

Run:  .venv/bin/python benchmarks/bench_streaming_memory.py [--mib 256] [--cache-mb 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FRAMES, RES = 32, 64
SLACK_MIB = 64


def write_file(path: Path, mib: int) -> Path:
    """``mib`` MiB of finite random trajectories in the dataset format (written in slices)."""
    from hybridkit import GridSpec
    from hybridkit.data import write_trajectories
    from hybridkit.physics import Burgers

    model = Burgers(GridSpec((RES, RES), (100.0,)))
    per_sim = FRAMES * RES * RES * 2 * 4
    sims = max(1, mib * 2**20 // per_sim)
    rng = np.random.default_rng(0)
    velocity = rng.standard_normal((sims, FRAMES, RES, RES, 2), dtype=np.float32)
    write_trajectories(model, path, {"velocity": velocity})
    return path


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def child(path: str, cache_mb: float) -> None:
    """Runs in a fresh process: one shuffled pass over every window; prints JSON.

    The peak is the kernel's high-water mark ``VmHWM``, reset just before the pass (writing 5 to
    ``/proc/self/clear_refs``): ``ru_maxrss`` would still hold the parent's size at fork time.
    """
    import torch

    from hybridkit.data import DataManager, HybridDataset, make_loader

    torch.set_num_threads(1)
    dm = DataManager(path, cache_mb=cache_mb)
    ds = HybridDataset(dm, range(dm.num_sims), num_predict_steps=1)
    loader = make_loader(ds, batch_size=32, seed=0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS") * 1024
    t0 = time.perf_counter()
    n = 0
    for initial, _ in loader:
        n += len(initial)
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM") * 1024
    info = dm.cache_info()
    print(json.dumps({"before": before, "peak": peak, "windows": n, "seconds": seconds,
                      "hits": info["hits"], "misses": info["misses"], "cached_bytes": info["bytes"]}))


def measure(mib: int, cache_mb: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_file(Path(tmp) / "big.h5", mib)
        size = path.stat().st_size
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(path), str(cache_mb)],
                             capture_output=True, text=True, check=True, cwd=HERE)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["file"] = size
    r["growth"] = max(r["peak"] - r["before"], 0)
    return r


def suite(quick: bool = False) -> list:
    """Row for ``run_all.py``."""
    from _common import Row

    mib, cache = (128, 16) if quick else (256, 32)
    r = measure(mib, cache)
    growth, size = r["growth"] / 2**20, r["file"] / 2**20
    limit = cache + SLACK_MIB
    return [Row(f"streaming read, {size:.0f} MiB file, cache_mb={cache}", f"peak RSS +{growth:.0f} MiB",
                f"in memory: {size:.0f} MiB (the file)", size / max(growth, 1e-9),
                f"growth <= {limit} MiB", growth <= limit,
                f"ratio = file / growth; {r['windows']} windows in {r['seconds']:.1f} s, "
                f"{r['hits']} cache hits / {r['misses']} misses")]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1], float(argv[2]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=256, help="file size in MiB")
    p.add_argument("--cache-mb", type=float, default=32, help="DataManager cache budget")
    args = p.parse_args(argv)
    r = measure(args.mib, args.cache_mb)
    mib = 2**20
    print(f"file {r['file'] / mib:.0f} MiB, cache budget {args.cache_mb:g} MiB: RSS before the pass "
          f"{r['before'] / mib:.0f} MiB, peak {r['peak'] / mib:.0f} MiB, growth {r['growth'] / mib:.0f} MiB; "
          f"{r['windows']} windows in {r['seconds']:.1f} s ({r['hits']} hits, {r['misses']} misses)")


if __name__ == "__main__":
    main()
