"""Datasets: simulate with a physical model into HDF5, read lazily, cut training windows.

* :func:`generate_dataset` — simulate random initial states (optionally per-simulation
  parameters) and write one HDF5 file, atomically and reproducibly
* :func:`write_trajectories` — trajectories computed elsewhere (network rollouts, noisy
  observations) written in the same format
* :func:`import_arrays`, :func:`import_pdebench`, :func:`import_xarray` — bring your own data:
  trajectories from numpy arrays, PDEBench HDF5 files or xarray / netCDF into this format, the
  grid and ``dt`` taken from the coordinates and checked (see "Imported data" below);
  :func:`to_xarray` — a dataset as an ``xarray.Dataset`` for analysis (``pip install 'hybridkit[io]'``)
* :class:`DataManager` — lazy, cached reader of such a file (metadata, parameters, time windows)
* :class:`HybridDataset` — sliding windows ``(initial, targets)`` as torch tensors (networks) or
  PhiFlow fields (physical models)
* :class:`AugmentedDataset` — real plus generated windows, with counts and per-item weights
* :func:`make_loader`, :func:`collate_fields`, :class:`EpochSampler` — seeded ``DataLoader`` for
  either mode; :func:`create_data_loader` — one from an experiment config in the design note's layout
* :class:`DatasetConfig`, :func:`ensure_dataset`, :func:`load_dataset_config`, :func:`data_dir`,
  :func:`build_model`, :func:`coefficient`, :func:`parametric_spec` —
  named datasets generated on demand under ``data/datasets/`` (or ``$HYBRIDKIT_DATA``), reused
  while their config is unchanged; what ``python -m hybridkit demo`` and the notebooks use
* :class:`CacheManager`, :class:`CacheEntry`, :func:`cache_key` — generated trajectories on disk,
  keyed by what produced them, cleaned by age / size
* :class:`DatasetFormatError` — a file is not a hybridkit dataset (or reaches outside itself)
* :class:`DiskFullError` — no room to write a dataset (an ``OSError``; nothing is left behind)
* :func:`check_data_matches`, :func:`check_values_match`, :func:`check_network_matches`,
  :class:`DataMismatchError` — data made on another grid / dt / equation / layout than the model
  that trains on them are refused, naming both (what every trainer calls)
* :class:`ObservationMask`, :func:`spatial_mask`, :func:`temporal_mask`, :func:`add_noise`,
  :func:`masked_mse`, :func:`observed_count` — partial, noisy observations and the loss over observed points only

File format (``format="hybridkit-dataset"``, ``format_version=1``), one HDF5 file per dataset:

``/fields/<name>``
    float32 ``(sims, time, *space)`` for a scalar field, ``(sims, time, *space, vector)`` for a
    vector field (one component per spatial axis, in axis order ``x, y``); chunks
    ``(1, <= 16 frames, *space[, vector])`` (time split evenly) so that a training window reads
    one or two chunks; each chunk carries a Fletcher-32 checksum (damaged bytes fail on reading).
    Attributes ``vector`` (bool) and ``dims`` (e.g. ``"sims,time,x"``).
``/params/<name>``
    float32 ``(sims, *param_shape)``: the value of each learnable parameter actually used by each
    simulation (exactly, never clipped): ``()`` for ``kind="scalar"``, ``resolution`` for
    ``"field"``, ``(ndim,)`` for ``"vector"``. Attributes ``kind``, ``bounds``, ``doc``, ``dims``.
Root attributes
    ``format``, ``format_version``, ``hybridkit_version``, ``pde`` (model class name),
    ``model_config`` (JSON of ``model.config()``), ``dt``, ``resolution`` (int array),
    ``domain_size`` (float array), ``boundary`` (``"periodic"``/``"zero"``), ``seed``,
    ``field_names``, ``vector_fields``, ``param_names``, ``param_kinds`` (JSON lists),
    ``num_sims``, ``num_frames``, ``source_config`` (JSON, what produced the file; may be ``{}``).

Grid: cell centres ``(i + 0.5) * dx`` on ``[0, domain_size)`` per axis. Frame ``t`` is at time
``t * dt``; frame 0 is the initial state. No timestamps are stored, so the same model config,
seed and parameters give a byte-identical file. Plain h5py reads it::

    import h5py, json
    with h5py.File("data/datasets/burgers1d_default.h5") as f:
        u = f["fields/velocity"][0, :5]            # sim 0, frames 0..4: (5, 64)
        nu = f["params/viscosity"][()]             # (sims,)
        names = json.loads(f.attrs["field_names"])

Imported data (``import_*``): the same format, with ``pde`` the name you give (``"unknown"`` by
default), ``model_config`` ``{}``, ``seed`` 0, ``/params`` only the true parameters you pass
(``bounds`` ``(-inf, inf)``), and ``source_config["import"]`` saying where the data came from:
``from`` (``numpy`` / ``pdebench`` / ``xarray``), ``source``, ``origin`` (the lower edge of the
first cell per axis: the original coordinates are ``origin + (i + 0.5) * dx``), ``time_origin``
(frame ``t`` is at ``time_origin + t * dt``) and ``source_attrs`` (e.g. PDEBench's ``Nu``). Each
sample becomes a cell centre (values are never interpolated); coordinates must be uniform within
``1e-3`` of a cell (``spacing_tol``) and periodicity is stated by the caller, never guessed. The
rules for node vs cell-centred coordinates are in ``hybridkit/data/_import.py``'s docstring.
"""
from ._augmented import AugmentedDataset
from ._cache import CacheEntry, CacheManager, cache_key
from ._dataset import HybridDataset
from ._dataset_config import (DatasetConfig, build_model, coefficient, data_dir, ensure_dataset, load_dataset_config,
                              parametric_spec)
from ._format import DatasetFormatError
from ._generate import generate_dataset, write_trajectories
from ._import import import_arrays
from ._loader import EpochSampler, collate_fields, create_data_loader, make_loader
from ._pdebench import import_pdebench
from ._xarray import import_xarray, to_xarray
from ._manager import DataManager
from ._match import DataMismatchError, check_data_matches, check_network_matches, check_values_match, manager_of
from ._observation import ObservationMask, add_noise, masked_mse, observed_count, spatial_mask, temporal_mask
from ._space import DiskFullError

__all__ = [
    "generate_dataset",
    "write_trajectories",
    "DataManager",
    "HybridDataset",
    "AugmentedDataset",
    "make_loader",
    "create_data_loader",
    "EpochSampler",
    "collate_fields",
    "DatasetConfig",
    "ensure_dataset",
    "load_dataset_config",
    "data_dir",
    "build_model",
    "coefficient",
    "parametric_spec",
    "CacheManager",
    "CacheEntry",
    "cache_key",
    "DatasetFormatError",
    "DiskFullError",
]
__all__ += ["import_arrays", "import_pdebench", "import_xarray", "to_xarray"]
__all__ += ["DataMismatchError", "check_data_matches", "check_values_match", "check_network_matches", "manager_of"]
__all__ += ["ObservationMask", "spatial_mask", "temporal_mask", "add_noise", "masked_mse", "observed_count"]
