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


def test_plot_param_field_band_spans_learned_plus_minus_1_96_std(rng):
    grid = GridSpec((32,), (100.0,))
    x = grid.coordinates()[0]
    true = 0.2 + np.exp(-((x - 30.0) / 8.0) ** 2)
    learned = true + 0.02 * rng.normal(size=32)
    std = np.where(x < 50, 0.01, 5.0)  # wide where nothing is observed: far off the axis
    fig = viz.plot_param_field(learned, true, grid=grid, mask=x < 50, band=std, name="diffusivity")
    ax = fig.axes[0]
    (poly,) = [c for c in ax.collections if c.get_label().startswith("95 % band")]
    verts = poly.get_paths()[0].vertices
    for xi, li, si in zip(x, learned, std):
        ys = verts[np.isclose(verts[:, 0], xi), 1]
        assert ys.min() == pytest.approx(li - 1.96 * si, abs=1e-3 * si) and ys.max() == pytest.approx(li + 1.96 * si, abs=1e-3 * si)
    held = np.mean(np.abs(learned - true) <= 1.959963985 * std)
    assert f"95 % band holds the truth in {held:.0%} of cells" in fig.get_suptitle()
    lo, hi = min(learned.min(), true.min()), max(learned.max(), true.max())
    assert ax.get_ylim() == pytest.approx((lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)))  # the lines stay readable
    with pytest.raises(ValueError, match=r"band of shape \(32,\).*got \(31,\).*Fix"):
        viz.plot_param_field(learned, true, grid=grid, band=std[:31])
    with pytest.raises(ValueError, match=r"finite standard deviations >= 0.*Fix"):
        viz.plot_param_field(learned, true, grid=grid, band=-std)
    with pytest.raises(ValueError, match=r"1D field only.*\(6, 8\).*Fix"):
        viz.plot_param_field(rng.random((6, 8)), rng.random((6, 8)), band=np.ones((6, 8)))


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


# ----------------------------------------------------------------------------- labels and styles


def test_axes_and_colorbars_are_labelled_with_nondimensional_units(rng):
    grid1 = GridSpec((16,), (2.0,))
    p1 = viz.field_player({"truth": rng.normal(size=(3, 16)), "model": rng.normal(size=(3, 16))},
                          grid=grid1, dt=0.1, error_of=("model", "truth"), quantity="velocity u")
    field_ax, error_ax = p1.figure.axes
    assert field_ax.get_ylabel() == "velocity u (nondim.)" and field_ax.get_xlabel() == "x (nondim.)"
    assert error_ax.get_ylabel() == "model - truth (nondim.)"
    assert viz.field_player(rng.normal(size=(3, 16))).figure.axes[0].get_xlabel() == "x (cell index)"
    grid2 = GridSpec((8, 6), (4.0, 3.0))
    p2 = viz.compare_rollout(rng.normal(size=(3, 8, 6)), rng.normal(size=(3, 8, 6)), grid=grid2,
                             quantity="vorticity")
    colorbars = sorted(ax.get_ylabel() for ax in p2.figure.axes if not ax.images)
    assert colorbars == ["truth - prediction (nondim.)", "vorticity (nondim.)"]
    assert {ax.get_ylabel() for ax in p2.figure.axes if ax.images} == {"y (nondim.)"}
    st = viz.spacetime({"u": rng.normal(size=(4, 16))}, grid=grid1, dt=0.5)
    assert st.axes[0].get_ylabel() == "t (nondim.)" and st.axes[1].get_ylabel() == "u (nondim.)"


def test_error_of_a_reference_adds_one_error_per_field_in_its_style(rng):
    truth, a, b = (rng.normal(size=(4, 12)) for _ in range(3))
    player = viz.field_player({"truth": truth, "a": a, "b": b}, error_of="truth")
    player.slider.value = 3
    arts = player.artists
    np.testing.assert_allclose(arts["a - truth"].get_ydata(), a[3] - truth[3])
    np.testing.assert_allclose(arts["b - truth"].get_ydata(), b[3] - truth[3])
    assert arts["a - truth"].axes is arts["b - truth"].axes is not arts["a"].axes  # one error axis
    for name in ("a", "b"):  # an error is drawn in its field's colour and line style
        assert arts[f"{name} - truth"].get_color() == arts[name].get_color()
        assert arts[f"{name} - truth"].get_linestyle() == arts[name].get_linestyle()
    styles = {(arts[n].get_linestyle(), arts[n].get_marker(), arts[n].get_linewidth()) for n in ("truth", "a", "b")}
    assert len(styles) == 3  # a curve lying on another stays visible
    # 2D: one image per error, one symmetric colour scale for both.
    t2, a2, b2 = rng.normal(size=(2, 6, 6)), 3 * rng.normal(size=(2, 6, 6)), rng.normal(size=(2, 6, 6))
    arts2 = viz.field_player({"truth": t2, "a": a2, "b": b2}, error_of="truth").artists
    m = max(np.abs(a2 - t2).max(), np.abs(b2 - t2).max())
    np.testing.assert_allclose(arts2["a - truth"].get_clim(), (-m, m))
    assert arts2["a - truth"].get_clim() == arts2["b - truth"].get_clim()
    with pytest.raises(ValueError, match=r"reference field.*Fix"):
        viz.field_player({"truth": t2}, error_of="truth")  # nothing to compare it with


# ----------------------------------------------------------------------------- the player's fallback


def _embedded_frames(html: str) -> list[np.ndarray]:
    import base64
    import io

    from PIL import Image

    script = html[html.index("<script>"):]
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"))
            for b in re.findall(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', script)]


def test_player_display_is_the_widget_plus_a_bounded_self_contained_animation(rng):
    x = np.linspace(0, 2 * np.pi, 32)
    truth = np.sin(x[None] - 0.2 * np.arange(30)[:, None])  # a travelling wave, 30 frames
    player = viz.compare_rollout(truth, 0.5 * truth, grid=GridSpec((32,), (1.0,)), dt=0.1)
    player.slider.value = 7
    bundle = player._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab shows the live widget
    assert bundle["text/plain"] == ("FieldPlayer: truth, prediction, truth - prediction; 30 frames, "
                                    "t = 0 .. 2.9")
    html = bundle["text/html"]
    frames = _embedded_frames(html)
    assert len(frames) == 24  # 30 frames, at most 24 embedded, evenly spaced
    assert "t = 0   (frame 0/29)" in html and "t = 2.9   (frame 29/29)" in html  # first and last kept
    assert len({f.shape for f in frames}) == 1 and not np.array_equal(frames[0], frames[-1])
    assert 'src="data:image/png;base64,' in html.split("<script>")[0]  # visible without scripts
    assert viz.remote_assets(html) == [] and "http" not in html
    # Drawing the animation leaves the live figure where it was.
    assert player.slider.value == 7 and player.figure.dpi == 100
    np.testing.assert_array_equal(player.artists["truth"].get_ydata(), truth[7])
    # A smaller budget embeds fewer frames, never fewer than two; all images stay within it.
    small = player.animation_html(max_kb=100)
    images = re.findall(r'"data:image/png;base64,[A-Za-z0-9+/=]+"', small)
    assert 2 <= len(_embedded_frames(small)) < 24 and sum(len(b) + 30 for b in images) <= 100 * 1024
    assert len(_embedded_frames(player.animation_html(max_kb=1))) == 2


def test_player_fallback_can_be_an_image_or_nothing(rng):
    import base64

    u = rng.normal(size=(3, 8, 8))
    image = viz.field_player(u, fallback="image")._repr_mimebundle_()
    assert base64.b64decode(image["image/png"]).startswith(b"\x89PNG") and "text/html" not in image
    bare = viz.field_player(u, fallback=None)._repr_mimebundle_()
    assert set(bare) == {"text/plain", "application/vnd.jupyter.widget-view+json"}
    with pytest.raises(ValueError, match=r"fallback.*Fix"):
        viz.field_player(u, fallback="gif")


def test_to_html_loads_nothing_from_a_cdn(rng):
    html = viz.to_html(viz.animate({"u": rng.normal(size=(3, 8))}))
    assert "font-awesome" not in html and 'class="fa' not in html and viz.remote_assets(html) == []
    assert 'aria-label="Play"' in html and "&#x25B6;" in html  # the buttons have text symbols


# ----------------------------------------------------------------------------- run figures


def test_plot_losses_marks_phase_boundaries_on_a_log_axis():
    fig = viz.plot_losses({"synthetic": np.geomspace(1, 1e-3, 12), "hybrid": np.geomspace(1, 1e-4, 12)},
                          marks={"end of warm-up": 4, "cycle start": [6, 8, 10]})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_title() == "loss per epoch"
    vertical = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1]
    assert sorted(line.get_xdata()[0] for line in vertical) == [4.5, 6.5, 8.5, 10.5]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["synthetic", "hybrid", "end of warm-up", "cycle start"]
    assert viz.plot_losses([1.0, 0.0, -1.0]).axes[0].get_yscale() == "linear"  # a log axis would hide them
    with pytest.raises(ValueError, match=r"mark 'cycle'.*Fix"):
        viz.plot_losses([1.0, 0.5], marks={"cycle": "three"})


def test_plot_rollout_errors_log_axis_distinct_labelled_curves():
    same = np.geomspace(1e-8, 3e-8, 10)
    curves = {"physical model (physical-only run)": same, "physical model (hybrid run)": same.copy(),
              "network (synthetic-only run)": np.linspace(0.01, 0.1, 10), "network (hybrid run)": np.zeros(10)}
    ax = viz.plot_rollout_errors(curves, dt=0.1).axes[0]
    lines = ax.get_lines()
    assert ax.get_yscale() == "log" and ax.get_title() == "rollout error against time"
    assert ax.get_xlabel() == "rollout time t (nondim.)"
    assert [line.get_label() for line in lines] == [
        "physical model (physical-only run)", "physical model (hybrid run)", "network (synthetic-only run)",
        "network (hybrid run) (0 at every step: not drawn on the log axis)"]
    # The two identical physical curves differ in style, so the one underneath stays visible.
    styles = {(line.get_linestyle(), line.get_marker(), line.get_linewidth(), line.get_color()) for line in lines}
    assert len(styles) == 4
    np.testing.assert_allclose(lines[1].get_ydata(), same)


def test_plot_cycles_marks_each_reverted_update_per_model():
    from dataclasses import dataclass

    @dataclass
    class Update:
        real_loss_before: float
        real_loss_after: float
        reverted: bool

    @dataclass
    class Cycle:
        cycle: int
        synthetic: Update
        physical: Update

    records = [Cycle(k + 1, Update(1e-3 / (k + 1), 8e-4 / (k + 1), k == 2),
                     Update(1e-5, 2e-5 if k % 2 == 0 else 5e-6, k % 2 == 0)) for k in range(5)]
    dicts = [{"cycle": r.cycle, "synthetic": vars(r.synthetic), "physical": vars(r.physical)} for r in records]
    for cycles in (records, dicts):
        fig = viz.plot_cycles(cycles)
        syn, phy = fig.axes[:2]
        assert syn.get_yscale() == phy.get_yscale() == "log"
        for ax, expected in ((syn, [3]), (phy, [1, 3, 5])):
            (marker,) = [line for line in ax.get_lines() if line.get_label() == "reverted (update undone)"]
            np.testing.assert_allclose(marker.get_xdata(), np.array(expected) + 0.15)
            (before,) = [line for line in ax.get_lines() if line.get_label() == "before the update"]
            assert len(before.get_xdata()) == 5
        assert "1 of 5 updates reverted" in syn.get_title() and "3 of 5 updates reverted" in phy.get_title()
        np.testing.assert_allclose([line for line in phy.get_lines() if line.get_label() == "after the update"][0]
                                   .get_ydata(), [r.physical.real_loss_after for r in records])
    with pytest.raises(ValueError, match=r"field 'physical'.*Fix"):
        viz.plot_cycles([{"synthetic": vars(records[0].synthetic)}])
    with pytest.raises(ValueError, match=r"non-empty list"):
        viz.plot_cycles([])


def test_plot_param_trajectory_against_the_truth():
    values = [0.3, 0.45, 0.5, 0.5]
    fig = viz.plot_param_trajectory(values, 0.5, name="viscosity", initial=0.05, reverted=[False, True, False, False])
    value_ax, error_ax = fig.axes
    (truth,) = [line for line in value_ax.get_lines() if line.get_label() == "true viscosity"]
    assert set(truth.get_ydata()) == {0.5}
    (estimate,) = [line for line in value_ax.get_lines() if line.get_label() == "estimated viscosity"]
    np.testing.assert_allclose(estimate.get_xdata(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(estimate.get_ydata(), [0.05, *values])
    assert error_ax.get_yscale() == "log"
    (error,) = [line for line in error_ax.get_lines() if line.get_label().startswith("relative error")]
    np.testing.assert_allclose(error.get_ydata()[:3], [0.9, 0.4, 0.1])
    assert "exactly 0 drawn at" in error.get_label() and error.get_ydata()[-1] > 0  # 0 stays visible
    (reverted,) = [line for line in value_ax.get_lines() if line.get_label() == "physical update reverted"]
    np.testing.assert_allclose(reverted.get_xdata(), [2])
    # A field: its relative L2 error per cycle.
    true = np.sin(np.linspace(0, 3, 16)) + 2
    fields = [true * (1 + 0.1 / (k + 1)) for k in range(3)]
    (ax,) = viz.plot_param_trajectory(fields, true, name="diffusivity").axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.1, 0.05, 0.1 / 3])
    assert ax.get_ylabel() == "relative L2 error"
    with pytest.raises(ValueError, match=r"true value's shape \(16,\).*\(8,\)"):
        viz.plot_param_trajectory([np.ones(8)], true)
    with pytest.raises(ValueError, match=r"one flag per cycle"):
        viz.plot_param_trajectory(values, 0.5, reverted=[True])


def test_plot_spread_draws_mean_and_std_per_case_for_each_model():
    values = {"physical only": {"full": [1e-6, 3e-6], "half": [0.1, 0.3], "quarter": [0.4, 0.4]},
              "hybrid": {"full": [1e-6, 3e-6], "half": [0.2, 0.2], "quarter": 0.5}}
    ax = viz.plot_spread(values, xlabel="observed fraction").axes[0]
    means = [line for line in ax.get_lines() if line.get_label() in values]
    assert [line.get_label() for line in means] == ["physical only", "hybrid"]
    np.testing.assert_allclose(means[0].get_ydata(), [2e-6, 0.2, 0.4])
    np.testing.assert_allclose(means[1].get_ydata(), [2e-6, 0.2, 0.5])
    assert ax.get_yscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["full", "half", "quarter"]
    # equal means stay apart sideways, and the curves differ in style
    assert means[0].get_xdata()[0] < means[1].get_xdata()[0]
    assert means[0].get_linestyle() != means[1].get_linestyle()
    # the error bars span mean +- std: at "half" of the physical model 0.2 +- 0.1
    bars = [c for c in ax.collections if len(c.get_segments()) == 3]
    np.testing.assert_allclose(bars[0].get_segments()[1][:, 1], [0.1, 0.3])
    assert viz.plot_spread({"a": {"x": [0.0, 1.0]}}).axes[0].get_yscale() == "linear"  # 0 on a log axis: hidden
    with pytest.raises(ValueError, match=r"cases \['full', 'half', 'quarter'\].*\['full'\].*Fix"):
        viz.plot_spread({"a": values["hybrid"], "b": {"full": [1.0]}})
    with pytest.raises(ValueError, match=r"finite value of 'a' at 'x'.*Fix"):
        viz.plot_spread({"a": {"x": [float("nan")]}})
