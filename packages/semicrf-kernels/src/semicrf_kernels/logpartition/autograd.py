"""``SemiCRFStreaming`` / ``SemiCRFStreamingTriton``: the log partition as ``Function.apply``.

Kept for callers of the ``torch.autograd.Function`` interface. Both go through the one
autograd route, the custom operator ``torch.ops.semicrf_kernels.streaming_forward`` (see
:mod:`.op`): the first forces the CPU path (no Triton: the compiled scans on the CPU unless
``set_cpu_path("pytorch")``), the second the Triton one. Inputs are converted
with ``prepare_inputs`` but not validated (the public functions validate).
"""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from . import op as _op  # noqa: F401 - registers torch.ops.semicrf_kernels.streaming_*

__all__ = ["SemiCRFStreaming", "SemiCRFStreamingTriton"]


def _log_partition(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None,
    proj_end: torch.Tensor | None,
    use_triton: bool,
    num_warps: int,
) -> torch.Tensor:
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    floats = (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    needs_grad = torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in floats)
    return torch.ops.semicrf_kernels.streaming_forward.default(
        *inp[:5], inp.proj_start, inp.proj_end, "log", use_triton, int(num_warps), needs_grad
    )[0]


class SemiCRFStreaming(torch.autograd.Function):
    """Streaming log partition by the CPU-path scans, differentiable (through the custom op).

    ``SemiCRFStreaming.apply(cum_scores, transition, duration_bias, lengths, K, proj_start,
    proj_end) -> (batch,)`` log Z in the compute dtype (float32, float64 for float64
    ``cum_scores``). Gradients for ``cum_scores (batch, T+1, C)``, ``transition ((C, C) or
    (K, C, C))``, ``duration_bias (K, C)`` and the optional ``proj_start`` / ``proj_end
    (batch, T, C)``; exactly 0 at padding and for a sequence with ``log Z = -inf``; shared
    parameters' gradients summed over the batch in a fixed order (bitwise deterministic).
    """

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        lengths: torch.Tensor,
        K: int,
        proj_start: torch.Tensor | None = None,
        proj_end: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return _log_partition(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, False, 4
        )


class SemiCRFStreamingTriton(torch.autograd.Function):
    """Streaming log partition by the Triton kernels, differentiable (through the custom op).

    ``SemiCRFStreamingTriton.apply(cum_scores, transition, duration_bias, lengths, K,
    proj_start, proj_end, num_warps) -> (batch,)``: as :class:`SemiCRFStreaming`, on CUDA (or
    the CPU under ``TRITON_INTERPRET=1``); with gradients ahead and ``(C, C)`` transitions the
    backward scan runs alongside the forward one.
    """

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        cum_scores: torch.Tensor,
        transition: torch.Tensor,
        duration_bias: torch.Tensor,
        lengths: torch.Tensor,
        K: int,
        proj_start: torch.Tensor | None = None,
        proj_end: torch.Tensor | None = None,
        num_warps: int | None = 4,
    ) -> torch.Tensor:
        return _log_partition(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, True,
            4 if num_warps is None else num_warps,
        )  # fmt: skip
