import numpy as np
import pytest
import torch

from hybridkit import GridSpec
from hybridkit.data import AugmentedDataset, DataManager, HybridDataset, generate_dataset, make_loader
from hybridkit.physics import Burgers


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("aug")
    model = Burgers(GridSpec((16,), (100.0,)))
    real = generate_dataset(model, root / "real.h5", num_sims=3, num_frames=6, seed=0, progress=False)
    gen = generate_dataset(model, root / "gen.h5", num_sims=4, num_frames=8, seed=1, progress=False)
    short = generate_dataset(model, root / "short.h5", num_sims=2, num_frames=3, seed=2, progress=False)
    return DataManager(real), DataManager(gen), DataManager(short)


def test_items_are_real_then_generated_with_weights(files):
    real_dm, gen_dm, _ = files
    real = HybridDataset(real_dm, [0, 1, 2], ["velocity"], num_predict_steps=2)
    gen = HybridDataset(gen_dm, [0, 1, 2, 3], ["velocity"], num_predict_steps=2)
    aug = AugmentedDataset(real, gen, weight_real=1.0, weight_generated=0.25)
    assert aug.counts == {"real": 3 * 4, "generated": 4 * 6} and len(aug) == 36
    x, y, w = aug[5]
    torch.testing.assert_close(x, real[5][0]) and torch.testing.assert_close(y, real[5][1])
    assert w == 1.0
    x, y, w = aug[12 + 7]
    torch.testing.assert_close(x, gen[7][0], rtol=0, atol=0)
    torch.testing.assert_close(y, gen[7][1], rtol=0, atol=0)
    assert w == 0.25


def test_count_based_draw_is_seeded_and_exact(files):
    real_dm, gen_dm, _ = files
    real = HybridDataset(real_dm, [0, 1, 2], ["velocity"], num_predict_steps=1)
    gen = HybridDataset(gen_dm, [0, 1, 2, 3], ["velocity"], num_predict_steps=1)
    a = AugmentedDataset(real, gen, generated_per_real=0.5, seed=3)
    b = AugmentedDataset(real, gen, generated_per_real=0.5, seed=3)
    assert a.counts == {"real": 15, "generated": 8}  # round(0.5 * 15)
    np.testing.assert_array_equal(a._chosen, b._chosen)
    with pytest.raises(ValueError, match="generate more or longer trajectories"):
        AugmentedDataset(real, gen, generated_per_real=10)


def test_trajectory_shorter_than_window_is_an_error_not_zero_samples(files):
    real_dm, _, short_dm = files
    real = HybridDataset(real_dm, [0], ["velocity"], num_predict_steps=3)
    with pytest.raises(ValueError, match="num_predict_steps"):
        AugmentedDataset(real, HybridDataset(short_dm, [0, 1], ["velocity"], num_predict_steps=3))


def test_mismatched_parts_are_refused(files):
    real_dm, gen_dm, _ = files
    real = HybridDataset(real_dm, [0], ["velocity"], num_predict_steps=2)
    with pytest.raises(ValueError, match="num_predict_steps"):
        AugmentedDataset(real, HybridDataset(gen_dm, [0], ["velocity"], num_predict_steps=1))
    with pytest.raises(ValueError, match="return_fields"):
        AugmentedDataset(real, HybridDataset(gen_dm, [0], ["velocity"], num_predict_steps=2, return_fields=True))


def test_loaders_batch_weights_in_both_modes(files):
    real_dm, gen_dm, _ = files
    for fields in (False, True):
        real = HybridDataset(real_dm, [0, 1], ["velocity"], num_predict_steps=2, return_fields=fields)
        gen = HybridDataset(gen_dm, [0], ["velocity"], num_predict_steps=2, return_fields=fields)
        aug = AugmentedDataset(real, gen, weight_generated=0.5)
        weights = torch.cat([batch[2] for batch in make_loader(aug, batch_size=4, shuffle=False)])
        expected = torch.tensor([1.0] * 8 + [0.5] * 6, dtype=weights.dtype)
        torch.testing.assert_close(weights, expected)


def test_write_trajectories_round_trip_and_checks(tmp_path):
    from hybridkit.data import write_trajectories

    model = Burgers(GridSpec((16,), (100.0,)))
    rng = np.random.default_rng(0)
    u = rng.normal(size=(3, 5, 16)).astype(np.float32)
    path = write_trajectories(model, tmp_path / "net.h5", {"velocity": u}, params={"viscosity": 0.3},
                              seed=7, attrs={"source": "UNet", "cycle": 2})
    dm = DataManager(path)
    assert (dm.num_sims, dm.num_frames) == (3, 5)
    np.testing.assert_array_equal(dm.load(1, "velocity"), u[1])
    np.testing.assert_allclose(dm.params("viscosity"), [0.3] * 3)
    assert dm.metadata["source_config"] == {"source": "UNet", "cycle": 2}
    with pytest.raises(ValueError, match="of shape"):
        write_trajectories(model, tmp_path / "bad.h5", {"velocity": u[..., :8]})
    bad = u.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        write_trajectories(model, tmp_path / "nan.h5", {"velocity": bad})
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "nan.h5").exists()


def test_per_point_weights_from_an_observation_mask(files):
    from hybridkit.data import ObservationMask, spatial_mask

    real_dm, gen_dm, _ = files
    grid = real_dm.grid
    obs = ObservationMask(spatial=spatial_mask(grid, region=[(0.0, 50.0)]))
    w = obs.point_weights(grid, 2)
    assert w.shape == (2, 1, 16) and w[..., :8].min() == 1 and w[..., 8:].max() == 0
    real = HybridDataset(real_dm, [0, 1], ["velocity"], num_predict_steps=2)
    gen = HybridDataset(gen_dm, [0], ["velocity"], num_predict_steps=2)
    aug = AugmentedDataset(real, gen, weight_real=w, weight_generated=0.5)
    x, y, w_real = aug[0]
    _, _, w_gen = aug[len(aug) - 1]
    assert torch.equal(w_real, torch.as_tensor(w)) and torch.all(w_gen == 0.5) and w_gen.shape == w_real.shape
    batch = next(iter(make_loader(aug, batch_size=len(aug), shuffle=False)))
    assert batch[2].shape == (len(aug), 2, 1, 16)
    with pytest.raises(ValueError, match="per-point weight_real"):
        AugmentedDataset(real, [], weight_real=np.zeros((2, 1, 16)))
