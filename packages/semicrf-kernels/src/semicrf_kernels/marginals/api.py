"""``streaming_marginals``: the posterior marginals and entropy by the CPU path's scans.

The same computation as :func:`~semicrf_kernels.marginals.pytorch.streaming_marginals_pytorch`
(one forward and one backward scan, then the shared assembly), with the scans chosen like every
public entry point's on the CPU: the compiled (numba) ones where they apply, else PyTorch (see
:func:`semicrf_kernels.set_cpu_path`). On other devices, and while ``torch.compile`` traces
(this function is not a custom operator: Dynamo traces the PyTorch scans, as before), the PyTorch
scans run.
"""

from __future__ import annotations

import torch

from .._shared.inputs import prepare_inputs
from .._shared.numba_support import cpu_backward, cpu_forward
from ..logpartition.pytorch import _backward_scan, _forward_scan, _working_inputs
from ..validation import validate_streaming_inputs, value_checks_enabled
from .pytorch import StreamingMarginals, _marginals

__all__ = ["streaming_marginals"]


def streaming_marginals(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    *,
    validate: bool = True,
) -> StreamingMarginals:
    """Boundary, position and segment start/end marginals and the entropy (not differentiable).

    Args:
        cum_scores: ``(batch, T+1, C)`` cumulative scores.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` integer lengths in ``[1, T]``.
        K: longest segment.
        proj_start: optional ``(batch, T, C)``.
        proj_end: optional ``(batch, T, C)``.
        validate: run the value checks of :func:`validate_streaming_inputs`.

    Returns:
        :class:`StreamingMarginals` (float32, float64 for float64 inputs), equal to
        :func:`streaming_marginals_pytorch`'s to ~1e-13 when the compiled scans run.
    """
    validate_streaming_inputs(
        cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, validate=validate
    )
    with torch.no_grad():
        prepared = prepare_inputs(
            cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end
        )
        inp = _working_inputs(prepared)
        if value_checks_enabled(inp.cum_scores):  # eager (not traced by torch.compile)
            state = cpu_forward(inp, "log")
            res = cpu_backward(inp, state)
        else:
            state = _forward_scan(inp, "log")
            res = _backward_scan(inp, state)
        return _marginals(inp, state, res, prepared.cum_scores.dtype)
