"""hybridkit: hybrid-cooperative PDE modelling with a PhiFlow physical model and a PyTorch network.

* :mod:`hybridkit.physics` — differentiable PDE solvers with learnable coefficients
* :mod:`hybridkit.data` — HDF5 datasets, ``DataManager``, ``HybridDataset``, loaders
* :mod:`hybridkit.convert` — the torch <-> PhiFlow boundary
"""
from . import _backend  # noqa: F401  (phiml computes with torch)
from ._grid import GridSpec

__version__ = "0.1.0"
__all__ = ["GridSpec", "__version__"]
