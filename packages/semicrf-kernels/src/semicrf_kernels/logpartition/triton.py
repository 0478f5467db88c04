"""Launchers of the Triton log partition: both scans (``launch_scans``) and the gradients.

The backward **scan** (one program per sequence) only computes what is sequential:

    gamma[s, c] = proj_start[s, c] + logsumexp_{d} (cum[s+d, c] - cum[s, c]) + db[d-1, c]
                                                   + beta[s+d, c] + proj_end[s+d-1, c]
    beta[s, c'] = logsumexp_c transition[c', c] + gamma[s, c]          (beta[L] = 0)

It is the forward scan's loop body run in reverse (:func:`.triton_scan._backward_scan_cc_kernel`),
keeping ``beta[e] + proj_end[e-1]`` as the window value. Every gradient is then a
*local* function of the stored rows and is computed by kernels parallel over the batch and
positions (no atomics; per-program partials summed by ``torch.sum`` in a fixed order, so the
gradients are bitwise deterministic)::

    P_end[t, c]   = exp(alpha[t, c] + beta[t, c] - lz(t))              (segment ends before t)
    P_start[s, c] = exp(A[s, c] + gamma[s, c] - lz(s))                  (segment starts at s)
    grad_cum[t]   = P_end[t] - P_start[t];  grad_proj_start = P_start;  grad_proj_end[e] = P_end[e+1]
    grad_db[d-1, c]   = sum_s exp(A[s, c] + seg(s, d, c) + beta[s+d, c] - lz(s))
    grad_trans[c', c] = sum_s exp(alpha[s, c'] + trans[c', c] + gamma[s, c] - lz(s))  (alpha[0] = 0)

**Drift correction** ``lz(t)``. In float32 each scan step rounds (exp/log approximations
included) with a slightly biased error, so ``alpha[t] + beta[t] - log Z`` drifts away from its
true value roughly linearly in ``T`` (measured: 1e-3 relative at ``T = 1e5``), although
``log Z`` itself stays within 1e-9. Instead of ``log Z`` every marginal is normalised by
``lz(t)``: the partition recomputed *through position t* from the same stored rows, i.e.
``log sum`` over all segments covering ``t`` of ``exp(A[s] + seg + beta[e])``. It is evaluated
exactly at checkpoints every ``max(128, K)`` positions (O(K^2 C) each, all in parallel) and
interpolated linearly in between, which removes the drift (what remains is a random walk over
one checkpoint interval).

With ``(K, C, C)`` transitions the scan is :func:`_scan_kcc_backward_kernel` (O(K C^2) per
position), which also emits ``log P_start``; the transition and duration gradients come from
one kernel per duration tile, with ``(batch, K, C, C)`` per-sequence partials.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._shared.inputs import prepare_inputs
from .._shared.scan_launch import (
    ScanConfig,
    _cdiv,
    _check_triton,
    _kcc_config,
    _next_pow2,
    _pow2_floor,
    new_float,
    paired_config,
    ring_rows,
    run_forward_scan,
    scan_config,
    scan_flags,
)
from .._shared.split_launch import (
    interleave,
    num_sms,
    run_launches,
    scan_cc_launches,
    split_config,
)
from .._shared.triton_support import HAS_TRITON
from .triton_scan import StreamingForwardState, launch_streaming_triton_kernel

__all__ = [
    "BackwardRows",
    "launch_scans",
    "launch_streaming_triton_backward",
    "scans_run_together",
]

if HAS_TRITON:
    from .triton_grad import (
        _batch_sum_kernel,
        _cut_mass_cc_kernel,
        _cut_mass_kcc_kernel,
        _drift_lz_kernel,
        _grad_db_cc_kernel,
        _grad_kcc_kernel,
        _grad_trans_cc_kernel,
        _marginals_kernel,
        _scan_kcc_backward_kernel,
    )
    from .triton_scan import _backward_scan_cc_kernel, _paired_scan_cc_kernel


def checkpoint_spacing(K: int) -> int:
    """Positions between two exact drift measurements (see the module docstring)."""
    return max(128, K)


def interpolate_drift(
    corr: torch.Tensor, lengths: torch.Tensor, T: int, spacing: int
) -> torch.Tensor:
    """``(B, T+1)`` float64 drift at every boundary, linear between checkpoints.

    Args:
        corr: ``(B, J)`` float64 drift at checkpoint positions ``min(j * spacing, L - 1)``.
        lengths: ``(B,)`` int64.
        T: padded length.
        spacing: checkpoint spacing.
    """
    B, J = corr.shape
    q = torch.arange(T + 1, device=corr.device)[None, :].expand(B, -1)
    last = (lengths - 1)[:, None]
    qq = torch.minimum(q, last)
    j = torch.div(qq, spacing, rounding_mode="floor").clamp(max=J - 1)
    p0 = j * spacing
    p1 = torch.minimum((j + 1) * spacing, last)
    jn = (j + 1).clamp(max=J - 1)
    span = (p1 - p0).clamp(min=1).to(torch.float64)
    w = torch.where(
        p1 > p0,
        (qq - p0).to(torch.float64) / span,
        torch.zeros((), dtype=torch.float64, device=corr.device),
    )
    return corr.gather(1, j) * (1 - w) + corr.gather(1, jn) * w


class BackwardRows(NamedTuple):
    """What the backward scan stores (all ``(batch, T+1, ...)``, rows ``<= L`` meaningful).

    Attributes:
        first: ``(C, C)``: ``gamma[s] - shift[s]``; ``(K, C, C)``: ``log P_start[s]`` (already
            normalised by ``log Z``).
        window: ``beta[e] + proj_end[e-1] - shift[e]``.
        shift: float64 per-row shift.
    """

    first: torch.Tensor
    window: torch.Tensor
    shift: torch.Tensor


def new_backward_rows(inp) -> BackwardRows:
    """Uninitialised :class:`BackwardRows` for prepared inputs ``inp`` (a ``KernelInputs``)."""
    B, T1, C = inp.cum_scores.shape
    dev, dt = inp.cum_scores.device, inp.cum_scores.dtype
    return BackwardRows(
        new_float((B, T1, C), dt, dev), new_float((B, T1, C), dt, dev),
        new_float((B, T1), torch.float64, dev),
    )  # fmt: skip


def run_backward_scan(
    inp,
    state: StreamingForwardState | None,
    num_warps: int | None,
    rows: BackwardRows | None = None,
    defer: bool = False,
):
    """Launch the backward scan on prepared inputs ``inp`` (a ``KernelInputs``), into ``rows``
    (allocated when None) and return them. With ``(C, C)`` transitions it reads nothing of the
    forward, so ``state`` may be None; ``(K, C, C)`` needs the forward's ``state``. With
    ``defer`` (``(C, C)`` only) nothing is launched yet: it returns ``(rows, launches)``, a
    generator issuing one super-block per step (:func:`.._shared.split_launch.interleave`), split
    as a scan paired with the forward (``split_config(paired=True)``)."""
    cum, trans, db, lengths, K, ps, pe = inp
    B, T1, C = cum.shape
    T = T1 - 1
    dt = cum.dtype
    first, wb, rb = new_backward_rows(inp) if rows is None else rows
    ps_arg = ps if ps is not None else cum
    pe_arg = pe if pe is not None else cum
    if trans.dim() == 2:
        cfg = scan_config(C, K, num_warps, dt)
        flags = scan_flags(cfg, ps, pe, log=True)
        args = (cum, trans.t().contiguous(), db, lengths, ps_arg, pe_arg, first, wb, rb, T, K, C)
        steps = scan_cc_launches(
            _backward_scan_cc_kernel, args, flags, cum=cum, db=db, lengths=lengths, window=wb,
            shift=rb, K=K, block_c=cfg.block_c, block_p=cfg.block_p, reverse=True, maxsr=False,
            paired=defer, block_r=ring_rows(cfg, K, T, dt),
        )  # fmt: skip
        if defer:
            return BackwardRows(first, wb, rb), steps
        run_launches(steps)
    else:
        if state is None:
            raise ValueError("state: the (K, C, C) backward scan needs the forward state")
        block_c, block_d, warps = _kcc_config(C, K, num_warps, dt)
        _scan_kcc_backward_kernel[(B,)](
            cum, trans, db, lengths, ps_arg, pe_arg, state.alpha, state.shift, state.log_z,
            first, wb, rb, T, K, C,
            HAS_PS=ps is not None, HAS_PE=pe is not None, BLOCK_C=block_c, BLOCK_D=block_d,
            num_warps=warps,
        )  # fmt: skip
    return BackwardRows(first, wb, rb)


_SIDE_STREAMS: dict[int, torch.cuda.Stream] = {}

#: Experiments only (``benchmarks/experiments/profile_backward.py --grad``): ``programs_per_sm``
#: of the gradient kernels' time chunks (default 4) and ``db_stages``, the software-pipelining
#: depth of the duration-bias gradient's loop (default 1: none).
GRAD_OVERRIDE: dict = {}


def _side_stream(device: torch.device) -> torch.cuda.Stream:
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _SIDE_STREAMS:
        _SIDE_STREAMS[index] = torch.cuda.Stream(device=index)
    return _SIDE_STREAMS[index]


def scans_run_together(transition: torch.Tensor, semiring: str, with_backward: bool) -> bool:
    """Whether :func:`launch_scans` runs the backward scan too: gradients ahead, the log
    semiring and ``(C, C)`` transitions (the ``(K, C, C)`` backward scan reads the forward's
    rows)."""
    return with_backward and semiring == "log" and transition.dim() == 2


def launch_scans(
    inp, semiring: str, num_warps: int | None, with_backward: bool
) -> tuple[StreamingForwardState, BackwardRows | None]:
    """The forward scan and, when it can start now, the backward scan, at the same time.

    With ``(C, C)`` transitions the backward scan reads only the inputs, so when gradients will
    be needed (``with_backward``, ``semiring="log"``) it runs on a second CUDA stream while the
    forward scan runs: each scan is one program per sequence, a small batch leaves most of the
    GPU idle, and the backward then only has the parallel gradient kernels left. The streams
    are forked from and joined back to the current one (so this also works under CUDA-graph
    capture); every buffer is allocated on the current stream and used after the join.

    Args:
        inp: prepared inputs (``KernelInputs``).
        semiring: ``"log"`` or ``"max"``.
        num_warps: as for :func:`.triton_scan.launch_streaming_triton_kernel`.
        with_backward: also run the backward scan when it needs nothing of the forward.

    Returns:
        The forward state, and the backward scan's rows (None where not run: ``(K, C, C)``
        transitions, the max semiring or ``with_backward=False``).
    """
    cum = inp.cum_scores
    if not scans_run_together(inp.transition, semiring, with_backward):
        return launch_streaming_triton_kernel(*inp[:5], semiring, *inp[5:], num_warps), None
    rows = new_backward_rows(inp)
    fused = _fused_pair_config(inp, num_warps)
    if fused is not None:
        return _launch_fused_pair(inp, fused, rows)
    if cum.device.type != "cuda":  # the Triton interpreter: one after the other
        state = launch_streaming_triton_kernel(*inp[:5], semiring, *inp[5:], num_warps)
        return state, run_backward_scan(inp, None, num_warps, rows)
    main = torch.cuda.current_stream(cum.device)
    side = _side_stream(cum.device)
    side.wait_stream(main)
    # The two scans' launches are issued super-block by super-block, alternating: a split scan
    # is thousands of launches, and issuing one scan's before the other's would fill the
    # launch queue and run them one after the other.
    with torch.cuda.stream(side):
        _rows, bwd_steps = run_backward_scan(inp, None, num_warps, rows, defer=True)
    score, _final, alpha, window, shift, _bpd, _bpa, fwd_steps = run_forward_scan(
        *inp[:5], inp.proj_start, inp.proj_end,
        maxsr=semiring == "max", backpointers=False, num_warps=num_warps, defer=True,
    )  # fmt: skip
    interleave((side, bwd_steps), (main, fwd_steps))
    main.wait_stream(side)
    return StreamingForwardState(score.to(cum.dtype), score, alpha, window, shift), rows


def _fused_pair_config(inp, num_warps: int | None) -> ScanConfig | None:
    """The scans' config when :func:`launch_scans` runs both as one launch (``fused_pair``, on
    by default; only where neither scan is split; tiles from :func:`paired_config`), else
    None."""
    cum, _trans, _db, _lengths, K, _ps, _pe = inp
    _B, T1, C = cum.shape
    cfg = paired_config(C, K, T1 - 1, num_warps, cum.dtype)
    if not cfg.fused_pair:
        return None
    sms = num_sms(cum.device)
    split = split_config(T1 - 1, K, cfg.block_c, cfg.block_p, sms, cum.dtype, paired=True)
    return cfg if split is None else None


def _launch_fused_pair(
    inp, cfg: ScanConfig, rows: BackwardRows
) -> tuple[StreamingForwardState, BackwardRows]:
    """Both unsplit ``(C, C)`` log scans in one launch of ``2 B`` programs
    (:func:`.triton_scan._paired_scan_cc_kernel`) with tiles ``cfg``, into the forward state
    and ``rows``."""
    cum, trans, db, lengths, K, ps, pe = inp
    B, T1, C = cum.shape
    dev, dt = cum.device, cum.dtype
    alpha, window = new_float((B, T1, C), dt, dev), new_float((B, T1, C), dt, dev)
    shift = new_float((B, T1), torch.float64, dev)
    score = new_float((B,), torch.float64, dev)
    _paired_scan_cc_kernel[(2 * B,)](
        cum, trans, trans.t().contiguous(), db, lengths,
        ps if ps is not None else cum, pe if pe is not None else cum,
        alpha, window, shift, score, rows.first, rows.window, rows.shift,
        B, T1 - 1, K, C,
        BLOCK_R=ring_rows(cfg, K, T1 - 1, dt), **scan_flags(cfg, ps, pe, log=True),
    )  # fmt: skip
    return StreamingForwardState(score.to(dt), score, alpha, window, shift), rows


def needs_int64(T1: int, C: int, K: int) -> bool:
    """Whether offsets inside one sequence's ``(T+1, C)`` rows (or ``(K, C)``) can pass int32."""
    return T1 * max(C, K) >= 2**31


def measure_drift(
    inp, state: StreamingForwardState, rows: BackwardRows, num_warps: int | None
) -> torch.Tensor:
    """``(batch, J)`` float64 ``log(mass through checkpoint j) - log Z`` (0 in exact arithmetic).

    Checkpoint ``j`` is position ``min(j * checkpoint_spacing(K), L - 1)``; the mass through a
    position is the sum over all segments covering it of ``exp(A[s] + seg + beta[e] - log Z)``,
    from the stored rows. 0 for sequences with ``log Z = -inf``.
    """
    cum, trans, db, lengths, K, ps, _pe = inp
    B, T1, C = cum.shape
    T = T1 - 1
    dt = cum.dtype
    spacing = checkpoint_spacing(K)
    J = (T - 1 + spacing - 1) // spacing + 1
    corr = new_float((B, J), torch.float64, cum.device)
    if trans.dim() == 2:
        block_c = scan_config(C, K, num_warps, dt).block_c
        budget = 2048 // (2 if dt == torch.float64 else 1)
        bs = max(2, min(8, _next_pow2(K)))
        bd = max(2, min(_pow2_floor(budget // (bs * block_c)), _next_pow2(K)))
        _cut_mass_cc_kernel[(B, J)](
            cum, db, lengths, state.log_z, state.window, state.shift, rows.window, rows.shift,
            corr, T, K, C, spacing, J,
            BLOCK_C=block_c, BLOCK_S=bs, BLOCK_D=bd, num_warps=4,
        )  # fmt: skip
    else:
        block_c, block_d, warps = _kcc_config(C, K, num_warps, dt)
        _cut_mass_kcc_kernel[(B, J)](
            cum, trans, db, lengths, state.log_z, ps if ps is not None else cum, state.alpha,
            state.shift, rows.window, rows.shift, corr, T, K, C, spacing, J,
            HAS_PS=ps is not None, BLOCK_C=block_c, BLOCK_D=block_d, num_warps=warps,
        )  # fmt: skip
    return corr


def _time_chunks(T: int, bs: int, programs: int, sms: int) -> tuple[int, int]:
    """Split time ``[0, T)`` into chunks (multiples of ``bs``) so that ``programs`` per chunk
    give about 4 programs per multiprocessor: ``(chunk length, number of chunks)``."""
    per_sm = GRAD_OVERRIDE.get("programs_per_sm", 4)
    nch = max(1, min(_cdiv(T, bs), _cdiv(per_sm * sms, programs)))
    chunk = _cdiv(_cdiv(T, nch), bs) * bs
    return chunk, _cdiv(T, chunk)


def launch_streaming_triton_backward(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    forward_state: StreamingForwardState | tuple,
    grad_output: torch.Tensor,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    num_warps: int | None = 4,
    backward_rows: BackwardRows | tuple | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Gradients of ``sum_b grad_output[b] * log Z[b]`` (Triton).

    Args:
        cum_scores: ``(batch, T+1, C)``, as given to :func:`launch_streaming_triton_kernel`
            (every input is prepared again here, a no-op when already prepared).
        transition: ``(C, C)`` or ``(K, C, C)``, as given to the forward.
        duration_bias: ``(K, C)``, as given to the forward.
        lengths: ``(batch,)`` integer, as given to the forward.
        K: the longest segment.
        proj_start: optional ``(batch, T, C)``, as given to the forward.
        proj_end: optional ``(batch, T, C)``, as given to the forward.
        forward_state: the tuple :func:`launch_streaming_triton_kernel` returned for these
            inputs with ``semiring="log"``.
        grad_output: ``(batch,)`` upstream gradient of each log Z.
        num_warps: warps of the backward scan (``None``: heuristic).
        backward_rows: the backward scan's rows when :func:`launch_scans` already ran it
            (``first``, ``window`` ``(batch, T+1, C)``, ``shift`` ``(batch, T+1)`` float64); None
            runs it here.

    Returns:
        ``(grad_cum (batch, T+1, C), grad_transition (C, C) or (K, C, C), grad_duration_bias
        (K, C), grad_proj_start (batch, T, C) | None, grad_proj_end (batch, T, C) | None)`` in
        the compute dtype. Shared-parameter gradients are summed over the batch; a sequence with
        ``log Z = -inf`` contributes zeros, padding gets exact zeros. Deterministic.
    """
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    cum, trans, db, lengths, K, ps, pe = inp
    _check_triton(cum)
    state = StreamingForwardState(*forward_state)
    B, T1, C = cum.shape
    T = T1 - 1
    dev, dt = cum.device, cum.dtype
    kcc = trans.dim() == 3
    if (state.window is None) != kcc:
        raise ValueError(
            "forward_state: expected the state launch_streaming_triton_kernel returned for this "
            f"transition shape {tuple(trans.shape)}, got window={'None' if state.window is None else 'a tensor'}"
        )
    log_z = state.log_z
    if tuple(grad_output.shape) != (B,):
        raise ValueError(
            f"grad_output: expected shape ({B},) (one upstream gradient per sequence), got "
            f"{tuple(grad_output.shape)}"
        )
    # the upstream gradient is read in place by the kernels (a summed loss gives a stride-0
    # expand): no copy, cast or masking here; sequences with log Z = -inf contribute zeros
    g = grad_output
    ps_arg = ps if ps is not None else cum
    pe_arg = pe if pe is not None else cum
    if backward_rows is None:
        rows = run_backward_scan(inp, state, num_warps)
    else:
        rows = BackwardRows(*backward_rows)
    first, wb, rb = rows
    if kcc:
        block_c, block_d, warps = _kcc_config(C, K, num_warps, dt)
    else:
        block_c = scan_config(C, K, num_warps, dt).block_c
    budget = 2048 // (2 if dt == torch.float64 else 1)

    # Normalise every marginal by the drift-corrected log Z (module docstring).
    corr = measure_drift(inp, state, rows, num_warps)
    lz = new_float((B, T1), torch.float64, dev)
    block_lz = max(2, min(1024, _next_pow2(T1)))
    _drift_lz_kernel[(B, _cdiv(T1, block_lz))](
        lengths, log_z, corr, lz, T, checkpoint_spacing(K), corr.shape[1],
        BLOCK_T=block_lz, num_warps=4,
    )  # fmt: skip

    # ---- per-position gradients -------------------------------------------------------------
    gcum = new_float((B, T1, C), dt, dev)
    gps = new_float((B, T, C), dt, dev) if ps is not None else None
    gpe = new_float((B, T, C), dt, dev) if pe is not None else None
    block_t = max(2, min(_pow2_floor(1024 // block_c), _next_pow2(T1)))
    _marginals_kernel[(B, _cdiv(T1, block_t))](
        lengths, state.alpha, state.window if not kcc else state.alpha, state.shift,
        first, wb, rb, lz, log_z, g, g.stride(0), ps_arg, pe_arg,
        gcum, gps if gps is not None else cum, gpe if gpe is not None else cum,
        T, C,
        KCC=kcc, HAS_PS=ps is not None, HAS_PE=pe is not None,
        WANT_PS=gps is not None, WANT_PE=gpe is not None,
        BLOCK_T=block_t, BLOCK_C=block_c, num_warps=4,
    )  # fmt: skip

    # ---- shared parameters: per-program partials, summed over programs in a fixed order ----
    f64 = torch.float64
    if not kcc:
        sms = num_sms(dev)
        bs = max(2, min(8, _next_pow2(T)))
        tc = max(2, min(block_c, _pow2_floor(budget // (bs * block_c))))
        nct = _cdiv(C, tc)
        chunk, nch = _time_chunks(T, bs, B * nct, sms)
        part_t = new_float((B, nch, C, C), f64, dev)
        _grad_trans_cc_kernel[(B, nch, nct)](
            lengths, state.alpha, state.shift, first, rb, lz, trans, part_t,
            T, C, chunk, nch,
            BLOCK_S=bs, BLOCK_TC=tc, BLOCK_C=block_c, num_warps=4,
        )  # fmt: skip
        bd = max(2, min(_next_pow2(K), _pow2_floor(budget // (bs * block_c))))
        ndt = _cdiv(K, bd)
        chunk, nch = _time_chunks(T, bs, B * ndt, sms)
        part_d = new_float((B, nch, K, C), f64, dev)
        _grad_db_cc_kernel[(B, nch, ndt)](
            lengths, cum, db, state.window, state.shift, wb, rb, lz, part_d,
            T, K, C, chunk, nch,
            BLOCK_S=bs, BLOCK_D=bd, BLOCK_C=block_c, I64=needs_int64(T1, C, K),
            STAGES=GRAD_OVERRIDE.get("db_stages", 1), num_warps=4,
        )  # fmt: skip
    else:
        part_t = new_float((B, K, C, C), f64, dev)
        part_d = new_float((B, K, C), f64, dev)
        _grad_kcc_kernel[(B, _cdiv(K, block_d))](
            lengths, cum, trans, db, ps_arg, state.alpha, state.shift, wb, rb, lz,
            part_t, part_d, T, K, C,
            HAS_PS=ps is not None, BLOCK_D=block_d, BLOCK_C=block_c, num_warps=warps,
        )  # fmt: skip
    grad_trans = new_float(tuple(trans.shape), dt, dev)
    grad_db = new_float((K, C), dt, dev)
    for part, out in ((part_t, grad_trans), (part_d, grad_db)):
        # each buffer's own number of time chunks: the transition's and the duration bias's
        # tilings give different counts (part.shape[1]; one per sequence with (K, C, C))
        n = out.numel()
        nch = part.numel() // (B * n)
        # (rows of partials, outputs) tiles of at most 32 x 128 float64
        block_n = max(16, min(128, _next_pow2(n)))
        block_r = max(2, min(32, _next_pow2(B * nch)))
        _batch_sum_kernel[(_cdiv(n, block_n),)](
            part, g, g.stride(0), log_z, out, B, nch, n,
            BLOCK_R=block_r, BLOCK_N=block_n, num_warps=4,
        )  # fmt: skip
    return gcum, grad_trans, grad_db, gps, gpe
