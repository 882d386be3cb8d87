"""Backend set-up: phiml computes with torch, on the device the user (or the machine) chooses."""
from __future__ import annotations

import numpy as np
import torch
from phiml import math
from phiml.backend.torch import TORCH

# All physics runs on the torch backend so that gradients flow into PyTorch and back.
math.use(TORCH)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a torch device: ``"auto"``/None picks CUDA when present, else CPU.

    Raises:
        ValueError: if a CUDA device is asked for on a machine without one.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"Expected an available device, got device={str(device)!r} but CUDA is not available "
            "here. Fix: pass device='auto' or device='cpu'."
        )
    return dev


def physics_device() -> torch.device:
    """The device new physics tensors are made on (random states, parameters, data handed to a
    solver): phiml's default device, the CPU unless :func:`use_device` chose another.

    Tensors passed in keep their own device: a state already on CUDA is stepped on CUDA.
    """
    return torch.device(TORCH.get_default_device().ref)


def use_device(device: str | torch.device | None = "auto") -> torch.device:
    """Make the physics create its tensors on ``device`` (``"auto"``: CUDA when present).

    Networks are placed by their trainers (``SyntheticTrainer`` config ``device``, default
    ``"auto"``); this sets the same for the physical side (phiml's default device), so that
    generated data, fits and rollouts of the solver run there too.

    Returns:
        The device now in use. Raises ValueError as :func:`resolve_device`.
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        # phiml's torch backend names its GPUs by ref "cuda:<index>"
        matches = [d for d in TORCH.list_devices("GPU") if d.ref == f"cuda:{index}"]
        TORCH.set_default_device(matches[0] if matches else "GPU")
    else:
        TORCH.set_default_device("CPU")
    return physics_device()


def as_physics_tensor(values, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``values`` (numpy, number, torch) as a torch tensor for the physics: a torch tensor as it is
    (its device kept), anything else on :func:`physics_device`."""
    if isinstance(values, torch.Tensor):
        return values if dtype is None else values.to(dtype)
    return torch.as_tensor(np.asarray(values), dtype=dtype, device=physics_device())
