"""hybridkit: hybrid-cooperative PDE modelling with a PhiFlow physical model and a PyTorch network.

* :mod:`hybridkit.physics` — differentiable PDE solvers with learnable coefficients, ``learnable``
* :mod:`hybridkit.data` — HDF5 datasets, ``DataManager``, ``HybridDataset``, ``AugmentedDataset``,
  ``CacheManager``, observation masks and noise, loaders
* :mod:`hybridkit.models` — UNet / ResNet / ConvNet, ``rollout``, ``ModelRegistry``
* :mod:`hybridkit.training` — ``SyntheticTrainer``, ``PhysicalTrainer``, ``HybridTrainer``
* :mod:`hybridkit.experiment` — YAML experiments (``python -m hybridkit run``), the evidence table
* :mod:`hybridkit.metrics`, :mod:`hybridkit.evaluation` — errors per sample and per rollout step
* :mod:`hybridkit.viz` — interactive players, animations, parameter and loss plots
* :mod:`hybridkit.convert` — the torch <-> PhiFlow boundary
* :func:`use_device` — where the physics makes its tensors (``"auto"``: CUDA when present);
  networks are placed by their trainers' ``device`` option
"""
from . import _backend  # noqa: F401  (phiml computes with torch)
from ._backend import use_device
from ._grid import GridSpec

__version__ = "0.1.0"
__all__ = ["GridSpec", "use_device", "__version__"]
