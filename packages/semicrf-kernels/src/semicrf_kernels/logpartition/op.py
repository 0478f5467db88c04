"""The log partition as ``torch.library`` custom operators (``torch.compile`` support).

``torch.compile`` cannot trace a Triton launcher or a Python loop over positions without graph
breaks, and an ``autograd.Function`` whose backward it cannot see forces one too. Registered as
custom operators, the kernels are opaque nodes of the graph: ``torch.compile(fullgraph=True)``,
``torch.export`` and AOT autograd see only their schema, their fake (meta) implementation,
which gives output shapes and dtypes without computing anything, and their autograd formula.

The streaming operators (these two here, ``streaming_viterbi`` in
:mod:`semicrf_kernels.viterbi.op`), each dispatching on the device like the public API (Triton where
``use_triton`` and the kernels can run on the device, i.e. CUDA or the CPU under
``TRITON_INTERPRET=1``; otherwise the CPU path: the compiled numba scans where they apply, else
PyTorch, see :mod:`semicrf_kernels._shared.numba_support`), so eager results and gradients are those of
:class:`~semicrf_kernels.SemiCRFStreaming` / ``SemiCRFStreamingTriton``:

* ``torch.ops.semicrf_kernels.streaming_forward``: log Z (or the Viterbi score) and the saved
  state the backward needs (with ``with_backward=True`` and ``(C, C)`` transitions on Triton,
  also the backward scan, run at the same time as the forward one);
* ``torch.ops.semicrf_kernels.streaming_backward``: gradients of ``sum_b g[b] log Z[b]``, tied
  to the forward by ``register_autograd``;
* ``torch.ops.semicrf_kernels.streaming_viterbi``: the best segmentation as the tensors of
  :class:`~semicrf_kernels.ViterbiPath`.

and two for the cumulative scores the kernels read, in :mod:`semicrf_kernels.cumulative.op`.

Every streaming operator takes inputs in kernel form (``semicrf_kernels._shared.inputs.prepare_inputs``:
compute dtype, forbidden entries ``-inf``, ``int64`` lengths, contiguous); the public functions validate
and prepare, then call them. They are not validated here. Absent optional outputs are empty
``(0,)`` tensors, since a custom operator cannot return None on every supported torch.

Only APIs of torch 2.4 are used (``define``, ``impl``, ``register_fake``, ``register_autograd``); the
annotations are real types (no ``from __future__ import annotations``) because torch 2.4 infers
the schema from them.
"""

from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from .._shared.inputs import compute_dtype
from .._shared.numba_support import cpu_backward, cpu_forward
from .._shared.op_support import (
    F64,
    define_op,
    empty,
    prepared,
    register_autograd,
    register_fake,
    uses_triton,
)
from .pytorch import _working_inputs, pytorch_gradients

__all__ = ["streaming_backward_op", "streaming_forward_op"]


# ---------------------------------------------------------------------------- forward
@define_op("semicrf_kernels::streaming_forward")
def streaming_forward_op(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
    semiring: str,
    use_triton: bool,
    num_warps: int,
    with_backward: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Streaming log partition (``semiring="log"``) or Viterbi score (``"max"``) and its state.

    Args:
        cum_scores: ``(batch, T+1, C)`` float32/float64 cumulative scores (kernel form).
        transition: ``(C, C)`` or ``(K, C, C)``, forbidden entries ``-inf``.
        duration_bias: ``(K, C)``, forbidden entries ``-inf``.
        lengths: ``(batch,)`` int64 in ``[1, T]``.
        K: longest segment.
        proj_start: ``(batch, T, C)`` or None.
        proj_end: ``(batch, T, C)`` or None.
        semiring: ``"log"`` or ``"max"``.
        use_triton: run the Triton kernels where they can run (see :func:`uses_triton`).
        num_warps: warps per Triton program.
        with_backward: gradients will be needed: where the backward scan needs nothing of the
            forward (Triton, ``(C, C)``, ``"log"``), run it now, concurrently
            (``semicrf_kernels.logpartition.triton.launch_scans``).

    Returns:
        ``(partition, log_z, alpha, window, shift, beta_first, beta_window, beta_shift)``:
        ``partition (batch,)`` in the compute dtype
        (``-inf`` where no segmentation is allowed), then the state for
        :func:`streaming_backward_op`. PyTorch path: ``log_z (batch,)`` float64, ``alpha
        (batch, T+1, C)`` float64, ``window`` the ``(batch, T+1, C)`` float64 start part with
        ``(C, C)`` transitions (``(0,)`` with ``(K, C, C)``), ``shift`` ``(0,)``. Triton path:
        the fields of ``StreamingForwardState`` (``alpha``/``window`` in the compute dtype,
        ``window`` ``(0,)`` with ``(K, C, C)``, ``shift (batch, T+1)`` float64). The last three
        are the backward scan's rows (``(batch, T+1, C)``, ``(batch, T+1, C)`` in the compute
        dtype, ``(batch, T+1)`` float64) when it ran, else ``(0,)`` each.
    """
    inp = prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    dtype = inp.cum_scores.dtype
    rows = None
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .triton import launch_scans

            state, rows = launch_scans(inp, semiring, num_warps, with_backward)
            partition, log_z, alpha, window, shift = state
        else:
            scan = cpu_forward(_working_inputs(inp), semiring)
            log_z, alpha, window = scan.log_z, scan.alpha, scan.start_part
            partition = log_z.to(dtype)
            shift = empty(log_z, F64)
    if window is None:
        window = empty(alpha, alpha.dtype)
    if partition.data_ptr() == log_z.data_ptr():
        partition = partition.clone()  # custom-op outputs may not alias each other (float64)
    if rows is None:
        rows = (empty(alpha, alpha.dtype), empty(alpha, alpha.dtype), empty(log_z, F64))
    return (partition, log_z, alpha, window, shift, *rows)


def _runs_backward_scan(
    cum_scores: Tensor,
    transition: Tensor,
    semiring: str,
    use_triton: bool,
    with_backward: bool,
) -> bool:
    """Whether :func:`streaming_forward_op` also returns the backward scan's rows (the fake
    implementation must agree with what the Triton path does)."""
    if not uses_triton(cum_scores, use_triton):
        return False
    from .triton import scans_run_together

    return scans_run_together(transition, semiring, with_backward)


@register_fake("semicrf_kernels::streaming_forward")
def _streaming_forward_fake(
    cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, semiring, use_triton,
    num_warps, with_backward=False,
):  # fmt: skip
    B, T1, C = cum_scores.shape
    dtype = compute_dtype(cum_scores)
    triton = uses_triton(cum_scores, use_triton)
    state_dtype = dtype if triton else F64
    new = cum_scores.new_empty
    window_shape = (B, T1, C) if transition.dim() == 2 else (0,)
    rows = _runs_backward_scan(cum_scores, transition, semiring, use_triton, with_backward)
    return (
        new((B,), dtype=dtype),
        new((B,), dtype=F64),
        new((B, T1, C), dtype=state_dtype),
        new(window_shape, dtype=state_dtype),
        new((B, T1) if triton else (0,), dtype=F64),
        new((B, T1, C) if rows else (0,), dtype=state_dtype),
        new((B, T1, C) if rows else (0,), dtype=state_dtype),
        new((B, T1) if rows else (0,), dtype=F64),
    )


# ---------------------------------------------------------------------------- backward
@define_op("semicrf_kernels::streaming_backward")
def streaming_backward_op(
    grad_output: Tensor,
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
    log_z: Tensor,
    alpha: Tensor,
    window: Tensor,
    shift: Tensor,
    use_triton: bool,
    num_warps: int,
    beta_first: Optional[Tensor] = None,  # noqa: UP045
    beta_window: Optional[Tensor] = None,  # noqa: UP045
    beta_shift: Optional[Tensor] = None,  # noqa: UP045
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``sum_b grad_output[b] * log Z[b]`` from the state of the forward operator.

    The inputs from ``cum_scores`` to ``proj_end`` are those given to
    :func:`streaming_forward_op` (with ``semiring="log"``); ``log_z``, ``alpha``, ``window`` and
    ``shift`` are its outputs 1-4; ``use_triton`` and ``num_warps`` as given to it (the same path
    runs).

    Args:
        grad_output: ``(batch,)`` upstream gradient of each log Z.
        cum_scores: ``(batch, T+1, C)``.
        transition: ``(C, C)`` or ``(K, C, C)``.
        duration_bias: ``(K, C)``.
        lengths: ``(batch,)`` int64.
        K: longest segment.
        proj_start: ``(batch, T, C)`` or None.
        proj_end: ``(batch, T, C)`` or None.
        log_z: ``(batch,)`` float64.
        alpha: ``(batch, T+1, C)``.
        window: ``(batch, T+1, C)`` or ``(0,)``.
        shift: ``(batch, T+1)`` float64 or ``(0,)``.
        use_triton: run the Triton kernels where they can run.
        num_warps: warps per Triton program.
        beta_first, beta_window, beta_shift: the forward operator's outputs 5-7 (the backward
            scan's rows when it already ran; ``(0,)`` or None: run it here).

    Returns:
        ``(grad_cum (batch, T+1, C), grad_transition (C, C) | (K, C, C), grad_duration_bias
        (K, C), grad_proj_start (batch, T, C), grad_proj_end (batch, T, C))``, each in its
        input's dtype; a projection's gradient is ``(0,)`` when the projection is None. Shared
        parameters' gradients are summed over the batch in a fixed order (deterministic); a
        sequence with ``log Z = -inf`` contributes zeros, padding gets exact zeros.
    """
    inp = prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .triton import launch_streaming_triton_backward
            from .triton_scan import StreamingForwardState

            partition = log_z.to(inp.cum_scores.dtype)
            state = StreamingForwardState(
                partition,
                log_z,
                alpha,
                window if inp.transition.dim() == 2 else None,
                shift,
            )
            rows = (beta_first, beta_window, beta_shift)
            ready = all(x is not None and x.numel() > 0 for x in rows)
            grads = launch_streaming_triton_backward(
                *inp[:5], state, grad_output, *inp[5:], num_warps=num_warps,
                backward_rows=rows if ready else None,
            )  # fmt: skip
        else:
            grads = pytorch_gradients(inp, log_z, alpha, window, grad_output, cpu_backward)
    originals = (cum_scores, transition, duration_bias, proj_start, proj_end)
    out = []
    for grad, x in zip(grads, originals):
        out.append(empty(cum_scores, cum_scores.dtype) if x is None else grad.to(x.dtype))
    return tuple(out)


@register_fake("semicrf_kernels::streaming_backward")
def _streaming_backward_fake(
    grad_output, cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, log_z,
    alpha, window, shift, use_triton, num_warps, beta_first=None, beta_window=None, beta_shift=None,
):  # fmt: skip
    def like(x):
        if x is None:
            return cum_scores.new_empty((0,))
        return torch.empty_like(x, memory_format=torch.contiguous_format)

    return tuple(like(x) for x in (cum_scores, transition, duration_bias, proj_start, proj_end))


def _setup_forward_context(ctx, inputs, output) -> None:
    (
        cum,
        trans,
        bias,
        lengths,
        K,
        ps,
        pe,
        semiring,
        use_triton,
        num_warps,
        *_with_backward,
    ) = inputs
    _partition, *state = output
    # Only the partition is differentiable; without these, autograd would also allocate zero
    # gradients the size of the saved state ((batch, T+1, C)) for every backward.
    ctx.mark_non_differentiable(*state)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(cum, trans, bias, lengths, ps, pe, *state)
    ctx.K = K
    ctx.semiring = semiring
    ctx.use_triton = use_triton
    ctx.num_warps = num_warps


def _forward_backward(ctx, grad_partition, *_state_grads):
    if grad_partition is None:  # only the (non-differentiable) state was used
        return (None,) * 11
    if ctx.semiring != "log":
        raise RuntimeError(
            "semicrf_kernels::streaming_forward: semiring 'max' has no gradient; decode with "
            "semi_crf_streaming_viterbi or call under torch.no_grad()"
        )
    cum, trans, bias, lengths, ps, pe, log_z, alpha, window, shift, *rows = ctx.saved_tensors
    gcum, gtrans, gbias, gps, gpe = torch.ops.semicrf_kernels.streaming_backward.default(
        grad_partition, cum, trans, bias, lengths, ctx.K, ps, pe, log_z, alpha, window, shift,
        ctx.use_triton, ctx.num_warps, *rows,
    )  # fmt: skip
    return (
        gcum,
        gtrans,
        gbias,
        None,
        None,
        gps if ps is not None else None,
        gpe if pe is not None else None,
        None,
        None,
        None,
        None,
    )


register_autograd(
    "semicrf_kernels::streaming_forward",
    _forward_backward,
    setup_context=_setup_forward_context,
)
