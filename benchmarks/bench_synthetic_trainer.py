"""Epoch time of ``SyntheticTrainer`` against a bare PyTorch loop on the same model and data.

Both train a copy of the same UNet with Adam on the same rollout MSE over the same ``DataLoader``
(in-memory windows of generated 1D Burgers data); epochs alternate between the two so that a
busy machine slows both alike. Prints the median epoch time of each and their ratio (target:
trainer / bare <= 1.10); also the median of the ratios of neighbouring epochs, which a
load that changes during the run disturbs less.

The suite also times one ``SyntheticTrainer`` epoch of the FNO (registry defaults: width 32,
16 modes, 4 layers) against the UNet above on the same windows, alternating (no target: it says
what choosing the FNO costs per epoch), and one epoch of the NeuralField (registry defaults)
against the same UNet on 10-step windows: the field's rollout loss is one evaluation at 10
times, the UNet's 10 compositions.

    .venv/bin/python benchmarks/bench_synthetic_trainer.py            # defaults below
    .venv/bin/python benchmarks/bench_synthetic_trainer.py --steps 4 --resolution 128 --repeats 15
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from hybridkit import GridSpec
from hybridkit.data import DataManager, HybridDataset, generate_dataset
from hybridkit.models import FNO, NeuralField, UNet
from hybridkit.training import SyntheticTrainer


def windows(resolution: int, sims: int, frames: int, steps: int) -> TensorDataset:
    """All sliding windows of a generated Burgers dataset, held in memory (no file reads timed)."""
    from hybridkit.physics import Burgers

    with tempfile.TemporaryDirectory() as tmp:
        path = generate_dataset(Burgers(GridSpec((resolution,), (100.0,)), dt=0.1, viscosity=0.5),
                                Path(tmp) / "b.h5", num_sims=sims, num_frames=frames, progress=False)
        with DataManager(path) as dm:
            ds = HybridDataset(dm, sim_indices=range(sims), num_predict_steps=steps)
            items = [ds[i] for i in range(len(ds))]
    return TensorDataset(torch.stack([a for a, _ in items]), torch.stack([b for _, b in items]))


def bare_epoch(model, optimizer, loader, steps: int, device) -> float:
    """The reference: the rollout loss written out in the plainest PyTorch."""
    model.train()
    total, n = 0.0, 0
    for initial, targets in loader:
        initial, targets = initial.to(device), targets.to(device)
        x, preds = initial, []
        for _ in range(steps):
            x = model(x)
            preds.append(x)
        loss = torch.mean((torch.stack(preds, 1) - targets[:, :steps]) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(initial)
        n += len(initial)
    return total / n


def measure(resolution=64, sims=16, frames=21, steps=2, batch_size=32, features=16, repeats=15,
            progress=False) -> dict:
    """Median epoch times of the trainer and the bare loop (same model copy, data, order, optimizer).

    Returns ``{"trainer": [s...], "bare": [s...], "same_loss": bool, "device", "windows"}``.
    """
    data = windows(resolution, sims, frames, steps)
    torch.manual_seed(0)
    model = UNet(in_channels=1, out_channels=1, features=features, levels=2)
    trainer = SyntheticTrainer({"learning_rate": 1e-3, "num_predict_steps": steps}, copy.deepcopy(model))
    device = trainer.device
    bare_model = copy.deepcopy(model).to(device)
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=1e-3)
    loader_t = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    loader_b = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = {"trainer": [], "bare": []}
    loss = loss_b = None
    for rep in range(repeats + 1):  # the first round warms up (allocator, caches) and is dropped
        for name in ("trainer", "bare") if rep % 2 == 0 else ("bare", "trainer"):
            sync()
            t0 = time.perf_counter()
            if name == "trainer":
                loss = trainer.train(loader_t, 1, progress=progress)["loss"][0]
            else:
                loss_b = bare_epoch(bare_model, bare_opt, loader_b, steps, device)
            sync()
            if rep:
                times[name].append(time.perf_counter() - t0)
    # Same model, data, order and optimizer: the two must also compute the same thing.
    same = abs(loss - loss_b) <= 1e-5 * max(abs(loss_b), 1e-12)
    return {**times, "same_loss": same, "loss": (loss, loss_b), "device": device, "windows": len(data)}


def measure_models(models: dict, resolution=64, sims=16, frames=21, steps=2, batch_size=32,
                   repeats=15) -> dict:
    """Median-ready epoch times of ``SyntheticTrainer`` on each of ``models`` (same windows, same
    trainer options), epochs alternating in rotating order. Returns ``name -> [s...]``."""
    data = windows(resolution, sims, frames, steps)
    trainers, loaders = {}, {}
    for name, model in models.items():
        trainers[name] = SyntheticTrainer({"learning_rate": 1e-3, "num_predict_steps": steps}, model)
        loaders[name] = DataLoader(data, batch_size=batch_size, shuffle=True,
                                   generator=torch.Generator().manual_seed(0))
    names, times = list(models), {name: [] for name in models}
    for rep in range(repeats + 1):  # round 0 warms up and is dropped
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            t0 = time.perf_counter()
            trainers[name].train(loaders[name], 1, progress=False)
            if trainers[name].device.type == "cuda":
                torch.cuda.synchronize()
            if rep:
                times[name].append(time.perf_counter() - t0)
    return times


def suite(quick: bool = False) -> list:
    """Rows for ``run_all.py``: epoch time, trainer vs bare loop (target: within 10%), and the
    FNO's and the NeuralField's epochs next to the UNet's (no target)."""
    from _common import Row, ms

    r = measure(repeats=7 if quick else 15)
    ratio = statistics.median(b / t for t, b in zip(r["trainer"], r["bare"]))
    assert r["same_loss"], f"trainer and bare loop computed different losses {r['loss']}"
    rows = [Row("SyntheticTrainer epoch (UNet, 1D N=64, batch 32, 2-step rollout)",
                ms(statistics.median(r["trainer"])), f"bare torch loop {ms(statistics.median(r['bare']))}",
                ratio, ">= 0.91 (within 10%)", ratio >= 1 / 1.1, "paired epochs; the same losses")]
    torch.manual_seed(0)
    models = {"FNO": FNO(in_channels=1, out_channels=1),
              "UNet": UNet(in_channels=1, out_channels=1, features=16, levels=2)}
    sizes = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    t = measure_models(models, repeats=7 if quick else 15)
    fno, unet = statistics.median(t["FNO"]), statistics.median(t["UNet"])
    rows.append(Row("SyntheticTrainer epoch, FNO vs UNet (1D N=64, batch 32, 2-step rollout)", ms(fno),
                    f"UNet {ms(unet)}", unet / fno, "none (the cost of choosing the FNO)", None,
                    f"ratio = UNet / FNO time; FNO width 32, 16 modes, 4 layers ({sizes['FNO']:,} "
                    f"parameters), UNet features 16, 2 levels ({sizes['UNet']:,})"))
    rows.append(_neural_field_row(quick))
    return rows


def _neural_field_row(quick: bool):
    from _common import Row, ms

    torch.manual_seed(0)
    models = {"NeuralField": NeuralField(in_channels=1, out_channels=1),
              "UNet": UNet(in_channels=1, out_channels=1, features=16, levels=2)}
    sizes = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    t = measure_models(models, sims=4, steps=10, repeats=3 if quick else 5)  # 44 windows: 2 batches
    field, unet = statistics.median(t["NeuralField"]), statistics.median(t["UNet"])
    return Row("SyntheticTrainer epoch, NeuralField vs UNet (1D N=64, 44 windows of 10 steps, batch 32)", ms(field),
               f"UNet {ms(unet)}", unet / field, "none (the cost of choosing the field)", None,
               f"ratio = UNet / field time; the field evaluates 10 times at once, the UNet composes 10 "
               f"steps; field defaults ({sizes['NeuralField']:,} parameters), UNet features 16 "
               f"({sizes['UNet']:,})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--sims", type=int, default=16)
    p.add_argument("--frames", type=int, default=21)
    p.add_argument("--steps", type=int, default=2, help="rollout steps of the loss")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--repeats", type=int, default=15, help="timed epochs of each")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: leave as is)")
    p.add_argument("--progress", action="store_true", help="time the trainer with its progress bar on")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = measure(args.resolution, args.sims, args.frames, args.steps, args.batch_size, args.features,
                args.repeats, args.progress)
    times = {k: r[k] for k in ("trainer", "bare")}
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"device {r['device']}, threads {torch.get_num_threads()}, {r['windows']} windows of {args.resolution} "
          f"cells, batch {args.batch_size}, {args.steps}-step rollout, UNet features={args.features}, "
          f"{args.repeats} epochs each")
    for k in ("trainer", "bare"):
        print(f"  {k:8s} median {med[k] * 1e3:8.1f} ms/epoch  (min {min(times[k]) * 1e3:.1f}, max {max(times[k]) * 1e3:.1f})")
    loss, loss_b = r["loss"]
    print(f"  last-epoch loss trainer {loss:.6e}, bare {loss_b:.6e} ({'equal' if r['same_loss'] else 'DIFFERENT'})")
    # each trainer epoch against the bare epoch next to it in time: robust to load that drifts
    paired = statistics.median(t / b for t, b in zip(times["trainer"], times["bare"]))
    print(f"ratio trainer / bare: {med['trainer'] / med['bare']:.3f} of the medians, "
          f"{paired:.3f} median of paired epochs  (target <= 1.10)")


if __name__ == "__main__":
    main()
