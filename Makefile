# make demo   generate the default dataset and show what it holds (the README's main job)
# make test   run the whole test suite (what .ci/run calls)
# make lab    open JupyterLab on notebooks/
# make evidence  rerun the hybrid vs baselines evidence table (writes it into README.md)
#
# Overrides: make TORCH_SPEC="torch==2.13.0+cu128" PIP_ARGS="--index-url ..."   (CUDA)
#            make VENV=/path/to/venv

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hybridkit-installed

.PHONY: demo test lab evidence venv clean

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

demo: $(STAMP)
	$(PY) -m hybridkit demo

test: $(STAMP)
	$(PY) -m pytest -q

evidence: $(STAMP)
	$(PY) -m hybridkit evidence --write-readme

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
