"""The README's first look runs as printed, twice, and data go where the README says.

The example is taken from README.md itself (the first ``python`` block under "A first look") and
run in a fresh working directory without ``HYBRIDKIT_DATA``, with the dataset file already there
from an earlier run: it must not fail (it used to raise FileExistsError the second time), must
print what its comments claim (the recovered viscosity, the fit's status, one line per cycle), and
must write its dataset into ``./data`` of that directory, nothing into the checkout.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybridkit.data import data_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_TIMEOUT_S = 300  # ~6 s on an idle core; a busy CI runner is much slower


def _first_look() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## A first look\n+```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert found, "README.md has no python block under '## A first look'"
    return found.group(1)


def _h5_files(*folders: Path) -> set[Path]:
    return {p for folder in folders if folder.exists() for p in folder.rglob("*.h5")}


@pytest.mark.slow
def test_readme_first_look_reruns_and_prints_what_it_claims(tmp_path):
    script = tmp_path / "first_look.py"
    script.write_text(_first_look())
    earlier = tmp_path / "data" / "datasets" / "demo.h5"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"left by an earlier run")  # what made the second run fail
    in_checkout = _h5_files(ROOT / "hybridkit", ROOT / "data", ROOT / "notebooks")
    env = {k: v for k, v in os.environ.items() if k != "HYBRIDKIT_DATA"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=EXAMPLE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"^viscosity 0\.5000 \(truth 0\.5\), fit converged$", out, re.MULTILINE), out
    assert re.search(r"8 simulations x 21 frames", out), out
    assert re.findall(r"^cycle (\d): network loss on the data \d", out, re.MULTILINE) == ["1", "2"], out
    losses = re.search(r"^network: training loss ([0-9.e+-]+) -> ([0-9.e+-]+)$", out, re.MULTILINE)
    assert losses and float(losses.group(2)) < float(losses.group(1)), out
    with open(earlier, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"  # replaced by the real dataset
    assert _h5_files(ROOT / "hybridkit", ROOT / "data", ROOT / "notebooks") == in_checkout


def test_data_dir_is_the_working_directory_unless_hybridkit_data_says(tmp_path, monkeypatch):
    monkeypatch.delenv("HYBRIDKIT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data_dir() == tmp_path / "data"
    monkeypatch.setenv("HYBRIDKIT_DATA", str(tmp_path / "shared"))
    assert data_dir() == tmp_path / "shared"
    monkeypatch.setenv("HYBRIDKIT_DATA", "~/hk-data")
    assert data_dir() == Path.home() / "hk-data"

