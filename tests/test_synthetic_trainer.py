"""SyntheticTrainer: rollout loss, persistence across train() calls, checkpoints, reproducibility."""
import math
import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hybridkit._config import ConfigError
from hybridkit.models import ConvNet, ResNet, UNet
from hybridkit.training import SyntheticConfig, SyntheticTrainer


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)


def shift_data(n=32, size=16, steps=4, static=False, seed=0):
    """Periodic advection by one cell per step, ``u_{t+1} = roll(u_t, 1)`` (+ optionally a static
    channel ``c`` that is added: ``u_{t+1} = roll(u_t, 1) + 0.1 c``). Returns (initial, targets)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 1, size, generator=g)
    c = torch.randn(n, 1, size, generator=g)
    frames, x = [], u
    for _ in range(steps):
        x = torch.roll(x, 1, -1) + (0.1 * c if static else 0)
        frames.append(x)
    initial = torch.cat([u, c], 1) if static else u
    return initial, torch.stack(frames, 1)


def loader(data, batch_size=8, seed=0, shuffle=True):
    return DataLoader(TensorDataset(*data), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed))


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_same_params(a, b):
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


FULL_OPTIONS = {  # every stateful feature at once: schedule switch, noise, decaying LR, clipping
    "learning_rate": 3e-3, "num_predict_steps": 1, "rollout_schedule": [(0, 1), (3, 2), (7, 3)],
    "noise_std": 0.01, "lr_schedule": "exponential", "lr_gamma": 0.9, "grad_clip": 1.0, "seed": 1,
}


def make_trainer(options=FULL_OPTIONS, model_seed=0, static=False):
    torch.manual_seed(model_seed)
    model = ResNet(in_channels=2 if static else 1, out_channels=1, width=8, depth=2)
    return SyntheticTrainer({"trainer_params": dict(options)}, model)


# ---------------------------------------------------------------- the loss
class Scale(nn.Module):
    """``u -> a u + b c`` on (dynamic u, static c): the rollout after k steps is known in closed form."""

    def __init__(self, a=0.5, b=0.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return self.a * x[:, :1] + self.b * x[:, 1:2]


def test_loss_is_the_mean_rollout_mse_with_gradients_through_the_rollout():
    u, c = torch.randn(4, 1, 8), torch.randn(4, 1, 8)
    targets = torch.randn(4, 3, 1, 8)
    model = Scale(a=0.7, b=0.2)
    trainer = SyntheticTrainer({"num_predict_steps": 3}, model)
    loss, n = trainer._batch_loss((torch.cat([u, c], 1), targets), 3)
    loss.backward()

    a, b = torch.tensor(0.7, requires_grad=True), torch.tensor(0.2, requires_grad=True)
    x, expected = u, 0.0
    for k in range(3):  # u_{k+1} = a u_k + b c, the static c fed back unchanged
        x = a * x + b * c
        expected = expected + ((x - targets[:, k]) ** 2).mean() / 3
    expected.backward()
    torch.testing.assert_close(loss, expected)
    assert n == 4
    # a detached rollout would give d loss / d a without the chain through earlier steps
    torch.testing.assert_close(model.a.grad, a.grad)
    torch.testing.assert_close(model.b.grad, b.grad)


def test_a_known_linear_step_is_recovered():
    """Data from u_{t+1} = 0.9 u_t + 0.3 c: training on 3-step rollouts recovers a=0.9, b=0.3."""
    u, c = torch.randn(64, 1, 8), torch.randn(64, 1, 8)
    frames, x = [], u
    for _ in range(3):
        x = 0.9 * x + 0.3 * c
        frames.append(x)
    model = Scale(a=0.5, b=0.0)
    trainer = SyntheticTrainer({"learning_rate": 0.05, "num_predict_steps": 3}, model)
    hist = trainer.train(loader((torch.cat([u, c], 1), torch.stack(frames, 1)), batch_size=16), 60, progress=False)
    assert hist["loss"][-1] < 1e-6 < hist["loss"][0]
    assert abs(model.a.item() - 0.9) < 1e-3 and abs(model.b.item() - 0.3) < 1e-3


def test_per_sample_weights_give_a_weighted_mean():
    initial, targets = shift_data(n=4, steps=2)
    trainer = make_trainer({"num_predict_steps": 2})
    full, _ = trainer._batch_loss((initial, targets), 2)
    per_sample = [trainer._batch_loss((initial[i:i + 1], targets[i:i + 1]), 2)[0] for i in range(4)]
    w = torch.tensor([1.0, 0.0, 3.0, 0.0])
    weighted, total = trainer._batch_loss((initial, targets, w), 2)
    torch.testing.assert_close(weighted, (per_sample[0] + 3 * per_sample[2]) / 4)
    torch.testing.assert_close(full, sum(per_sample) / 4)
    assert total == 4.0
    with pytest.raises(ValueError, match=r"weight of shape \(4,\)"):
        trainer._batch_loss((initial, targets, -w), 2)


def test_zero_weight_samples_do_not_change_the_gradient():
    """Corrupted samples with weight 0 leave loss and gradient as without them."""
    initial, targets = shift_data(n=8, steps=2)
    trainer = make_trainer({"num_predict_steps": 2})

    def loss_and_grads(batch):
        trainer.model.zero_grad()
        loss, _ = trainer._batch_loss(batch, 2)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in trainer.model.parameters()]

    clean = loss_and_grads((initial, targets, torch.ones(8)))
    both = (torch.cat([initial, initial]), torch.cat([targets, targets + 100.0]),
            torch.cat([torch.ones(8), torch.zeros(8)]))
    mixed = loss_and_grads(both)
    torch.testing.assert_close(mixed[0], clean[0])
    for g, h in zip(clean[1], mixed[1]):
        torch.testing.assert_close(g, h)


def test_noise_goes_to_dynamic_channels_only_and_is_seeded():
    """A model that returns the static channel: noise on the dynamic channel cannot change its loss."""
    initial, _ = shift_data(n=8, steps=1, static=True)
    targets = initial[:, 1:2, None].expand(8, 2, 1, 16)
    trainer = SyntheticTrainer({"noise_std": 1.0, "num_predict_steps": 2}, Scale(a=0.0, b=1.0))
    assert trainer._batch_loss((initial, targets), 2)[0].item() == 0.0

    def noisy_loss(seed):
        t = SyntheticTrainer({"noise_std": 0.1, "seed": seed}, Scale(a=1.0, b=0.0))
        return t._batch_loss((initial, initial[:, None, :1]), 1)[0].item()
    assert noisy_loss(0) == noisy_loss(0) > 0
    assert noisy_loss(0) != noisy_loss(1)
    assert noisy_loss(0) == pytest.approx(0.01, rel=0.2)  # E[noise^2] = std^2


# ---------------------------------------------------------------- persistence
def test_two_train_calls_of_5_epochs_equal_one_of_10():
    data = shift_data(static=True)
    once = make_trainer(static=True)
    h10 = once.train(loader(data), 10, progress=False)
    twice = make_trainer(static=True)
    dl = loader(data)  # the same loader object: its generator continues, same data order
    h5a = twice.train(dl, 5, progress=False)
    h5b = twice.train(dl, 5, progress=False)
    assert_same_params(params_of(once.model), params_of(twice.model))
    assert h10["loss"] == h5a["loss"] + h5b["loss"]
    assert once.history == twice.history and twice.epoch == 10
    # the schedule follows the global epoch counter, across calls
    assert twice.history["rollout_steps"] == [1, 1, 1, 2, 2, 2, 2, 3, 3, 3]
    assert twice.history["lr"] == pytest.approx([3e-3 * 0.9**e for e in range(10)])


def test_checkpoint_reloaded_continues_identically(tmp_path):
    data = shift_data(static=True)
    ref = make_trainer(static=True)
    dl = loader(data)
    ref.train(dl, 5, progress=False)
    path = ref.save_checkpoint(tmp_path / "ckpt" / "syn.pt")
    order_state = dl.generator.get_state()  # the data order is the loader's, not the trainer's
    ref.train(dl, 5, progress=False)
    assert os.listdir(tmp_path / "ckpt") == ["syn.pt"]  # no temporary file left behind

    resumed = make_trainer(static=True, model_seed=123)  # other initial weights: all come from the file
    resumed.load_checkpoint(path)
    assert resumed.epoch == 5 and len(resumed.history["loss"]) == 5
    dl2 = loader(data)
    dl2.generator.set_state(order_state)
    resumed.train(dl2, 5, progress=False)
    assert_same_params(params_of(ref.model), params_of(resumed.model))
    assert ref.history == resumed.history


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    trainer = SyntheticTrainer({}, UNet(in_channels=1, out_channels=1, features=4))
    path = trainer.save_checkpoint(tmp_path / "unet.pt")
    for other in (UNet(in_channels=1, out_channels=1, features=8), ConvNet(in_channels=1, out_channels=1)):
        with pytest.raises(ValueError, match=r"holds a UNet.*features.: 4.*Fix: build the model"):
            SyntheticTrainer({}, other).load_checkpoint(path)
    with pytest.raises(ValueError, match="optimizer='adam'"):
        SyntheticTrainer({"optimizer": "adamw"}, UNet(in_channels=1, out_channels=1, features=4)).load_checkpoint(path)
    torch.save({"model": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a SyntheticTrainer checkpoint"):
        trainer.load_checkpoint(tmp_path / "other.pt")


def test_seeded_runs_are_bit_identical_and_seeds_matter():
    data = shift_data(static=True)

    def run(model_seed=0, loader_seed=0):
        t = make_trainer(static=True, model_seed=model_seed)
        t.train(loader(data, seed=loader_seed), 4, progress=False)
        return params_of(t.model), t.history["loss"]

    (p1, l1), (p2, l2) = run(), run()
    assert_same_params(p1, p2) and l1 == l2
    assert l1 != run(loader_seed=1)[1]
    assert l1 != run(model_seed=1)[1]


# ---------------------------------------------------------------- schedules, config, errors
@pytest.mark.parametrize("schedule,expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0]), ("exponential", [1.0, 0.5, 0.25, 0.125]),
    ("step", [1.0, 1.0, 0.5, 0.5]), ("cosine", [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]),
])
def test_lr_schedules_step_once_per_epoch(schedule, expected):
    trainer = make_trainer({"learning_rate": 1.0, "lr_schedule": schedule, "lr_gamma": 0.5, "lr_period": 2 if schedule == "step" else 4})
    dl = loader(shift_data(n=8, steps=1))
    trainer.train(dl, 2, progress=False)
    trainer.train(dl, 2, progress=False)
    assert trainer.history["lr"] == pytest.approx(expected)


def test_seed_layout_config_is_read_from_trainer_params():
    config = {
        "run_params": {"model_type": "synthetic"},
        "model": {"synthetic": {"name": "UNet"}},
        "data": {"fields": ["velocity"]},
        "trainer_params": {"train_sim": [0, 1], "batch_size": 32, "epochs": 100, "num_predict_steps": 4,
                           "learning_rate": 0.002},
    }
    trainer = SyntheticTrainer(config, ConvNet(in_channels=1, out_channels=1))
    # epochs, batch_size, train_sim: read by the code that builds the data and calls train(), so the
    # trainer accepts and ignores them (as it does the physical trainer's keys)
    assert trainer.config == SyntheticConfig(learning_rate=0.002, num_predict_steps=4)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.002
    with pytest.raises(ConfigError, match=r"'learnig_rate' \(did you mean 'learning_rate'\?\).*Known keys"):
        SyntheticTrainer({"trainer_params": {"learnig_rate": 1e-3}}, ConvNet(in_channels=1, out_channels=1))
    with pytest.raises(ConfigError, match="no 'trainer_params' section"):
        SyntheticTrainer({"model": {}, "data": {}}, ConvNet(in_channels=1, out_channels=1))
    for bad in ([(5, 2), (0, 1)], [(0, 1), (0, 2)], [(0, 0)], [3]):
        with pytest.raises(ValueError, match="rollout_schedule"):
            SyntheticConfig(rollout_schedule=bad)


def test_device_is_chosen_not_hard_coded():
    trainer = make_trainer({})
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert trainer.device.type == expected
    assert all(p.device.type == expected for p in trainer.model.parameters())
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            make_trainer({"device": "cuda"})


def test_data_errors_say_how_to_fix_them():
    trainer = make_trainer({"num_predict_steps": 3})
    initial, targets = shift_data(n=8, steps=2)
    with pytest.raises(ValueError, match="needs 3 target steps.*num_predict_steps >= 3"):
        trainer.train(loader((initial, targets)), 1, progress=False)
    with pytest.raises(TypeError, match="make_loader"):
        trainer.train(TensorDataset(initial, targets), 1, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        trainer.train([], 1, progress=False)
    with pytest.raises(ValueError, match=r"initial \(B, C_in, \*space\)"):
        trainer.train([(initial[0], targets[0])], 1, progress=False)


# ---------------------------------------------------------------- on generated datasets
@pytest.fixture(scope="module")
def burgers_file(tmp_path_factory):
    """1D Burgers, x in [0, 100) periodic, N=64, dt=0.1, nu=0.5: 10 simulations of 21 frames."""
    from hybridkit import GridSpec
    from hybridkit.data import generate_dataset
    from hybridkit.physics import Burgers

    model = Burgers(GridSpec((64,), (100.0,)), dt=0.1, viscosity=0.5)
    return generate_dataset(model, tmp_path_factory.mktemp("burgers") / "burgers.h5", num_sims=10,
                            num_frames=21, seed=0, progress=False)


def all_items(dataset):
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


@pytest.mark.slow
def test_unet_learns_burgers_on_held_out_simulations(burgers_file):
    """One-step relative L2 on 2 held-out simulations after 20 epochs on 8: measured 4.6e-4 to
    7.1e-4 over model seeds 0..3 (the identity step: 6.6e-3); the bound 2e-3 leaves a margin of ~3."""
    from hybridkit.data import DataManager, HybridDataset, make_loader
    from hybridkit.metrics import rollout_errors

    dm = DataManager(burgers_file)
    train = HybridDataset(dm, sim_indices=range(8), num_predict_steps=1)
    x1, y1 = all_items(HybridDataset(dm, sim_indices=[8, 9], num_predict_steps=1))
    x10, y10 = all_items(HybridDataset(dm, sim_indices=[8, 9], num_predict_steps=10))
    model = UNet(in_channels=1, out_channels=1, features=8, levels=2)
    trainer = SyntheticTrainer({"learning_rate": 3e-3, "lr_schedule": "cosine", "lr_period": 20}, model)
    history = trainer.train(make_loader(train, batch_size=16, seed=0), 20, progress=False)

    one_step = rollout_errors(model, x1, y1).item()
    ten_step = rollout_errors(model, x10, y10)
    identity_one, identity_ten = rollout_errors(lambda x: x, x1, y1).item(), rollout_errors(lambda x: x, x10, y10)[-1].item()
    print(f"\nUNet on Burgers 1D, held-out: one-step rel. L2 {one_step:.2e} (identity {identity_one:.2e}); "
          f"10-step rollout rel. L2 {ten_step[-1]:.2e} (identity {identity_ten:.2e}); "
          f"per step {[round(e, 5) for e in ten_step.tolist()]}")
    assert history["loss"][-1] < 0.01 * history["loss"][0]
    assert one_step < 2e-3 and one_step < 0.3 * identity_one
    assert ten_step[-1] < 0.3 * identity_ten  # errors accumulate, but stay far below standing still


def test_seed_usage_block_runs(tmp_path):
    """The seed's SyntheticTrainer usage (phase1-migration.md), ``src`` read as ``hybridkit``, on a
    diffusion dataset with a spatially varying diffusivity: a static input channel."""
    import numpy as np

    from hybridkit import GridSpec
    from hybridkit.data import generate_dataset
    from hybridkit.physics import Diffusion

    grid = GridSpec((32,), (100.0,))
    x = grid.coordinates()[0]
    path = generate_dataset(Diffusion(grid, dt=0.1, diffusivity=0.2 + 0.5 * np.sin(np.pi * x / 100) ** 2),
                            tmp_path / "diffusion.h5", num_sims=5, num_frames=8, progress=False)
    config = {
        "model": {"synthetic": {"name": "UNet", "in_channels": 2, "out_channels": 1, "ndim": 1, "features": 4}},
        "data": {"fields": ["temperature", "diffusivity"]},
        "trainer_params": {"learning_rate": 1e-3, "num_predict_steps": 2, "batch_size": 32, "epochs": 100},
    }
    dynamic_fields, static_fields = ["temperature"], ["diffusivity"]

    # --- the seed's block, with hybridkit for src (epochs 100/50 -> 3/2 to keep the test short)
    from hybridkit.models import ModelRegistry
    from hybridkit.data import DataManager, HybridDataset
    from hybridkit.training.synthetic import SyntheticTrainer
    from torch.utils.data import DataLoader

    # 1. Create model externally
    model = ModelRegistry.get_synthetic_model("UNet", config=config["model"]["synthetic"])

    # 2. Create trainer with model
    trainer = SyntheticTrainer(config, model)

    # 3. Create data externally
    data_manager = DataManager(path)
    dataset = HybridDataset(
        data_manager=data_manager,
        sim_indices=[0, 1, 2],
        field_names=config["data"]["fields"],
        num_frames=None,  # Load all frames
        num_predict_steps=config["trainer_params"]["num_predict_steps"],
        dynamic_fields=dynamic_fields,
        static_fields=static_fields,
        use_sliding_window=True,  # ALWAYS True for synthetic
    )
    data_loader = DataLoader(dataset, batch_size=32, shuffle=True)

    # 4. Train with explicit data
    trainer.train(data_source=data_loader, num_epochs=3)

    # 5. Reuse trainer with different data (e.g., augmented)
    augmented_dataset = HybridDataset(data_manager, sim_indices=[3, 4], field_names=config["data"]["fields"],
                                      num_predict_steps=2, dynamic_fields=dynamic_fields, static_fields=static_fields)
    augmented_loader = DataLoader(augmented_dataset, batch_size=32, shuffle=True)
    trainer.train(data_source=augmented_loader, num_epochs=2)
    # --- end of the seed's block

    assert dataset[0][0].shape == (2, 32) and dataset[0][1].shape == (2, 1, 32)
    assert trainer.epoch == 5 and len(trainer.history["loss"]) == 5
    assert all(np.isfinite(trainer.history["loss"]))
    # one optimizer across both calls: Adam's step count is every batch of both (1 + 1 per epoch)
    steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert steps == {3 * len(data_loader) + 2 * len(augmented_loader)}


def test_augmented_dataset_weights_enter_the_loss(burgers_file, tmp_path):
    """AugmentedDataset items (initial, targets, weight) batched by make_loader: with one batch the
    epoch loss is the weighted mean of the per-window rollout MSEs of the model before the step."""
    from hybridkit import GridSpec
    from hybridkit.data import AugmentedDataset, DataManager, HybridDataset, generate_dataset, make_loader
    from hybridkit.metrics import mse
    from hybridkit.models import rollout
    from hybridkit.physics import Burgers

    other = generate_dataset(Burgers(GridSpec((64,), (100.0,)), dt=0.1, viscosity=2.0), tmp_path / "gen.h5",
                             num_sims=2, num_frames=5, seed=1, progress=False)
    real = HybridDataset(DataManager(burgers_file), sim_indices=[0], num_predict_steps=2)
    generated = HybridDataset(DataManager(other), sim_indices=[0, 1], num_predict_steps=2)
    data = AugmentedDataset(real, generated, weight_real=1.0, weight_generated=0.25)
    model = UNet(in_channels=1, out_channels=1, features=4)
    trainer = SyntheticTrainer({"num_predict_steps": 2, "noise_std": 0.0}, model)

    initial, targets = all_items(real)
    g_initial, g_targets = all_items(generated)
    with torch.no_grad():
        err_real = mse(rollout(model, initial, 2), targets)
        err_gen = mse(rollout(model, g_initial, 2), g_targets)
    expected = (err_real.sum() + 0.25 * err_gen.sum()) / (len(err_real) + 0.25 * len(err_gen))
    loss = trainer.train(make_loader(data, batch_size=len(data)), 1, progress=False)["loss"][0]
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert loss != pytest.approx(torch.cat([err_real, err_gen]).mean().item(), rel=1e-3)


def test_per_point_weights_are_a_weighted_mean_over_points_and_evaluate_matches():
    # A mask that observes half the cells: the loss must equal the MSE over those cells only.
    from hybridkit.models import ConvNet
    from hybridkit.training import SyntheticTrainer

    torch.manual_seed(0)
    net = ConvNet(in_channels=1, out_channels=1, ndim=1, width=4, depth=1)
    trainer = SyntheticTrainer({"num_predict_steps": 2}, net)
    x = torch.randn(3, 1, 16)
    y = torch.randn(3, 2, 1, 16)
    mask = torch.zeros(3, 2, 1, 16)
    mask[..., :8] = 1.0
    with torch.no_grad():
        from hybridkit.models import rollout
        pred = rollout(net, x, 2)
        expected = (pred - y)[..., :8].pow(2).mean()
    loss = trainer.evaluate([(x, y, mask)])
    assert abs(loss - float(expected)) < 1e-6 * max(1.0, float(expected))
    unmasked = trainer.evaluate([(x, y)])
    assert abs(unmasked - float((pred - y).pow(2).mean())) < 1e-6
    before = [p.clone() for p in net.parameters()]
    trainer.evaluate([(x, y)])
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
