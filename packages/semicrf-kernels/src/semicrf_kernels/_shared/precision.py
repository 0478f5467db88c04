"""The precision guard: a warning when ``cum_scores`` are too large for their dtype.

A segment score is a difference of two ``cum_scores`` rows, and a row of magnitude ``M`` is only
known to about ``M * eps`` of its dtype; past some magnitude log Z, its gradients and the
marginals stop being exact (marginals leave ``[0, 1]``). No floating-point implementation avoids
that, so the streaming API says so (``docs/reliability.md``, "The precision guard"). It reads the
values, so :func:`semicrf_kernels.validation.validate_streaming_inputs` runs it only with
``validate=True`` in eager mode.
"""

from __future__ import annotations

import sys
import warnings

import torch

__all__ = ["PrecisionWarning", "check_precision", "precision_threshold"]


class PrecisionWarning(UserWarning):
    """``cum_scores`` past the magnitude at which their dtype keeps the results exact."""


#: Absolute precision of a segment score (a difference of two rows) the guard protects.
SEGMENT_SCORE_PRECISION = 1e-3
#: Past these ``|cum_scores|`` the arithmetic of the computation (not the inputs) no longer keeps
#: the position marginals to 1e-5. Measured (largest error of a position's marginals summing to
#: 1): float64, PyTorch and Triton paths, 5e-6 at 1e10 and 7e-4 at 1e12; float32, the Triton
#: kernels, 5e-6 at 1e3, 1.1e-5 at 2e3 and 3.3e-5 at 3e3. The PyTorch path always computes in
#: float64; the Triton kernels in float32 unless ``cum_scores`` are float64.
COMPUTE_LIMIT = {torch.float64: 1e10, torch.float32: 1e3}

#: (file, line) of the call sites warned already: once each, for the life of the process.
_warned_sites: set[tuple[str, int]] = set()
_OUR_PACKAGES = ("semicrf_kernels", "semicrf_nn", "semicrf_core", "flash_semicrf", "torch")


def precision_threshold(dtype: torch.dtype, compute_dtype: torch.dtype = torch.float64) -> float:
    """The largest ``max |cum_scores|`` (over valid rows) accepted without a warning.

    ``min(1e-3 / eps(dtype), COMPUTE_LIMIT[compute_dtype])``: computed in float64 (the PyTorch
    path, or float64 inputs anywhere), float64 1e10, float32 8.4e3, float16 1.02, bfloat16
    0.128; computed in float32 (the Triton kernels on float32, float16 or bfloat16 inputs),
    float32 1e3 and the half precisions as before.

    Args:
        dtype: the floating dtype of ``cum_scores`` as given (before any upcast).
        compute_dtype: the dtype the chosen path computes in (float32 or float64).
    """
    return min(SEGMENT_SCORE_PRECISION / torch.finfo(dtype).eps, COMPUTE_LIMIT[compute_dtype])


def _call_site() -> tuple[str, int, str]:
    """File, line and module of the first caller outside flash-semicrf's layers and torch."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in _OUR_PACKAGES:
            return frame.f_code.co_filename, frame.f_lineno, module
        frame = frame.f_back
    return "<unknown>", 0, "<unknown>"


def check_precision(
    cum_scores: torch.Tensor, valid_rows: torch.Tensor, compute_dtype: torch.dtype
) -> None:
    """Warn (:class:`PrecisionWarning`, once per call site) when ``cum_scores`` are too large.

    Args:
        cum_scores: ``(batch, T+1, C)`` floating, the caller's tensor in its own dtype.
        valid_rows: ``(batch, T+1)`` bool, the rows the model reads (``t <= lengths[b]``).
        compute_dtype: the dtype the chosen path computes in (float32 or float64).
    """
    limit = precision_threshold(cum_scores.dtype, compute_dtype)
    zero = torch.zeros((), dtype=cum_scores.dtype, device=cum_scores.device)
    magnitude = float(torch.where(valid_rows[..., None], cum_scores.detach().abs(), zero).max())
    if magnitude <= limit:
        return
    filename, lineno, module = _call_site()
    if (filename, lineno) in _warned_sites:
        return
    _warned_sites.add((filename, lineno))
    warnings.warn_explicit(
        f"cum_scores reach {magnitude:.3g} in magnitude, past {limit:.3g}, the largest at which "
        f"{cum_scores.dtype} inputs computed in {compute_dtype} keep segment scores to "
        f"{SEGMENT_SCORE_PRECISION:g} and the marginals to 1e-5: log Z, its gradients and the marginals may be inexact (marginals "
        f"outside [0, 1]). Centre the emissions (subtract each sequence's mean score per label, "
        f"as SemiMarkovCRFHead's center_emissions=True does) or pass float64 cum_scores. "
        f"(Warned once per call site; validate=False skips the check.)",
        PrecisionWarning,
        filename,
        lineno,
        module=module,
    )
