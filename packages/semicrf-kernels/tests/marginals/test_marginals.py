"""Posterior marginals and entropy (``marginals/pytorch.py``) against enumeration, and
all-forbidden inputs. The public ``streaming_marginals`` on the compiled CPU path is checked
against enumeration in ``tests/logpartition/test_logpartition_numba.py``."""

from __future__ import annotations

import pytest
import torch
from _tiny_cases import TINY

from semicrf_kernels.marginals.pytorch import streaming_marginals_pytorch
from semicrf_kernels.testing.brute_force import brute_force_streaming


@pytest.mark.parametrize(("B", "T", "C", "K", "per_duration", "proj", "forbid"), TINY)
def test_matches_brute_force(make_inputs, B, T, C, K, per_duration, proj, forbid):
    inp = make_inputs(B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid)
    bf = brute_force_streaming(*inp.args, **inp.kwargs)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    marg = streaming_marginals_pytorch(*inp.args, **inp.kwargs)
    torch.testing.assert_close(marg.log_partition, bf.log_partition, **tol)
    torch.testing.assert_close(marg.position, bf.position_marginals, **tol)
    torch.testing.assert_close(marg.boundary, bf.boundary_marginals, **tol)
    torch.testing.assert_close(marg.entropy, bf.entropy, **tol)
    # The boundary marginal is the sum over labels of the segment-start marginal.
    torch.testing.assert_close(marg.segment_start.sum(-1), marg.boundary, **tol)


def test_everything_forbidden_gives_zeros_without_nan(make_inputs) -> None:
    inp = make_inputs(3, 6, 3, 3, proj=True, lengths=[6, 4, 2])
    dead = inp._replace(transition=torch.full_like(inp.transition, -torch.inf))
    marg = streaming_marginals_pytorch(*dead.args, **dead.kwargs)
    for x in marg:
        assert not torch.isnan(x).any()
    assert torch.all(marg.log_partition == -torch.inf)
    assert torch.all(marg.position == 0) and torch.all(marg.entropy == 0)
