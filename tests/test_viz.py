"""hybridkit.viz: the plotted data is the data given, frame by frame, with the promised scales."""
import re

import matplotlib

matplotlib.use("Agg")  # headless, and independent of the machine's default backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from hybridkit import GridSpec, viz  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_player_slider_moves_1d_lines_to_that_frame(rng):
    truth, pred = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    player = viz.compare_rollout(truth, torch.tensor(pred), dt=0.1)
    first_png = player.image.value
    player.slider.value = 4
    np.testing.assert_array_equal(player.artists["truth"].get_ydata(), truth[4])
    np.testing.assert_allclose(player.artists["prediction"].get_ydata(), pred[4])
    np.testing.assert_allclose(player.artists["error"].get_ydata(), truth[4] - pred[4])
    assert "t = 0.4" in player.figure.get_suptitle() and "frame 4/5" in player.figure.get_suptitle()
    assert player.image.value != first_png  # the re-rendered PNG reaches the widget
    assert (player.play.max, player.slider.max) == (5, 5)


def test_player_shared_y_range_spans_all_frames_when_side_by_side(rng):
    a, b = rng.normal(size=(5, 12)), 3.0 * rng.normal(size=(5, 12))
    player = viz.field_player({"a": a, "b": b}, overlay=False)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    limits = [line.axes.get_ylim() for line in player.artists.values()]
    assert limits[0] == limits[1]
    assert limits[0][0] < lo and limits[0][1] > hi and limits[0][1] - limits[0][0] < 1.2 * (hi - lo)


def test_player_2d_images_share_global_colour_scale_and_error_is_difference(rng):
    truth = rng.normal(size=(4, 8, 12))
    pred = 2.0 + 0.5 * rng.normal(size=(4, 8, 12))
    player = viz.field_player({"truth": truth, "prediction": pred}, error_of=("truth", "prediction"))
    player.slider.value = 2
    arts = player.artists
    # Images show x to the right and y up: the artist holds frame.T.
    np.testing.assert_array_equal(arts["truth"].get_array(), truth[2].T)
    np.testing.assert_array_equal(arts["prediction"].get_array(), pred[2].T)
    np.testing.assert_allclose(arts["error"].get_array(), (truth - pred)[2].T)
    both = np.concatenate([truth.ravel(), pred.ravel()])
    assert arts["truth"].get_clim() == arts["prediction"].get_clim() == (both.min(), both.max())
    m = np.abs(truth - pred).max()
    np.testing.assert_allclose(arts["error"].get_clim(), (-m, m))
    unshared = viz.field_player({"truth": truth, "prediction": pred}, shared_scale=False).artists
    assert unshared["truth"].get_clim() == (truth.min(), truth.max())


def test_player_vector_field_magnitude_or_component_and_grid_units(rng):
    grid = GridSpec((8, 6), (4.0, 3.0))
    u = rng.normal(size=(3, 8, 6, 2))
    player = viz.field_player({"u": u}, grid=grid)
    player.slider.value = 1
    np.testing.assert_allclose(player.artists["u"].get_array(), np.linalg.norm(u[1], axis=-1).T)
    assert player.artists["u"].get_extent() == [0.0, 4.0, 0.0, 3.0]
    y = viz.field_player({"u": u}, grid=grid, component="y")
    y.slider.value = 2
    np.testing.assert_array_equal(y.artists["u"].get_array(), u[2, ..., 1].T)


def test_player_1d_grid_puts_lines_on_cell_centres():
    grid = GridSpec((8,), (2.0,))
    player = viz.field_player(np.zeros((2, 8, 1)), grid=grid)  # a 1D vector field
    np.testing.assert_allclose(player.artists["field"].get_xdata(), (np.arange(8) + 0.5) * 0.25)


def test_player_accepts_a_phiflow_rollout_with_a_time_dim(rng):
    from hybridkit.convert import to_field

    grid = GridSpec((8,), (1.0,))
    values = rng.normal(size=(3, 8))
    player = viz.field_player({"u": to_field(values, grid, batch_names=("time",))}, grid=grid)
    player.slider.value = 2
    np.testing.assert_allclose(player.artists["u"].get_ydata(), values[2])
    two_batch = to_field(rng.normal(size=(3, 2, 8)), grid, batch_names=("time", "batch"))
    with pytest.raises(ValueError, match=r"at most one batch dimension.*Fix: select one sample"):
        viz.field_player({"u": two_batch})


def test_to_html_embeds_one_frame_per_shown_step(rng):
    anim = viz.animate({"u": rng.normal(size=(7, 10)), "v": rng.normal(size=(7, 10))}, stride=2)
    html = viz.to_html(anim)
    assert isinstance(html, str) and html._repr_html_() == html
    assert len(re.findall(r"frames\[\d+\] = \"data:image/png;base64,", html)) == 4  # frames 0,2,4,6
    assert "new Array(4)" in html


def test_spacetime_shows_whole_trajectories_and_error(rng):
    grid = GridSpec((10,), (5.0,))
    truth, pred = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    fig = viz.spacetime({"truth": truth, "prediction": pred}, grid=grid, dt=0.5,
                        error_of=("truth", "prediction"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 3
    np.testing.assert_array_equal(images[0].get_array(), truth)
    np.testing.assert_allclose(images[2].get_array(), truth - pred)
    assert images[0].get_extent() == [0.0, 5.0, -0.25, 2.75]  # pixel centres at t = 0, 0.5, ...
    with pytest.raises(ValueError, match="1D trajectories"):
        viz.spacetime({"u": np.zeros((3, 8, 8))})


def _title_numbers(fig):
    return [float(v) for v in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", fig.get_suptitle())]


def test_plot_param_field_title_reports_relative_l2(rng):
    grid = GridSpec((32,), (100.0,))
    true = np.sin(np.pi * grid.coordinates()[0] / 100.0) ** 2
    learned = true + 0.05 * rng.normal(size=32)
    mask = np.arange(32) < 16
    fig = viz.plot_param_field(torch.tensor(learned), true, grid=grid, mask=mask, name="diffusivity")
    total, obs, unobs = _title_numbers(fig)[-3:]
    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    assert total == pytest.approx(rel(learned, true), rel=2e-3)
    assert obs == pytest.approx(rel(learned[mask], true[mask]), rel=2e-3)
    assert unobs == pytest.approx(rel(learned[~mask], true[~mask]), rel=2e-3)
    assert fig.get_suptitle().startswith("diffusivity: relative L2 error")
    # 2D: true, learned on one scale, and learned - true.
    t2, l2 = rng.random((6, 8)), rng.random((6, 8))
    fig2 = viz.plot_param_field(l2, t2)
    imgs = [ax.images[0] for ax in fig2.axes if ax.images]
    assert imgs[0].get_clim() == imgs[1].get_clim()
    np.testing.assert_allclose(imgs[2].get_array(), (l2 - t2).T)
    assert _title_numbers(fig2)[-1] == pytest.approx(rel(l2, t2), rel=2e-3)


def test_plot_losses_and_rollout_errors_plot_the_given_values():
    hist = {"synthetic": {"loss": [1.0, 0.5, 0.2]}, "hybrid": {"loss": [1.0, 0.3], "val": [2.0, 1.0]}}
    ax = viz.plot_losses(hist).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["synthetic", "hybrid: loss", "hybrid: val"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    assert ax.get_yscale() == "log"
    errors = np.array([[0.1, 0.2, 0.4], [0.3, 0.4, 0.6]])
    ax = viz.plot_rollout_errors({"unet": errors, "hyco": torch.tensor([0.1, 0.1, 0.2])}, dt=0.5).axes[0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.2, 0.3, 0.5])
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.5, 1.0, 1.5])
    with pytest.raises(ValueError, match="non-empty"):
        viz.plot_losses({"loss": []})


def test_bad_inputs_raise_expected_given_fix():
    with pytest.raises(ValueError, match=r"same number of frames.*\(5, 8\).*\(4, 8\).*Fix"):
        viz.field_player({"truth": np.zeros((5, 8)), "prediction": np.zeros((4, 8))})
    with pytest.raises(ValueError, match=r"\(time, \*space.*got \(8,\).*Fix"):
        viz.animate({"u": np.zeros(8)})
    with pytest.raises(ValueError, match=r"3 spatial axes.*Fix"):
        viz.field_player({"u": np.zeros((2, 8, 8, 8))})
    with pytest.raises(ValueError, match=r"grid \(16,\), got \(2, 8\).*Fix"):
        viz.field_player({"u": np.zeros((2, 8))}, grid=GridSpec((16,), (1.0,)))
    with pytest.raises(ValueError, match=r"error_of=\(a, b\).*Fix"):
        viz.field_player({"a": np.zeros((2, 8))}, error_of=("a", "c"))
    with pytest.raises(ValueError, match=r"same shape.*\(8,\).*\(9,\)"):
        viz.plot_param_field(np.zeros(8), np.ones(9))
    with pytest.raises(ValueError, match=r"mask of shape \(8,\).*Fix"):
        viz.plot_param_field(np.zeros(8), np.ones(8), mask=np.ones((2, 8)))


def test_nothing_is_left_open_in_pyplot(rng):
    before = plt.get_fignums()
    viz.field_player({"u": rng.normal(size=(2, 8))})
    viz.spacetime({"u": rng.normal(size=(2, 8))})
    viz.plot_losses([1.0, 0.5])
    assert plt.get_fignums() == before


def test_public_names_are_documented():
    for name in viz.__all__:
        assert getattr(viz, name).__doc__, name
