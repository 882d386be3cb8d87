"""hybridkit.metrics: exact values on hand-made cases."""
import numpy as np
import pytest
import torch

from hybridkit.metrics import mse, relative_l2, rollout_errors


def test_mse_and_relative_l2_per_sample():
    ref = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    pred = torch.tensor([[3.0, 4.0 + 0.5], [0.0, 0.0]])
    torch.testing.assert_close(mse(pred, ref), torch.tensor([0.125, 0.5]))
    torch.testing.assert_close(relative_l2(pred, ref), torch.tensor([0.1, 1.0]))
    torch.testing.assert_close(relative_l2(np.asarray(pred), np.asarray(ref)), torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        mse(pred, ref[:1])


def test_rollout_errors_per_step():
    """A model that scales by 1.1 where the truth scales by 1: after k steps the error is 1.1**k - 1."""
    u = torch.randn(5, 1, 16)
    targets = u[:, None].expand(5, 3, 1, 16)
    errors = rollout_errors(lambda x: 1.1 * x, u, targets)
    torch.testing.assert_close(errors, torch.tensor([0.1, 0.21, 0.331]))
