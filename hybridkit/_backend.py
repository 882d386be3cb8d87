"""Backend set-up: phiml computes with torch, on the device the user (or the machine) chooses."""
from __future__ import annotations

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
