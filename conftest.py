"""Repository-wide pytest set-up: the notebooks under nbval run in their fast mode.

The suite collects ``notebooks/*.ipynb`` too (``--nbval-lax``, see pyproject.toml; in the slow
tier, ``make test-slow``). The Jupyter kernel that nbval starts inherits this process's environment, so

* ``HYBRIDKIT_FAST=1`` makes each notebook's constants cell pick its small sizes (few
  simulations, few epochs);
* ``OMP_NUM_THREADS=1`` keeps torch to one thread: at test sizes a second thread gains little,
  and on a busy machine (a CI runner shared with other jobs) each OpenMP barrier waits for a
  time slice, which made a fast notebook 5-10x slower in our measurements.

Both are defaults: ``HYBRIDKIT_FAST=0 OMP_NUM_THREADS=2 pytest notebooks`` checks the full-size
runs instead.

Two tiers: tests marked ``slow`` (the notebooks, marked here, and each test that took more than
about 2.5 s on 2 cores: subprocesses, the browser, torchrun, learning and fitting runs) are left
out of ``make test`` (the quick check while working) and run by ``make test-slow``; CI runs both.
"""
import os

os.environ.setdefault("HYBRIDKIT_FAST", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402  (after the environment defaults above, which torch reads on import)


def pytest_collection_modifyitems(config, items):
    """Every notebook cell is in the slow tier (a notebook runs as a whole: tens of seconds)."""
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, whatever OMP_NUM_THREADS says (small problems on a shared
    machine: a second thread slows them down); the previous count restored after."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
