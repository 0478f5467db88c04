"""The streaming kernels as ``torch.library`` custom operators (``torch.compile`` support).

``torch.compile`` cannot trace a Triton launcher or a Python loop over positions without graph
breaks, and an ``autograd.Function`` whose backward it cannot see forces one too. Registered as
custom operators, the kernels are opaque nodes of the graph: ``torch.compile(fullgraph=True)``,
``torch.export`` and AOT autograd see only their schema, their fake (meta) implementation,
which gives output shapes and dtypes without computing anything, and their autograd formula.

Three streaming operators, each dispatching on the device like the public API (Triton where
``use_triton`` and the kernels can run on the device, i.e. CUDA or the CPU under
``TRITON_INTERPRET=1``; PyTorch otherwise), so eager results and gradients are those of
:class:`~semicrf_kernels.SemiCRFStreaming` / ``SemiCRFStreamingTriton``:

* ``torch.ops.semicrf_kernels.streaming_forward``: log Z (or the Viterbi score) and the saved
  state the backward needs (with ``with_backward=True`` and ``(C, C)`` transitions on Triton,
  also the backward scan, run at the same time as the forward one);
* ``torch.ops.semicrf_kernels.streaming_backward``: gradients of ``sum_b g[b] log Z[b]``, tied
  to the forward by ``register_autograd``;
* ``torch.ops.semicrf_kernels.streaming_viterbi``: the best segmentation as the tensors of
  :class:`~semicrf_kernels.ViterbiPath`.

and two for the cumulative scores the kernels read (:func:`cumulative_scores`):
``torch.ops.semicrf_kernels.cumulative_scores`` (float64 prefix sums over positions) and
``cumulative_scores_backward``, its gradient, tied to it by ``register_autograd``.

Every streaming operator takes inputs in kernel form (``semicrf_kernels._inputs.prepare_inputs``: compute
dtype, forbidden entries ``-inf``, ``int64`` lengths, contiguous); the public functions validate
and prepare, then call them. They are not validated here. Absent optional outputs are empty
``(0,)`` tensors, since a custom operator cannot return None on every supported torch.

Only APIs of torch 2.4 are used (``custom_op``, ``register_fake``, ``register_autograd``); the
annotations are real types (no ``from __future__ import annotations``) because torch 2.4 infers
the schema from them.
"""

from typing import Optional  # torch 2.4 infers the schemas from typing.Optional

import torch
from torch import Tensor

from ._inputs import KernelInputs, compute_dtype, prepare_inputs
from ._triton_support import triton_available_for
from .streaming.pytorch import _backward_scan, _forward_scan, _ForwardState, _working_inputs
from .viterbi.pytorch import streaming_viterbi_pytorch

__all__ = [
    "cumulative_scores",
    "cumulative_scores_backward_op",
    "cumulative_scores_op",
    "streaming_backward_op",
    "streaming_forward_op",
    "streaming_viterbi_op",
    "uses_triton",
]

_F64 = torch.float64


def uses_triton(cum_scores: Tensor, use_triton: bool) -> bool:
    """Whether the operators run the Triton kernels on ``cum_scores``' device (else PyTorch)."""
    return bool(use_triton) and triton_available_for(cum_scores)


def _empty(like: Tensor, dtype: torch.dtype) -> Tensor:
    """The ``(0,)`` placeholder of an absent output."""
    return like.new_empty((0,), dtype=dtype)


def _prepared(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
) -> KernelInputs:
    # A no-op (same tensors) for inputs already in kernel form, as the public API passes them.
    return prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)


# ---------------------------------------------------------------------------- forward
@torch.library.custom_op("semicrf_kernels::streaming_forward", mutates_args=())
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
            (``semicrf_kernels.streaming.triton_backward.launch_scans``).

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
    inp = _prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    dtype = inp.cum_scores.dtype
    rows = None
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .streaming.triton_backward import launch_scans

            state, rows = launch_scans(inp, semiring, num_warps, with_backward)
            partition, log_z, alpha, window, shift = state
        else:
            scan = _forward_scan(_working_inputs(inp), semiring)
            log_z, alpha, window = scan.log_z, scan.alpha, scan.start_part
            partition = log_z.to(dtype)
            shift = _empty(log_z, _F64)
    if window is None:
        window = _empty(alpha, alpha.dtype)
    if partition.data_ptr() == log_z.data_ptr():
        partition = partition.clone()  # custom-op outputs may not alias each other (float64)
    if rows is None:
        rows = (_empty(alpha, alpha.dtype), _empty(alpha, alpha.dtype), _empty(log_z, _F64))
    return (partition, log_z, alpha, window, shift, *rows)


def _runs_backward_scan(
    cum_scores: Tensor, transition: Tensor, semiring: str, use_triton: bool, with_backward: bool
) -> bool:
    """Whether :func:`streaming_forward_op` also returns the backward scan's rows (the fake
    implementation must agree with what the Triton path does)."""
    if not uses_triton(cum_scores, use_triton):
        return False
    from .streaming.triton_backward import scans_run_together

    return scans_run_together(transition, semiring, with_backward)


@streaming_forward_op.register_fake
def _streaming_forward_fake(
    cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, semiring, use_triton,
    num_warps, with_backward=False,
):  # fmt: skip
    B, T1, C = cum_scores.shape
    dtype = compute_dtype(cum_scores)
    triton = uses_triton(cum_scores, use_triton)
    state_dtype = dtype if triton else _F64
    new = cum_scores.new_empty
    window_shape = (B, T1, C) if transition.dim() == 2 else (0,)
    rows = _runs_backward_scan(cum_scores, transition, semiring, use_triton, with_backward)
    return (
        new((B,), dtype=dtype),
        new((B,), dtype=_F64),
        new((B, T1, C), dtype=state_dtype),
        new(window_shape, dtype=state_dtype),
        new((B, T1) if triton else (0,), dtype=_F64),
        new((B, T1, C) if rows else (0,), dtype=state_dtype),
        new((B, T1, C) if rows else (0,), dtype=state_dtype),
        new((B, T1) if rows else (0,), dtype=_F64),
    )


# ---------------------------------------------------------------------------- backward
def _pytorch_gradients(
    inp: KernelInputs, log_z: Tensor, alpha: Tensor, window: Tensor, grad_output: Tensor
) -> tuple[Tensor, Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:  # noqa: UP045
    """The PyTorch backward scan, assembled as ``SemiCRFStreaming.backward`` does (float64)."""
    work = _working_inputs(inp)
    start_part = window if inp.transition.dim() == 2 else None
    res = _backward_scan(work, _ForwardState(log_z, alpha, start_part, None, None))
    cum = work.cum_scores
    zero = torch.zeros((), dtype=cum.dtype, device=cum.device)
    g = torch.where(res.alive, grad_output.to(cum.dtype), zero)
    alive3 = res.alive[:, None, None]
    T = cum.shape[1] - 1

    def per_sequence(x: Tensor) -> Tensor:
        return torch.where(alive3, x, zero) * g[:, None, None]

    def shared(marg: Tensor) -> Tensor:
        mask = res.alive.reshape(-1, *([1] * (marg.dim() - 1)))
        scaled = torch.where(mask, marg, torch.zeros((), dtype=marg.dtype, device=marg.device))
        return (scaled * g.to(_F64).reshape(mask.shape)).sum(dim=0)

    gps = per_sequence(res.p_start[:, :T]) if inp.proj_start is not None else None
    gpe = per_sequence(res.p_end[:, 1:]) if inp.proj_end is not None else None
    return (
        per_sequence(res.p_end - res.p_start),
        shared(res.trans_marg) + shared(res.first_marg),
        shared(res.bias_marg),
        gps,
        gpe,
    )


@torch.library.custom_op("semicrf_kernels::streaming_backward", mutates_args=())
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
    inp = _prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .streaming.triton_backward import launch_streaming_triton_backward
            from .streaming.triton_forward import StreamingForwardState

            partition = log_z.to(inp.cum_scores.dtype)
            state = StreamingForwardState(
                partition, log_z, alpha, window if inp.transition.dim() == 2 else None, shift
            )
            rows = (beta_first, beta_window, beta_shift)
            ready = all(x is not None and x.numel() > 0 for x in rows)
            grads = launch_streaming_triton_backward(
                *inp[:5], state, grad_output, *inp[5:], num_warps=num_warps,
                backward_rows=rows if ready else None,
            )  # fmt: skip
        else:
            grads = _pytorch_gradients(inp, log_z, alpha, window, grad_output)
    originals = (cum_scores, transition, duration_bias, proj_start, proj_end)
    out = []
    for grad, x in zip(grads, originals):
        out.append(_empty(cum_scores, cum_scores.dtype) if x is None else grad.to(x.dtype))
    return tuple(out)


@streaming_backward_op.register_fake
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
    cum, trans, bias, lengths, K, ps, pe, semiring, use_triton, num_warps, *_with_backward = inputs
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


streaming_forward_op.register_autograd(_forward_backward, setup_context=_setup_forward_context)


# ---------------------------------------------------------------------------- Viterbi
@torch.library.custom_op("semicrf_kernels::streaming_viterbi", mutates_args=())
def streaming_viterbi_op(
    cum_scores: Tensor,
    transition: Tensor,
    duration_bias: Tensor,
    lengths: Tensor,
    K: int,
    proj_start: Optional[Tensor],  # noqa: UP045
    proj_end: Optional[Tensor],  # noqa: UP045
    use_triton: bool,
    num_warps: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Best segmentation of every sequence; never differentiable.

    Args:
        cum_scores: ``(batch, T+1, C)`` float32/float64 cumulative scores (kernel form).
        transition: ``(C, C)`` or ``(K, C, C)``, forbidden entries ``-inf``.
        duration_bias: ``(K, C)``, forbidden entries ``-inf``.
        lengths: ``(batch,)`` int64 in ``[1, T]``.
        K: longest segment.
        proj_start: ``(batch, T, C)`` or None.
        proj_end: ``(batch, T, C)`` or None.
        use_triton: run the Triton kernels where they can run (see :func:`uses_triton`).
        num_warps: warps per Triton program.

    Returns:
        The fields of :class:`~semicrf_kernels.ViterbiPath` in order: ``scores (batch,)``
        (compute dtype), ``starts``, ``durations``, ``labels`` ``(batch, T)`` int64 (-1 after
        the count), ``segment_scores (batch, T)`` (compute dtype), ``num_segments (batch,)``
        int64.
    """
    inp = _prepared(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    with torch.no_grad():
        if uses_triton(inp.cum_scores, use_triton):
            from .viterbi.triton import semi_crf_streaming_viterbi_triton

            path = semi_crf_streaming_viterbi_triton(*inp, num_warps=num_warps)
        else:
            path = streaming_viterbi_pytorch(*inp)
    return tuple(path)


@streaming_viterbi_op.register_fake
def _streaming_viterbi_fake(
    cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end, use_triton, num_warps
):
    B, T1, _ = cum_scores.shape
    dtype = compute_dtype(cum_scores)
    new = cum_scores.new_empty
    index = [new((B, T1 - 1), dtype=torch.int64) for _ in range(3)]
    return (
        new((B,), dtype=dtype),
        *index,
        new((B, T1 - 1), dtype=dtype),
        new((B,), dtype=torch.int64),
    )


# ---------------------------------------------------------------------------- cumulative scores
# The prefix sum over positions is an operator too: Inductor's CUDA code generation of a float64
# cumsum along a long axis (a split scan) fails on torch 2.11, and an opaque node keeps it out of
# Inductor's hands in the forward and, through the backward operator, in the backward as well.
@torch.library.custom_op("semicrf_kernels::cumulative_scores", mutates_args=())
def cumulative_scores_op(scores: Tensor) -> Tensor:
    """Prefix sums over positions, accumulated in float64, with a leading zero row.

    Args:
        scores: ``(batch, T, C)`` floating per-position scores (not validated here).

    Returns:
        ``(batch, T+1, C)`` float64: ``cum[:, 0] = 0``, ``cum[:, t] = sum_{t' < t} scores[:, t']``.
    """
    csum = torch.cumsum(scores.to(_F64), dim=1)
    return torch.nn.functional.pad(csum, (0, 0, 1, 0))


@cumulative_scores_op.register_fake
def _cumulative_scores_fake(scores):
    B, T, C = scores.shape
    return scores.new_empty((B, T + 1, C), dtype=_F64)


@torch.library.custom_op("semicrf_kernels::cumulative_scores_backward", mutates_args=())
def cumulative_scores_backward_op(grad_cum: Tensor, dtype: torch.dtype) -> Tensor:
    """Gradient of :func:`cumulative_scores_op` with respect to its scores.

    ``grad_scores[:, t] = sum_{t' > t} grad_cum[:, t']``: the reversed cumulative sum of rows
    ``1..T`` (row 0 is a constant), accumulated in float64.

    Args:
        grad_cum: ``(batch, T+1, C)`` floating gradient of the cumulative scores.
        dtype: dtype of the scores, and of the result.

    Returns:
        ``(batch, T, C)`` in ``dtype``.
    """
    g = grad_cum[:, 1:].to(_F64)
    out = torch.flip(torch.cumsum(torch.flip(g, (1,)), dim=1), (1,)).to(dtype)
    return out.clone() if out.data_ptr() == grad_cum.data_ptr() else out


@cumulative_scores_backward_op.register_fake
def _cumulative_scores_backward_fake(grad_cum, dtype):
    B, T1, C = grad_cum.shape
    return grad_cum.new_empty((B, T1 - 1, C), dtype=dtype)


def _setup_cumulative_context(ctx, inputs, output) -> None:
    (scores,) = inputs
    ctx.dtype = scores.dtype


def _cumulative_backward(ctx, grad_cum):
    return torch.ops.semicrf_kernels.cumulative_scores_backward.default(grad_cum, ctx.dtype)


def _setup_cumulative_backward_context(ctx, inputs, output) -> None:
    grad_cum, _dtype = inputs
    ctx.dtype = grad_cum.dtype


def _cumulative_backward_backward(ctx, grad_grad):
    # The backward is linear in grad_cum, and its adjoint is the forward prefix sum again.
    cum = torch.ops.semicrf_kernels.cumulative_scores.default(grad_grad)
    return cum.to(ctx.dtype), None


cumulative_scores_op.register_autograd(
    _cumulative_backward, setup_context=_setup_cumulative_context
)
cumulative_scores_backward_op.register_autograd(
    _cumulative_backward_backward, setup_context=_setup_cumulative_backward_context
)


def cumulative_scores(scores: Tensor) -> Tensor:
    """Cumulative scores for the streaming kernels, as one ``torch.compile``-opaque operator.

    ``cum[:, 0] = 0`` and ``cum[:, t] = sum_{t' < t} scores[:, t']``, accumulated in float64
    whatever the input dtype (the kernels read differences of it at distances up to ``K``, and
    a float32 prefix sum over ``T`` positions would lose them). Differentiable: the gradient is
    the reversed cumulative sum of rows ``1..T`` of the upstream gradient, in ``scores``' dtype.
    Eager results are those of ``torch.cumsum(scores.double(), 1)`` with a zero row prepended.

    Args:
        scores: ``(batch, T, C)`` floating per-position scores (padding should be 0).

    Returns:
        ``(batch, T+1, C)`` float64 cumulative scores.

    Raises:
        TypeError: ``scores`` is not a tensor.
        ValueError: ``scores`` is not 3-D or not floating point.
    """
    if not isinstance(scores, Tensor):
        raise TypeError(f"scores: expected a torch.Tensor, got {type(scores).__name__}")
    if scores.dim() != 3:
        raise ValueError(
            f"scores: expected shape (batch, T, C), got {tuple(scores.shape)} ({scores.dim()}-D)"
        )
    if not scores.is_floating_point():
        raise ValueError(f"scores: expected a floating dtype, got {scores.dtype}")
    return torch.ops.semicrf_kernels.cumulative_scores.default(scores)
