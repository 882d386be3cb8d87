"""The notebook player in a real browser: JupyterLab on loopback, headless Chromium via Playwright.

The unit tests in test_viz.py check what the kernel side of ``hybridkit.viz.field_player`` sends;
this one checks that JupyterLab really renders it: a small notebook (written here, a 1D Burgers
rollout shown with ``compare_rollout``) is opened in headless Chromium, all cells are run from the
Run menu, the widget must render (play button, slider, image; no "Error displaying widget", no
"Loading widget..." left), and dragging the slider with the mouse must change the picture. A
screenshot is kept in ``tests/artifacts/`` (git-ignored) and its path printed.

Set-up done by the session fixture, so that ``make test-slow`` needs nothing else:

* Chromium: Debian's ``chromium`` at ``/usr/bin/chromium`` (or ``$HYBRIDKIT_CHROMIUM``). When it is
  missing it is installed with ``apt-get install -y --no-install-recommends chromium``; that needs
  root and the package mirror. Without them the test FAILS with the reason: it does not skip.
  Set ``HYBRIDKIT_SKIP_BROWSER=1`` to skip it explicitly (no root, no apt).
* Playwright's Python package (in the ``dev`` extra). Its own browser download (``playwright
  install``) is not used: Playwright drives the system Chromium (``executable_path``).
* JupyterLab from this environment on ``127.0.0.1`` (random free port, random token, a temporary
  root dir, settings and workspaces), stopped again when the session ends.

The stored notebooks 03 (hybrid training) and 05 (your own data) are run the same way (a copy
without outputs, in fast mode: the kernel inherits ``HYBRIDKIT_FAST=1`` from conftest.py): Run
All must reach the end without a traceback (the notebooks' own asserts included), every player in
the code must render as a widget, and the last one (in 03 the one with error panels) must follow
its slider.

A last test exports a small notebook (formulas, a player) with ``hybridkit.viz.export_notebook``
(what ``python -m hybridkit notebooks`` runs) and opens the HTML from disk with the network
blocked: every request that is not the file itself fails the test, the formulas must be rendered
MathML elements with a size, and the player's animation must step and play.

Every wait is bounded: server start <= 90 s, page load <= 60 s, running the cells <= 120 s
(a stored notebook: <= 600 s).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
SKIP_ENV = "HYBRIDKIT_SKIP_BROWSER"
CHROMIUM = os.environ.get("HYBRIDKIT_CHROMIUM", "/usr/bin/chromium")
# Background networking, component updates and sync open connections to Google that are refused
# here (only loopback is reachable); without these flags Chromium keeps retrying them. QUIC and the
# GPU are of no use headless.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SERVER_START_S = 90
PAGE_LOAD_S = 60
RUN_CELLS_S = 120
APT_TIMEOUT_S = 600

if os.environ.get(SKIP_ENV, "") not in ("", "0"):
    pytest.skip(f"{SKIP_ENV} is set: browser test skipped on request", allow_module_level=True)

# The notebook under test: one trajectory of the solver, shown with the player. The last cell
# prints a marker, so the test knows that Run All reached the end.
NOTEBOOK_CELLS = [
    """\
import numpy as np
import torch

torch.set_num_threads(1)

from hybridkit import GridSpec
from hybridkit.convert import to_tensor
from hybridkit.physics import Burgers
from hybridkit.viz import compare_rollout

grid = GridSpec(resolution=(64,), domain_size=(2 * np.pi,))


def trajectory(viscosity):
    model = Burgers(grid, dt=0.05, viscosity=viscosity, substeps=4)
    frames = model.rollout(model.random_state(1, seed=0), 20)  # 21 frames on batch dim "time"
    return to_tensor(frames["velocity"], batch_names=("time", "batch"))[:, 0]  # (time, x)


truth, prediction = trajectory(0.1), trajectory(0.2)
print(tuple(truth.shape))""",
    """\
player = compare_rollout(truth, prediction, grid=grid, dt=0.05)
player""",
    'print("ALL-CELLS-" + "DONE")',  # split, so the marker only appears once the cell has run
]
DONE_MARKER = "ALL-CELLS-DONE"
KERNEL_IDLE = re.compile(r"ipykernel\) \| Idle")  # JupyterLab's status bar: "<kernel> | Idle"


# ----------------------------------------------------------------------------- set-up


def _fail_setup(what: str, detail: str = "") -> None:
    pytest.fail(
        f"Browser test set-up failed: {what}.{(' ' + detail.strip()) if detail else ''}\n"
        f"Fix: install Debian's chromium (apt-get install -y chromium, as root) or point "
        f"HYBRIDKIT_CHROMIUM at a Chromium binary; or set {SKIP_ENV}=1 to skip this test.",
        pytrace=False,
    )


def _ensure_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if "HYBRIDKIT_CHROMIUM" in os.environ:
        _fail_setup(f"HYBRIDKIT_CHROMIUM={CHROMIUM} does not exist")
    if shutil.which("apt-get") is None:
        _fail_setup(f"{CHROMIUM} is missing and there is no apt-get to install it")
    if os.geteuid() != 0:
        _fail_setup(f"{CHROMIUM} is missing and installing it needs root "
                    f"(this is uid {os.geteuid()})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = [["apt-get", "update"],
             ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=APT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _fail_setup(f"`{' '.join(cmd)}` did not finish within {APT_TIMEOUT_S} s")
        if done.returncode != 0:
            _fail_setup(f"`{' '.join(cmd)}` exited with {done.returncode}",
                        (done.stderr or done.stdout)[-2000:])
    if not os.path.exists(CHROMIUM):
        _fail_setup(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _ensure_playwright() -> None:
    try:
        import playwright.sync_api  # noqa: F401
        return
    except ImportError:
        pass
    # Part of the dev extra; an environment made before it was added gets it here (the wheel only,
    # Playwright's browsers are not downloaded).
    uv = [sys.executable, "-m", "uv", "pip", "install", "--python", sys.executable, "playwright"]
    pip = [sys.executable, "-m", "pip", "install", "-q", "playwright"]
    errors = []
    for cmd in (uv, pip):
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            errors.append(f"{' '.join(cmd[:4])}: timed out")
            continue
        if done.returncode == 0:
            break
        errors.append(f"{' '.join(cmd[:4])}: {(done.stderr or done.stdout).strip()[-500:]}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "Browser test set-up failed: the playwright package is missing and could not be "
            f"installed ({'; '.join(errors)}). Fix: pip install 'hybridkit[dev]' (or pip install "
            f"playwright); or set {SKIP_ENV}=1 to skip this test.",
            pytrace=False,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(f"{base}{path}", method=method,
                                 headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class Lab:
    """A running JupyterLab: ``base`` URL, ``token``, ``root`` directory, ``log`` file."""

    def __init__(self, base: str, token: str, root: Path, log: Path):
        self.base, self.token, self.root, self.log = base, token, root, log

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"


def _stop_server(proc: subprocess.Popen, lab: Lab) -> None:
    # Shut the kernels down through the API first (they run in their own sessions, out of reach
    # of the server's process group), then stop the server; SIGKILL the group if it hangs.
    if proc.poll() is None:
        try:
            for kernel in _api(lab.base, lab.token, "/api/kernels") or []:
                _api(lab.base, lab.token, f"/api/kernels/{kernel['id']}", method="DELETE",
                     timeout=20)
        except (OSError, ValueError):
            pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the server started and left behind
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _ensure_chromium()
    _ensure_playwright()
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("lab")
    root = home / "root"
    root.mkdir()
    token = secrets.token_hex(16)
    port = _free_port()
    log = home / "jupyter.log"
    # No news or update toasts: they would cover the widget in the screenshot.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Every cell attached and rendered (the default lets the browser skip cells out of view): the
    # outputs at the end of a long notebook can then be found and read without scrolling to them.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [
        str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        # fresh settings and workspaces: no saved layout or user setting changes what is tested
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        # nothing to fetch from outside loopback
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:  # containers and CI often run as root; Jupyter refuses it by default
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(home / "runtime"), PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_TOKEN", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode} while starting:\n"
                            f"{_tail(log)}", pytrace=False)
            try:
                _api(server.base, token, "/api/status", timeout=2)
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n"
                                f"{_tail(log)}", pytrace=False)
                time.sleep(0.5)
        yield server
    finally:
        _stop_server(proc, server)


# ----------------------------------------------------------------------------- the test


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, str(path))


# The picture the widget shows: the <img> must be decoded, and its bytes are hashed so that a new
# blob: URL with the same PNG would not count as a change.
_IMAGE_STATE_JS = """async (img) => {
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    const hex = Array.from(new Uint8Array(digest))
        .map(b => b.toString(16).padStart(2, "0")).join("");
    return {src: img.src, sha256: hex, size: bytes.byteLength,
            width: img.naturalWidth, height: img.naturalHeight, complete: img.complete};
}"""


def _settled_image(page, image, old_src: str, timeout_s: float = 60.0) -> dict:
    """The widget image once it has left ``old_src`` and stays put with the kernel idle."""
    page.wait_for_function("([img, old]) => img.src !== old", arg=[image.element_handle(), old_src],
                           timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    idle = page.locator(".jp-StatusBar-Widget").filter(has_text=KERNEL_IDLE)
    last = None
    while time.monotonic() < deadline:
        idle.wait_for(timeout=timeout_s * 1000)
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=timeout_s * 1000)
        src = image.get_attribute("src")
        if src == last and idle.count():
            return image.evaluate(_IMAGE_STATE_JS)
        last = src
        time.sleep(1.0)
    pytest.fail(f"The widget image kept changing for {timeout_s} s", pytrace=False)


def _open_notebook(page, lab: Lab, name: str, num_cells: int):
    """Open ``name`` in JupyterLab and wait until its last cell is shown and its kernel is idle.

    Each notebook gets a workspace of its own: the default one would reopen the notebooks of the
    earlier tests beside it, and Run All could then go to one of those (measured: it did).
    """
    stem = Path(name).stem
    page.goto(lab.url(f"/lab/workspaces/{stem}/tree/{name}"), timeout=PAGE_LOAD_S * 1000)
    tabs = page.locator("#jp-main-dock-panel .lm-DockPanel-tabBar .lm-TabBar-tab")
    page.locator("#jp-main-dock-panel .lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current",
                 has_text=name).wait_for(timeout=PAGE_LOAD_S * 1000)
    assert tabs.count() == 1, tabs.all_inner_texts()
    # (The toolbar's execution indicator reads "idle" for a moment before the kernel connects;
    # the status bar names the kernel.)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    notebook.locator(".jp-Cell").nth(num_cells - 1).wait_for(state="attached", timeout=PAGE_LOAD_S * 1000)
    page.locator(".jp-StatusBar-Widget").filter(has_text=KERNEL_IDLE).wait_for(timeout=PAGE_LOAD_S * 1000)
    return notebook


def _run_all(page, notebook, timeout_s: float) -> str:
    """Run > Run All Cells, as a user would; wait for the done marker. Returns the outputs' text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    done = notebook.locator(".jp-OutputArea-output", has_text=DONE_MARKER)
    raised = notebook.locator(".jp-OutputArea-output", has_text="Traceback")
    try:  # a cell that raises stops Run All: no need to wait for the marker then
        done.or_(raised).first.wait_for(state="attached", timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        outputs = notebook.locator(".jp-OutputArea").all_inner_texts()
        pytest.fail(f"Run All did not reach the last cell within {timeout_s:.0f} s. "
                    f"Outputs so far: {outputs}", pytrace=False)
    if raised.count():
        pytest.fail(f"A notebook cell raised:\n{raised.first.text_content()}", pytrace=False)
    page.locator(".jp-StatusBar-Widget").filter(has_text=KERNEL_IDLE).wait_for(timeout=timeout_s * 1000)
    text = "\n".join(notebook.locator(".jp-OutputArea").all_text_contents())
    assert "Traceback" not in text, text
    return text


def _check_player(page, widget, shot: Path) -> dict:
    """The widget rendered (play button, slider, image; no error or pending placeholder), and
    dragging its slider with the mouse to ~3/4 shows that frame, Home shows frame 0 again.
    Keeps a screenshot of the moved frame in ``shot``. Returns what was measured."""
    widget.wait_for(state="visible", timeout=PAGE_LOAD_S * 1000)
    widget.scroll_into_view_if_needed()
    play = widget.locator(".widget-play")
    slider = widget.locator(".widget-slider")
    image = widget.locator("img.widget-image")
    assert play.count() == 1 and slider.count() == 1 and image.count() == 1, widget.inner_html()[:2000]
    assert play.locator("button").count() >= 1  # play / pause / stop / repeat
    page_text = page.locator("body").inner_text()
    assert "Error displaying widget" not in page_text
    assert "Loading widget..." not in page_text
    readout = slider.locator(".widget-readout")
    assert readout.inner_text().strip() == "0"
    handle = slider.locator(".noUi-handle")
    last = round(float(handle.get_attribute("aria-valuemax")))
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle(), timeout=PAGE_LOAD_S * 1000)
    before = image.evaluate(_IMAGE_STATE_JS)
    assert before["width"] > 300 and before["height"] > 200, before
    assert before["size"] > 5000, before  # a real plot, not an empty picture

    # Drag the slider handle to about three quarters of its track with the mouse.
    track = slider.locator(".noUi-base")
    hbox, tbox = handle.bounding_box(), track.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(tbox["x"] + 0.75 * tbox["width"], hbox["y"] + hbox["height"] / 2, steps=10)
    page.mouse.up()
    frame = int(readout.inner_text().strip())
    assert last // 2 <= frame <= last, (frame, last)  # 3/4 of 0..last, give or take the handle

    # The kernel re-renders the frame (once per value the drag passed) and the new PNG replaces
    # the old one: wait for the last one, then compare the pictures.
    after = _settled_image(page, image, before["src"])
    assert after["sha256"] != before["sha256"], (before, after)
    assert (after["width"], after["height"]) == (before["width"], before["height"])
    assert int(readout.inner_text().strip()) == frame

    # The picture follows the slider, it does not merely change: back at frame 0 (Home key on the
    # focused handle) the kernel draws the very first PNG again.
    page.screenshot(path=str(shot))  # the moved frame, kept as the artefact
    handle.focus()
    handle.press("Home")
    page.wait_for_function("(el) => el.textContent.trim() === '0'", arg=readout.element_handle(),
                           timeout=10_000)
    back = _settled_image(page, image, after["src"])
    assert back["sha256"] == before["sha256"], (before, back)
    assert "Error displaying widget" not in page.locator("body").inner_text()
    # Shown at most at its own size, undistorted (a 550 x 360 picture once filled the cell, 964 x 631).
    shown = image.bounding_box()
    assert shown["width"] <= before["width"] + 1, (shown, before)
    assert abs(shown["width"] / shown["height"] - before["width"] / before["height"]) < 0.02 * before["width"] / before["height"]
    return {"frame": frame, "last": last, "png": (before["width"], before["height"]),
            "shown": (round(shown["width"]), round(shown["height"]))}


class _Browser:
    """A headless Chromium page for one test; a screenshot of the page if the test fails."""

    def __init__(self, chromium: str, failure_shot: Path):
        self.chromium, self.failure_shot = chromium, failure_shot

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        ARTIFACTS.mkdir(exist_ok=True)
        self.failure_shot.unlink(missing_ok=True)
        self._pw = sync_playwright().start()
        # launch() gives Chromium a fresh temporary profile (--user-data-dir) and removes it again.
        self.browser = self._pw.chromium.launch(executable_path=self.chromium, headless=True,
                                                args=CHROMIUM_ARGS, timeout=PAGE_LOAD_S * 1000)
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1100})
        self.page.set_default_timeout(PAGE_LOAD_S * 1000)
        return self.page

    def __exit__(self, kind, value, tb):
        try:
            if kind is not None:
                try:
                    self.page.screenshot(path=str(self.failure_shot))
                    print(f"\nscreenshot of the failure: {self.failure_shot}")
                except Exception:  # noqa: BLE001 - the original failure matters more
                    pass
        finally:
            self.browser.close()
            self._pw.stop()
        return False


@pytest.mark.slow
def test_player_renders_and_slider_changes_plot_in_jupyterlab(chromium, lab):
    started = time.monotonic()
    _write_notebook(lab.root / "player.ipynb")
    shot = ARTIFACTS / "browser_field_player.png"
    shot.unlink(missing_ok=True)
    with _Browser(chromium, ARTIFACTS / "browser_failure.png") as page:
        notebook = _open_notebook(page, lab, "player.ipynb", len(NOTEBOOK_CELLS))
        outputs_text = _run_all(page, notebook, RUN_CELLS_S)
        assert "(21, 64)" in outputs_text, outputs_text  # the trajectory: 21 frames of 64 cells
        widget = notebook.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox").first
        measured = _check_player(page, widget, shot)
        print(f"\nscreenshot: {shot} ({measured}, {time.monotonic() - started:.1f} s in the browser test)")
    assert shot.exists() and shot.stat().st_size > 10_000


# ----------------------------------------------------------------------------- the stored notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Fast mode (conftest.py: the kernels inherit HYBRIDKIT_FAST=1): 03 and 05 run in 15-25 s under
# nbval on 2 idle cores; in the browser, on a machine busy with other work, several times that.
RUN_NOTEBOOK_S = 600
# What the last cell of each notebook prints once its own asserts passed.
NOTEBOOK_CASES = {
    "03_hybrid_augmentation": "network rollout error after",
    "05_your_own_data": "hybrid / synthetic only after 10 steps",
}


def _copy_for_lab(name: str, root: Path) -> tuple[str, int, int]:
    """The stored notebook, without its outputs and with a done marker at the end, in the lab's
    root. Returns ``(file name, number of cells, number of players in the code)``."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    players = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            players += len(re.findall(r"\b(?:field_player|compare_rollout)\(", cell.source))
    nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELLS[-1]))
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, str(root / f"{name}.ipynb"))
    return f"{name}.ipynb", len(nb.cells), players


@pytest.mark.parametrize("name", sorted(NOTEBOOK_CASES))
@pytest.mark.slow
def test_stored_notebook_runs_in_jupyterlab_and_its_players_move(chromium, lab, name):
    started = time.monotonic()
    file, num_cells, players = _copy_for_lab(name, lab.root)
    assert players >= 1, f"{name} shows no player"
    shot = ARTIFACTS / f"browser_{name}.png"
    shot.unlink(missing_ok=True)
    with _Browser(chromium, ARTIFACTS / f"browser_failure_{name}.png") as page:
        notebook = _open_notebook(page, lab, file, num_cells)
        outputs_text = _run_all(page, notebook, RUN_NOTEBOOK_S)
        ran_s = time.monotonic() - started
        assert NOTEBOOK_CASES[name] in outputs_text, outputs_text[-3000:]
        widgets = notebook.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox")
        assert widgets.count() == players, (widgets.count(), players)
        # the last player of the notebook (in 03 the one with the error panels)
        measured = _check_player(page, widgets.last, shot)
        print(f"\n{name}: ran in {ran_s:.0f} s, player {measured}; screenshot: {shot} "
              f"({time.monotonic() - started:.0f} s in all)")
    assert shot.exists() and shot.stat().st_size > 10_000


# ----------------------------------------------------------------------------- exported HTML, offline

EXPORT_MARKDOWN = r"""# Offline

The velocity $u(x, t)$ obeys

$$\partial_t u + u\,\partial_x u = \nu\,\partial_x^2 u .$$"""
EXPORT_PLAYER = """\
import numpy as np
from hybridkit import GridSpec
from hybridkit.viz import field_player

grid = GridSpec((32,), (1.0,))
x = grid.coordinates()[0]
u = np.sin(2 * np.pi * (x[None] - 0.05 * np.arange(12)[:, None]))
field_player({"truth": u, "model": 0.9 * u}, grid=grid, dt=0.1, error_of="truth")"""


@pytest.mark.slow
def test_exported_html_renders_formulas_and_animation_offline(chromium, tmp_path):
    import nbformat
    from playwright.sync_api import sync_playwright

    from hybridkit.viz import export_notebook

    started = time.monotonic()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(EXPORT_MARKDOWN), nbformat.v4.new_code_cell(EXPORT_PLAYER)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "offline.ipynb"))
    done = export_notebook(tmp_path / "offline.ipynb", tmp_path / "out", timeout=RUN_CELLS_S)
    url = done.html.resolve().as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser_offline_html.png"
    shot.unlink(missing_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                                     timeout=PAGE_LOAD_S * 1000)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 1000})
            fetched = []

            def only_the_file(route):
                fetched.append(route.request.url)
                if route.request.url == url or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", only_the_file)
            page = context.new_page()
            page.set_default_timeout(PAGE_LOAD_S * 1000)
            page.goto(url, wait_until="load")
            assert [u for u in fetched if u != url and not u.startswith("data:")] == []

            # The formulas are MathML that the browser laid out (not raw TeX).
            assert page.locator("math").count() == 2
            block = page.locator('math[display="block"]')
            box = block.bounding_box()
            assert box["width"] > 100 and box["height"] > 15, box
            assert "math" in block.evaluate("el => getComputedStyle(el).display")
            text = page.locator("body").inner_text()
            assert "$$" not in text and "\\partial" not in text

            # The player's animation: controls, a decoded frame, stepping and playing move it.
            anim = page.locator(".hk-animation")
            assert anim.count() == 1
            image = anim.locator("img.hk-frame")
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 300",
                                   arg=image.element_handle())
            label = anim.locator(".hk-label")
            assert label.inner_text().startswith("t = 0 ")
            first = image.get_attribute("src")
            anim.get_by_role("button", name="Next frame").click()
            assert "(frame 1/11)" in label.inner_text() and image.get_attribute("src") != first
            assert anim.locator(".hk-slider").input_value() == "1"
            anim.get_by_role("button", name="Play").click()
            page.wait_for_function("(el) => !el.textContent.includes('(frame 1/11)')",
                                   arg=label.element_handle(), timeout=10_000)
            anim.get_by_role("button", name="Pause").click()
            anim.get_by_role("button", name="Last frame").click()
            assert "(frame 11/11)" in label.inner_text()
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot} ({time.monotonic() - started:.1f} s, export included)")
        finally:
            browser.close()
    assert shot.exists() and shot.stat().st_size > 10_000
