"""Experiments from YAML configs: ``python -m hybridkit run CONFIG.yaml``.

* :class:`ExperimentConfig` (+ sections), :func:`load_config`, :func:`apply_overrides` — configs
  read as data (``yaml.safe_load``), unknown keys are errors, ``section.key=value`` overrides
* :func:`prepare_data`, :class:`ExperimentData` — simulate (or reuse) clean and observed data,
  cached by content
* :func:`run_experiment` — one mode (physical, synthetic, hybrid) or all three (``compare``),
  with metrics, figures, ``summary.md`` and a checkpoint in a run directory, resumable
* :func:`check_experiment` — what can be checked before any work (run by ``run_experiment``)
* :class:`StaleRunError` — a run directory's checkpoint came from another config or other data
* :func:`evaluate_run`, :func:`param_error`, :func:`summary_table` — judging on held-out data
* :func:`run_evidence`, :func:`evidence_records`, :func:`evidence_table` — compare-mode results
  over several seeds as records and a mean ± std table (``python -m hybridkit evidence``)
* :func:`information_bound` — the Cramér-Rao bound of a config's scalar coefficients: the smallest
  error any unbiased estimator can have on its data (``python -m hybridkit bound``)
"""
from ._bound import information_bound
from ._config import (DataSection, EvaluateSection, ExperimentConfig, PhysicalSection, SyntheticSection,
                      apply_overrides, experiment_config, load_config)
from ._data import ExperimentData, build_physical_model, prepare_data
from ._evaluate import evaluate_run, param_error
from ._evidence import evidence_records, evidence_table, run_evidence
from ._modes import run_experiment
from ._preflight import check_experiment
from ._provenance import StaleRunError
from ._report import summary_table

__all__ = [
    "ExperimentConfig", "DataSection", "SyntheticSection", "PhysicalSection", "EvaluateSection",
    "experiment_config", "load_config", "apply_overrides", "ExperimentData", "prepare_data",
    "build_physical_model", "run_experiment", "evaluate_run", "param_error", "summary_table",
    "check_experiment", "StaleRunError", "run_evidence", "evidence_records", "evidence_table",
    "information_bound",
]
