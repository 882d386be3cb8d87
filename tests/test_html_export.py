"""Notebook export that reads well offline: formulas as MathML, players as embedded animations,
nothing loaded from a CDN; through the code path of ``python -m hybridkit notebooks``."""
import re

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import pytest  # noqa: E402

from hybridkit import viz  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MARKDOWN = r"""# Burgers

The velocity $u(x, t)$ obeys

$$\partial_t u + u\,\partial_x u = \nu\,\partial_x^2 u, \qquad \nu = 0.1 .$$

A price of 5 dollars is not a formula."""
PLAYER_CELL = """\
import numpy as np
from hybridkit import GridSpec
from hybridkit.viz import field_player

grid = GridSpec((32,), (1.0,))
x = grid.coordinates()[0]
u = np.sin(2 * np.pi * (x[None] - 0.05 * np.arange(12)[:, None]))   # 12 frames
field_player({"truth": u, "model": 0.9 * u}, grid=grid, dt=0.1, error_of="truth")"""
# Where a page would load something: src / href attributes, CSS url() / @import, JS import.
REMOTE = re.compile(r"""(?:\b(?:src|href|srcset|poster)\s*=\s*["']?\s*(?:https?:)?//"""
                    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+["']?(?:url\()?\s*["']?(?:https?:)?//"""
                    r"""|\bimport\b[^;"']{0,40}["'](?:https?:)?//)""", re.IGNORECASE)


def _notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(MARKDOWN), nbformat.v4.new_code_cell(PLAYER_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_exported_notebook_is_self_contained_with_mathml_and_the_animation(tmp_path):
    source = _notebook(tmp_path / "player.ipynb")
    done = viz.export_notebook(source, tmp_path / "out", timeout=120)
    page = done.html.read_text()
    # Nothing from the network: no CDN script, stylesheet or import, no widget manager.
    assert done.remote == () and viz.remote_assets(page) == []
    assert not REMOTE.search(page), REMOTE.search(page)
    assert "require.js" not in page and "mathjax" not in page.lower() and "html-manager" not in page
    # The formulas are MathML, the source TeX is gone; the dollar amount stays text.
    assert re.search(r'<math display="inline">.*?<mi>u</mi>', page)
    (block,) = re.findall(r'<math display="block">.*?</math>', page, re.DOTALL)
    assert "<msubsup>" in block and "<mi>ν</mi>" in block  # d_x^2 and nu
    assert "$$" not in page and r"\partial" not in page and done.math_failures == ()
    assert "5 dollars is not a formula" in page
    # The player became one animation with all 12 frames embedded (plus the first as its src).
    assert done.animations == viz.count_animations(page) == 1
    script = page[page.index("<script>", page.index('class="hk-animation"')):]
    frames = re.findall(r'"data:image/png;base64,[A-Za-z0-9+/=]{200,}"', script)
    assert len(frames) == 12
    assert 'aria-label="Play"' in page and 'class="hk-slider"' in page and 'max="11"' in page
    # The stored notebook: no widget view or state, the animation as the output, small.
    nb = nbformat.read(done.notebook, as_version=4)
    (out,) = nb.cells[1].outputs
    assert WIDGET_VIEW not in out.data and "widgets" not in nb.metadata
    assert out.data["text/plain"].startswith("FieldPlayer: truth, model, model - truth; 12 frames")
    assert 'class="hk-animation"' in out.data["text/html"]
    assert done.notebook.stat().st_size < 500_000 and done.execute_s > 0


def _outputs_nb(*outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=list(outputs))]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_strip_widgets_keeps_fallbacks_and_drops_bare_widgets():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    with_fallback = nbformat.v4.new_output("display_data", data={
        WIDGET_VIEW: view, "text/plain": "FieldPlayer: u", "text/html": "<b>animation</b>"})
    bare = nbformat.v4.new_output("display_data", data={WIDGET_VIEW: view, "text/plain": "IntSlider(value=3)"})
    text = nbformat.v4.new_output("stream", text="hello\n")
    nb = _outputs_nb(with_fallback, bare, text)
    assert viz.strip_widgets(nb) == 2
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "stream"]
    assert set(outputs[0].data) == {"text/plain", "text/html"} and "widgets" not in nb.metadata
    page, failures = viz.offline_html(_outputs_nb(with_fallback))
    assert "<b>animation</b>" in page and WIDGET_VIEW not in page and failures == []


def test_remote_assets_finds_what_a_browser_would_fetch_and_nothing_else():
    page = """<html><head>
    <script src="https://cdn.example.org/require.js"></script>
    <link rel="stylesheet" href="//cdn.example.org/font.css">
    <style>@import url("https://fonts.example.org/a.css"); .a { background: url(data:image/png;base64,AA==) }
    /* see https://example.org/docs */</style>
    <script type="module">const m = await import("https://cdn.example.org/mermaid.mjs");</script>
    </head><body><a href="https://arxiv.org/abs/2509.14123">paper</a>
    <img src="data:image/png;base64,AA=="><img src="local.png" style="background: url('http://x.org/b.png')">
    </body></html>"""
    assert viz.remote_assets(page) == [
        "https://cdn.example.org/require.js", "//cdn.example.org/font.css", "http://x.org/b.png",
        "https://fonts.example.org/a.css", "https://cdn.example.org/mermaid.mjs"]


def test_a_formula_latex2mathml_cannot_convert_is_kept_as_tex_and_reported():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(r"good $a^2$, bad $x^$, unknown $\foo y$")]
    page, failures = viz.offline_html(nb)
    assert page.count("<math") == 1 and '<code class="tex">$x^$</code>' in page
    assert len(failures) == 2 and "'x^'" in failures[0] and r"\foo not supported" in failures[1]


def test_export_notebook_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.ipynb \(not found\).*Fix"):
        viz.export_notebook(tmp_path / "missing.ipynb", tmp_path)
