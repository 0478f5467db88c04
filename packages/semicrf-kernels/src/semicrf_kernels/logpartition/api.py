"""``semi_crf_streaming_forward``: validation, then dispatch to Triton or PyTorch."""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from ..validation import check_num_warps, validate_streaming_inputs
from . import op as _op  # noqa: F401 - registers torch.ops.semicrf_kernels.*

__all__ = ["semi_crf_streaming_forward"]


def semi_crf_streaming_forward(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    semiring: str = "log",
    use_triton: bool = True,
    num_warps: int = 4,
    *,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Log partition (or Viterbi score) of a streaming semi-CRF, edges computed on the fly.

    The model is ``docs/conventions.md`` section 1: segments of duration ``1..K`` tile each
    sequence's ``[0, L)``; a segment ``[s, s + d)`` with label ``c`` scores
    ``cum[s+d, c] - cum[s, c] + duration_bias[d-1, c] (+ proj_start[s, c] + proj_end[s+d-1, c])``,
    consecutive segments add ``transition[c_prev, c]`` and the first adds the start score
    ``logsumexp_{c'} transition[c', c]`` (in both semirings). Memory is O(batch T C); no
    ``T K C`` tensor is built.

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores, ``cum[:, 0] = 0``; float32/float64
            (half precisions are accumulated in float32).
        transition: ``(C, C)`` or ``(K, C, C)``, ``transition[c_prev, c]``; entries ``-inf`` or
            ``<= NEG_INF / 2`` forbid the transition.
        duration_bias: ``(K, C)``; row ``d - 1`` scores duration ``d``; forbidden entries as above.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment duration.
        semiring: ``"log"`` (log partition, differentiable) or ``"max"`` (Viterbi score, no
            gradient; use :func:`semicrf_kernels.semi_crf_streaming_viterbi` for the path).
        use_triton: use the Triton kernels when they can run on ``cum_scores``' device (CUDA, or
            the CPU under ``TRITON_INTERPRET=1``); otherwise the CPU path runs (compiled scans on
            the CPU where they apply, else PyTorch; see :func:`semicrf_kernels.set_cpu_path`).
        num_warps: warps per Triton program (a power of two; ignored by the PyTorch path).
        proj_start: optional ``(batch, T, C)`` score read at each segment's first position.
        proj_end: optional ``(batch, T, C)`` score read at each segment's last position.
        validate: run the value checks (lengths range, finite emissions, no NaN parameters);
            shape, dtype and device checks always run.

    Returns:
        ``(batch,)`` float32 (float64 for float64 ``cum_scores``); ``-inf`` for a sequence with no
        allowed segmentation (its gradients are 0).

    Raises:
        ValueError: unknown ``semiring``; ``semiring="max"`` while gradients are required; bad
            shapes, devices or values (see :func:`validate_streaming_inputs`).
        TypeError: wrong types or dtypes.
    """
    if semiring not in ("log", "max"):
        raise ValueError(f"semiring: expected 'log' or 'max', got {semiring!r}")
    check_num_warps(num_warps)
    validate_streaming_inputs(
        cum_scores,
        transition,
        duration_bias,
        lengths,
        K,
        proj_start,
        proj_end,
        validate=validate,
        use_triton=use_triton,
    )
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    floats = (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    needs_grad = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in floats)
    if semiring == "max" and needs_grad:
        raise ValueError(
            "semiring: expected 'log' when gradients are required (an input requires grad), "
            "got 'max'; the max semiring has no gradient: decode with semi_crf_streaming_viterbi "
            "or call under torch.no_grad()"
        )
    # One custom operator for both paths (it dispatches on the device), so torch.compile sees
    # a single opaque node with a fake implementation and an autograd formula (see op.py).
    # With gradients ahead, the Triton path runs the backward scan alongside the forward one.
    return torch.ops.semicrf_kernels.streaming_forward.default(
        *inp[:5], inp.proj_start, inp.proj_end, semiring, bool(use_triton), int(num_warps),
        needs_grad,
    )[0]  # fmt: skip
