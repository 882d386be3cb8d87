"""Datasets: simulate with a physical model into HDF5, read lazily, cut training windows.

* :func:`generate_dataset` — simulate random initial states (optionally per-simulation
  parameters) and write one HDF5 file, atomically and reproducibly
* :func:`write_trajectories` — trajectories computed elsewhere (network rollouts, noisy
  observations) written in the same format
* :class:`DataManager` — lazy, cached reader of such a file (metadata, parameters, time windows)
* :class:`HybridDataset` — sliding windows ``(initial, targets)`` as torch tensors (networks) or
  PhiFlow fields (physical models)
* :class:`AugmentedDataset` — real plus generated windows, with counts and per-item weights
* :func:`make_loader`, :func:`collate_fields` — seeded ``DataLoader`` for either mode
* :class:`DatasetConfig`, :func:`ensure_dataset`, :func:`load_dataset_config`, :func:`data_dir` —
  named datasets generated on demand under ``data/datasets/`` (or ``$HYBRIDKIT_DATA``), reused
  while their config is unchanged; what ``python -m hybridkit demo`` and the notebooks use
* :class:`CacheManager`, :class:`CacheEntry`, :func:`cache_key` — generated trajectories on disk,
  keyed by what produced them, cleaned by age / size
* :class:`DatasetFormatError` — a file is not a hybridkit dataset (or reaches outside itself)
* :class:`DiskFullError` — no room to write a dataset (an ``OSError``; nothing is left behind)
* :class:`ObservationMask`, :func:`spatial_mask`, :func:`temporal_mask`, :func:`add_noise`,
  :func:`masked_mse` — partial, noisy observations and the loss over observed points only

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
"""
from ._augmented import AugmentedDataset
from ._cache import CacheEntry, CacheManager, cache_key
from ._dataset import HybridDataset
from ._dataset_config import DatasetConfig, data_dir, ensure_dataset, load_dataset_config
from ._format import DatasetFormatError
from ._generate import generate_dataset, write_trajectories
from ._loader import collate_fields, make_loader
from ._manager import DataManager
from ._observation import ObservationMask, add_noise, masked_mse, spatial_mask, temporal_mask
from ._space import DiskFullError

__all__ = [
    "generate_dataset",
    "write_trajectories",
    "DataManager",
    "HybridDataset",
    "AugmentedDataset",
    "make_loader",
    "collate_fields",
    "DatasetConfig",
    "ensure_dataset",
    "load_dataset_config",
    "data_dir",
    "CacheManager",
    "CacheEntry",
    "cache_key",
    "DatasetFormatError",
    "DiskFullError",
]
__all__ += ["ObservationMask", "spatial_mask", "temporal_mask", "add_noise", "masked_mse"]
