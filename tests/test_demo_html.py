"""What ``make demo`` writes reads well everywhere: self-contained HTML with its animations, and
stored notebooks that show figures where a live player would be.

``make demo`` runs ``python -m hybridkit notebooks --out results/notebooks``: it executes every
notebook and converts it to HTML. Here the same command converts the *stored* notebooks with
``--no-execute`` (their outputs are those of a full run, README "Notebooks"), which takes seconds
instead of minutes and checks the same conversion:

* no HTML page loads anything from the network (``hybridkit.viz.remote_assets`` is empty), and
  the command reports no formula it could not convert (its exit status);
* every player of a notebook (each ``field_player(...)`` / ``compare_rollout(...)`` call in its
  code) is in the page as a self-contained animation (``hybridkit.viz.count_animations``).

The stored notebooks themselves must be executed, hold no widget views or widget state (those
show only an error without the kernel that made them) and stay small enough for a repository.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbconvert")

from hybridkit.__main__ import main  # noqa: E402
from hybridkit.viz import count_animations, remote_assets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PLAYER_CALL = re.compile(r"\b(?:field_player|compare_rollout)\(")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MAX_STORED_MB = 2.0  # a stored notebook: a few figures and animations, not a data dump


def _players(nb) -> int:
    """Players a notebook shows: its calls of the two player functions."""
    return sum(len(PLAYER_CALL.findall(c.source)) for c in nb.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def demo_html(tmp_path_factory):
    """The HTML pages of ``python -m hybridkit notebooks --no-execute``: ``(exit status, out dir)``."""
    out = tmp_path_factory.mktemp("demo_html")
    with pytest.MonkeyPatch.context() as mp:  # the command sets HYBRIDKIT_FAST for its kernels
        mp.setenv("HYBRIDKIT_FAST", os.environ.get("HYBRIDKIT_FAST", "1"))
        status = main(["notebooks", "--out", str(out), "--no-execute"])
    return status, out


def test_there_are_notebooks_with_players():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS
    assert sum(_players(nbformat.read(p, as_version=4)) for p in NOTEBOOKS) >= 5


@pytest.mark.slow
def test_the_demo_command_converts_every_notebook_cleanly(demo_html):
    status, out = demo_html
    assert status == 0, "python -m hybridkit notebooks reported remote assets or unconverted formulas"
    assert sorted(p.name for p in out.glob("*.html")) == sorted(p.with_suffix(".html").name for p in NOTEBOOKS)


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_demo_html_is_self_contained_and_holds_its_animations(demo_html, source):
    html = (demo_html[1] / source.with_suffix(".html").name).read_text(encoding="utf-8")
    assert remote_assets(html) == []
    players = _players(nbformat.read(source, as_version=4))
    assert count_animations(html) >= players, f"{source.name}: {players} players in the code"
    assert "<math" in html  # every notebook opens with its equations, rendered as MathML
    assert "FieldPlayer(children=" not in html


@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebook_is_executed_small_and_widget_free(source):
    nb = nbformat.read(source, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unexecuted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None]
    assert unexecuted == [], f"{source.name}: cells {unexecuted} have not run (refresh: README, Development notes)"
    errors = [o.get("ename") for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert "widgets" not in nb.metadata
    assert not any(WIDGET_VIEW in o.get("data", {}) for c in code for o in c.outputs)
    # each player shows its animation (text/html) or a picture, not the widget's repr
    shown = [o for c in code for o in c.outputs
             if o.get("data", {}).get("text/plain", "").startswith("FieldPlayer:")]
    assert len(shown) >= _players(nb) and all("text/html" in o["data"] or "image/png" in o["data"] for o in shown)
    assert source.stat().st_size < MAX_STORED_MB * 1e6, f"{source.name}: {source.stat().st_size / 1e6:.2f} MB"
