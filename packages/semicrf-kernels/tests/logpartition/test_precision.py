"""The precision guard (``docs/reliability.md``, "The precision guard") on the PyTorch path.

Below each dtype's threshold no warning is given and the marginal identities hold; past it a
``PrecisionWarning`` names the fix, once per call site, in eager mode with ``validate=True``.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from _precision_cases import identity_errors

from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_kernels._shared import precision
from semicrf_kernels.validation import PrecisionWarning, precision_threshold

#: (dtype, magnitudes below its threshold) tested on every path.
QUIET = [
    (torch.float32, [1e2, 1e3, 5e3]),
    (torch.float64, [1e2, 1e6, 5e9]),
]


@pytest.fixture(autouse=True)
def _fresh_call_sites(monkeypatch):
    # "Once per call site" is process-wide; every test starts with no site warned yet.
    monkeypatch.setattr(precision, "_warned_sites", set())


def test_thresholds() -> None:
    # Computed in float64 (the PyTorch path; float64 inputs on every path).
    assert precision_threshold(torch.float64) == 1e10
    assert precision_threshold(torch.float32) == pytest.approx(1e-3 / 2**-23)
    assert precision_threshold(torch.bfloat16) == pytest.approx(1e-3 / 2**-7)
    assert precision_threshold(torch.float16) == pytest.approx(1e-3 / 2**-10)
    # Computed in float32 (the Triton kernels on anything but float64).
    assert precision_threshold(torch.float32, torch.float32) == 1e3
    assert precision_threshold(torch.float16, torch.float32) == pytest.approx(1e-3 / 2**-10)


@pytest.mark.parametrize(("dtype", "magnitudes"), QUIET, ids=str)
def test_no_warning_and_identities_below_the_threshold(dtype, magnitudes) -> None:
    for i, magnitude in enumerate(magnitudes):
        err = identity_errors(dtype, magnitude, use_triton=False, device="cpu", seed=i)
        assert err.magnitude < precision_threshold(dtype)
        assert err.warned == 0, magnitude
        assert err.rowsum <= 1e-5 and err.outside <= 1e-5, (magnitude, err)
        assert err.counts <= 1e-5, (magnitude, err)


def _inputs(dtype: torch.dtype, magnitude: float):
    B, T, C, K = 2, 6, 2, 3
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = torch.linspace(0, magnitude, T, dtype=torch.float64)[None, :, None]
    trans = torch.zeros(C, C, dtype=dtype)
    bias = torch.zeros(K, C, dtype=dtype)
    return cum.to(dtype), trans, bias, torch.tensor([T, 4]), K


@pytest.mark.parametrize(
    ("dtype", "magnitude"),
    [(torch.float64, 3e10), (torch.float32, 2e4), (torch.bfloat16, 2.0), (torch.float16, 4.0)],
    ids=str,
)
def test_warns_once_per_call_site_past_the_threshold(dtype, magnitude) -> None:
    args = _inputs(dtype, magnitude)
    with pytest.warns(PrecisionWarning) as caught:
        for _ in range(3):  # one call site, three calls: one warning
            semi_crf_streaming_forward(*args)
    ours = [w for w in caught if issubclass(w.category, PrecisionWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert str(dtype) in message and "Centre the emissions" in message and "float64" in message
    assert ours[0].filename == __file__  # it points at the caller's line
    with pytest.warns(PrecisionWarning):  # another call site warns again
        semi_crf_streaming_viterbi(*args)


def test_no_warning_without_validation_or_below_the_threshold() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        semi_crf_streaming_forward(*_inputs(torch.float32, 2e4), validate=False)
        semi_crf_streaming_forward(*_inputs(torch.float32, 5e3))
        # Padding rows past each length are never read, so they do not count.
        cum, trans, bias, _, K = _inputs(torch.float32, 2e4)
        semi_crf_streaming_forward(cum, trans, bias, torch.tensor([1, 1]), K)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_accepted_and_computed_in_float32(dtype) -> None:
    cum, trans, bias, lengths, K = _inputs(dtype, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        got = semi_crf_streaming_forward(cum, trans, bias, lengths, K)
    want = semi_crf_streaming_forward(cum.float(), trans.float(), bias.float(), lengths, K)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0)
