"""Device placement: nothing in the package names a device; physics tensors are made on
phiml's default device (``use_device``) and tensors passed in keep theirs."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import hybridkit
from hybridkit import GridSpec
from hybridkit._backend import as_physics_tensor, physics_device, resolve_device, use_device
from hybridkit.physics import Burgers, learnable

PACKAGE = Path(hybridkit.__file__).parent
# the only places allowed to spell a device: where "auto" is resolved and where ranks pick theirs
ALLOWED = {"_backend.py", "_distributed.py"}


def test_no_module_hard_codes_a_device():
    pattern = re.compile(r"""["']cuda(:\d+)?["']|\.cuda\(\)""")
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p.name not in ALLOWED
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line.split("#")[0])]
    assert offenders == []


def test_physics_tensors_are_made_on_the_physics_device():
    assert use_device("cpu") == torch.device("cpu") == physics_device()
    model = Burgers(GridSpec((16,), (10.0,)), viscosity=np.full(16, 0.3))
    state = model.random_state(2, seed=0)["velocity"]
    assert state.values.native(["batch", "x"]).device == physics_device()
    assert model.true_params["viscosity"].native(["x"]).device == physics_device()
    assert learnable("viscosity", np.full(16, 0.2)).tensor(model).native(["x"]).device == physics_device()
    t = torch.zeros(3, dtype=torch.float64)
    assert as_physics_tensor(t) is t  # a torch tensor keeps its device (and dtype)


def test_cuda_asked_for_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        assert use_device("auto").type == "cuda"
        use_device("cpu")
        return
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        use_device("cuda")
    assert physics_device() == torch.device("cpu")
