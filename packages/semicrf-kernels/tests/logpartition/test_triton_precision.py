"""The precision guard's promise on the Triton kernels: below each dtype's threshold no warning
and the marginal identities hold; float64 ``cum_scores`` are computed in float64.

Runs under the Triton interpreter on the CPU (nox runs every ``test_triton_*`` file that way) and
natively on CUDA.
"""

from __future__ import annotations

import pytest
import torch
from _precision_cases import identity_errors
from _triton_env import DEVICE, TRITON_MARKS

from semicrf_kernels import semi_crf_streaming_forward
from semicrf_kernels._shared import precision
from semicrf_kernels.validation import precision_threshold

pytestmark = TRITON_MARKS

# float32 computes in float32 here: its threshold is 1e3, not 8.4e3 as on the PyTorch path.
QUIET = [
    (torch.float32, [1e2, 5e2, 9e2]),
    (torch.float64, [1e2, 1e6, 5e9]),
]


@pytest.fixture(autouse=True)
def _fresh_call_sites(monkeypatch):
    monkeypatch.setattr(precision, "_warned_sites", set())


@pytest.mark.parametrize(("dtype", "magnitudes"), QUIET, ids=str)
def test_no_warning_and_identities_below_the_threshold(dtype, magnitudes) -> None:
    for i, magnitude in enumerate(magnitudes):
        err = identity_errors(dtype, magnitude, use_triton=True, device=DEVICE, seed=i)
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        assert err.magnitude < precision_threshold(dtype, compute)
        assert err.warned == 0, magnitude
        assert err.rowsum <= 1e-5 and err.outside <= 1e-5, (magnitude, err)
        assert err.counts <= 1e-5, (magnitude, err)


def test_float32_kernels_warn_past_their_own_threshold() -> None:
    # 2e3: quiet on the PyTorch path (float64 arithmetic), a warning on the float32 kernels.
    err = identity_errors(torch.float32, 2e3, use_triton=True, device=DEVICE, seed=7)
    assert err.warned == 1
    err = identity_errors(torch.float32, 2e3, use_triton=False, device=DEVICE, seed=7)
    assert err.warned == 0 and err.rowsum <= 1e-5


def test_float64_is_computed_in_float64() -> None:
    # At |cum| = 1e8 a float32 computation is off by whole units (1e8 * 2^-24 = 6); float64
    # agrees with the float64 PyTorch path to a few roundings of the result.
    g = torch.Generator().manual_seed(3)
    B, T, C, K = 2, 30, 3, 4
    scores = 1e8 / T + torch.randn(B, T, C, generator=g, dtype=torch.float64)
    cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), scores.cumsum(1)], 1).to(DEVICE)
    trans = torch.randn(C, C, generator=g, dtype=torch.float64).to(DEVICE)
    bias = torch.randn(K, C, generator=g, dtype=torch.float64).to(DEVICE)
    lengths = torch.tensor([T, 17], device=DEVICE)
    triton = semi_crf_streaming_forward(cum, trans, bias, lengths, K, use_triton=True)
    pytorch = semi_crf_streaming_forward(cum, trans, bias, lengths, K, use_triton=False)
    assert triton.dtype == torch.float64
    torch.testing.assert_close(triton, pytorch, rtol=1e-13, atol=0)
