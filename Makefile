# make demo   the main job: dataset summary, notebooks run headless, evidence table -> results/
# make test   the quick tier of the test suite (~2-3 min on 2 cores; not the tests marked slow)
# make test-slow  the slow tier (notebooks, subprocesses, browser, torchrun, learning runs; ~12 min)
# make test-all   both tiers in one run (what .ci/run checks: make test, then make test-slow)
# make lab    open JupyterLab on notebooks/
# make evidence  rerun the hybrid vs baselines evidence table (writes it into README.md)
# make bench  the benchmark suite (not tests): one table of ratios vs plain torch; BENCH_ARGS="--quick"
#             for a short run, BENCH_ARGS="--write-readme" to put the table into README.md
#
# Overrides: make TORCH_SPEC="torch==2.13.0+cu128" PIP_ARGS="--index-url ..."   (CUDA)
#            make VENV=/path/to/venv

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hybridkit-installed

.PHONY: demo test test-slow test-all lab evidence bench venv clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (idempotent). uv is much faster than pip but does
# not read pip's configuration, so the find-links location pip is configured with is passed on.
# --compile-bytecode: uv does not write .pyc files by default, and with PYTHONDONTWRITEBYTECODE set
# (as on these machines) every `import torch, phi` would compile from source again (~10 s).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv || true
	@set -e; FL=$$($(PY) -m pip config get global.find-links 2>/dev/null || true); \
	FL="$${PIP_FIND_LINKS:-$$FL}"; \
	if $(PY) -m uv --version >/dev/null 2>&1; then \
	  $(PY) -m uv pip install --compile-bytecode --python $(PY) $${FL:+--find-links $$FL} $(PIP_ARGS) "$(TORCH_SPEC)" -e ".[dev,notebooks]"; \
	else \
	  $(PY) -m pip install $(PIP_ARGS) "$(TORCH_SPEC)" -e ".[dev,notebooks]"; \
	fi
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# The main job: the default dataset, the notebooks executed headless in full mode (results/notebooks,
# with HTML), and the evidence table for one seed (results/evidence.md; `make evidence`: 5 seeds).
# Takes a while on 2 cores (README).
demo: $(STAMP)
	$(PY) -m hybridkit demo
	$(PY) -m hybridkit notebooks --out results/notebooks
	$(PY) -m hybridkit evidence --seeds 0 --out results/evidence --table results/evidence.md
	@echo "results: results/notebooks/*.ipynb|html, results/evidence.md; open them with: make lab"

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

test-all: $(STAMP)
	$(PY) -m pytest -q

BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

evidence: $(STAMP)
	$(PY) -m hybridkit evidence --write-readme

# Jupyter refuses to start as root (containers, CI) unless told: pass --allow-root only then.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=. $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf $(VENV) .pytest_cache
