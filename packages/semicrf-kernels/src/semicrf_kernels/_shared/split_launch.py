"""Host side of the split scan: when to split, the tiles, and the launches.

A ``(C, C)`` scan (forward, Viterbi or backward) does O(K C) work a position for its duration
window. At long ``K`` that work is split by its dependencies: positions are cut into
*super-blocks* of ``S``; for every super-block the far-window kernel
(:mod:`.triton_far`) first reduces the window rows older than the super-block for all its
outputs, over the whole GPU, then the serial kernel (one program per sequence) finishes the
super-block reducing only the rows inside it (the default, alternating schedule). Between
the two, a small parallel kernel merges the far kernel's partials of each output (``reduce``).
With ``overlap`` (``SPLIT_OVERRIDE["overlap"] = True``; measured slower on an H100, so not the
default) the far rows end one super-block earlier, so the far kernel of super-block
``j + 1`` runs on a second stream while the serial kernel scans ``j``, and the serial kernel
reduces the near rows of the previous super-block and its own. The number of launches follows
the padded ``T`` (never ``max(lengths)``), so CUDA-graph capture records a fixed sequence.
``docs/kernels.md`` has the figure and the measurements behind :func:`split_config`'s rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from .fast_launch import SiteLauncher

__all__ = [
    "SPLIT_OVERRIDE",
    "SplitConfig",
    "interleave",
    "num_sms",
    "run_launches",
    "scan_cc_launches",
    "split_config",
]


@dataclass(frozen=True)
class SplitConfig:
    """How a scan is split.

    Attributes:
        superblock: ``S``, positions per super-block (a multiple of the scan's ``block_p``).
        block_pf: outputs per far program (a power of two).
        rows_per_split: ``RS``, window rows per far program.
        block_sf: window rows per far tile (a power of two).
        nsplit: far programs per output tile, ``ceil(K / RS)``.
        far_warps: warps per far program.
        overlap: far rows end one super-block earlier, so the far kernel of super-block
            ``j + 1`` runs on a second stream while super-block ``j`` is scanned.
        reduce: a parallel kernel merges the ``nsplit`` partials of each output before the
            serial kernel runs (else the serial kernel merges them itself).
    """

    superblock: int
    block_pf: int
    rows_per_split: int
    block_sf: int
    nsplit: int
    far_warps: int
    overlap: bool = False
    reduce: bool = True


#: Overrides of :func:`split_config` for tests and tuning (``benchmarks/``): ``SplitConfig``
#: field names, and ``"enable"`` (bool) to force the split on or off.
SPLIT_OVERRIDE: dict[str, Any] = {}


def _pow2_floor(n: int) -> int:
    return 1 << (max(1, int(n)).bit_length() - 1)


def num_sms(device: torch.device) -> int:
    """Multiprocessors of ``device`` (4 stands in on the CPU, for the interpreter)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def split_config(
    T: int,
    K: int,
    block_c: int,
    block_p: int,
    sms: int,
    dtype: torch.dtype,
    paired: bool = False,
) -> SplitConfig | None:
    """The split of a ``(C, C)`` scan, or None for the plain serial scan.

    Rule: split when the window is long compared with a super-block (``K >= 2 S``) and there is more
    than one super-block. A scan launched alone (the forward without gradients, the Viterbi scan)
    takes super-blocks of ``S = 64`` positions where ``K >= 128``, of 32 where ``64 <= K < 128``
    (labels padded to at most 32), with the far partials merged by their own kernel (``reduce``):
    with the launch sites' direct path (``.fast_launch``) 32-position super-blocks measured on an
    H100 at ``8 x 10000 x 100 x 24`` forward 28.7 -> 20.8 ms and Viterbi 25.7 -> 18.0 ms against the
    unsplit scan (16 positions: 31.5 / 34.0 ms; through Triton's normal launch path, 22.7 / 35.6
    ms); at ``K = 200`` 64 positions stay ahead (100K: Viterbi 181 against 197 ms at 32). A scan
    launched ``paired`` with another (the forward and backward scans together, their launches
    interleaved from one host thread) takes ``S = 128`` where ``K >= 256``, with ``reduce``, else 64
    without it: two scans issue twice the launches, and with smaller super-blocks the host, not the
    GPU, sets the pace. ``S`` counts positions, not temporal blocks, for that reason (it is rounded
    down to a multiple of the temporal block); all the figures are at ``C = 24`` or 16 (8-position
    blocks). Measured on an H100 (``benchmarks/results/split_*``), forward / Viterbi alone: ``1 x
    400000 x 3000 x 24`` 921 / 837 ms at 64 positions, 1041 / 923 ms at 128, 1503 / 1730 ms at 32;
    ``1 x 100000 x 200 x 24`` 210 / 198 ms at 64, 365 / 390 ms at 32 (through Triton's normal launch
    path; with the direct one, 2026-12-07: 210 / 181 ms at 64, 208 / 197 ms at 32). Forward and
    backward: 400K 1547 ms at 128, 1763 ms at 64; ``1 x 1000000 x 1000 x 16`` 1844 ms at 128, 5212
    ms at 64; 100K 393 ms at 64 without ``reduce``, 456 ms with it. At ``K = 100`` no paired split
    gained anything (``8 x 10000 x 100 x 24`` 38.7 ms at 32 against 35.1 unsplit, before the
    register ring). The far rows of a super-block are cut into slices of whole tiles so that the far
    grid has at least ``2 x sms`` programs (two per multiprocessor).

    Args:
        T: padded length.
        K: longest segment.
        block_c: labels padded to a power of two.
        block_p: the scan's temporal block.
        sms: the device's multiprocessors.
        dtype: compute dtype (float64 halves the far tiles).
        paired: the scan's launches are interleaved with another scan's.
    """
    long_window = K >= 256
    if paired:
        default_s = 128 if long_window else 64
    else:
        # a scan alone: 32-position super-blocks where the window is 64 to 127 rows (C <= 32)
        default_s = 64 if K >= 128 or block_c > 32 else 32
    S = int(SPLIT_OVERRIDE.get("superblock", default_s))
    S = max(block_p, (S // block_p) * block_p)
    enable = SPLIT_OVERRIDE.get("enable", K >= 2 * S and T > S)
    if not enable:
        return None
    budget = 4096 // (2 if dtype == torch.float64 else 1)
    block_pf = int(SPLIT_OVERRIDE.get("block_pf", min(_pow2_floor(S), 16)))
    default_sf = max(2, _pow2_floor(budget // (block_pf * block_c)))
    block_sf = int(SPLIT_OVERRIDE.get("block_sf", default_sf))
    tiles = math.ceil(S / block_pf)
    want = max(1, math.ceil(2 * sms / tiles))
    # whole tiles, rounded down so that there are at least ``want`` slices
    rs = max(block_sf, (K // want // block_sf) * block_sf)
    rs = int(SPLIT_OVERRIDE.get("rows_per_split", rs))
    far_warps = int(SPLIT_OVERRIDE.get("far_warps", 4))
    # The overlapped schedule measured slower than this one on an H100 (docs/kernels.md).
    overlap = bool(SPLIT_OVERRIDE.get("overlap", False))
    reduce = bool(SPLIT_OVERRIDE.get("reduce", long_window or not paired))
    return SplitConfig(S, block_pf, rs, block_sf, math.ceil(K / rs), far_warps, overlap, reduce)


def scan_cc_launches(
    kernel,
    kernel_args: tuple,
    flags: dict[str, Any],
    *,
    cum: torch.Tensor,
    db: torch.Tensor,
    lengths: torch.Tensor,
    window: torch.Tensor,
    shift: torch.Tensor,
    K: int,
    block_c: int,
    block_p: int,
    reverse: bool,
    maxsr: bool,
    paired: bool = False,
    block_r: int = 0,
) -> Iterator[None]:
    """Launch a ``(C, C)`` scan, split or not: a generator issuing one super-block per step.

    Args:
        kernel: the role's serial scan kernel; it takes ``kernel_args`` (ending with ``T, K,
            C``), then ``farv, fard, t_begin, S, NSPLIT``, then ``BLOCK_K``, ``BLOCK_R`` and
            ``flags``.
        kernel_args: its leading positional arguments.
        flags: its other compile-time arguments and ``num_warps``.
        cum: ``(batch, T+1, C)`` cumulative scores.
        db: ``(K, C)`` duration bias.
        lengths: ``(batch,)`` int64.
        window: ``(batch, T+1, C)`` the scan's window-value output (read by the far kernel).
        shift: ``(batch, T+1)`` float64, the scan's shift output.
        K: longest segment.
        block_c: labels padded to a power of two.
        block_p: the scan's temporal block.
        reverse: the backward scan (mirrored in time).
        maxsr: the max semiring (far partials carry their best duration).
        paired: its launches will be interleaved with another scan's (:func:`interleave`).
        block_r: the register ring's rows (``scan_launch.ring_rows``) if the scan is not split;
            0 for the temporally blocked body. A split scan always takes the blocked body.
    """
    B, T1, C = cum.shape
    T = T1 - 1
    split = split_config(T, K, block_c, block_p, num_sms(cum.device), cum.dtype, paired)
    if split is None:
        dummy = torch.empty(1, dtype=cum.dtype, device=cum.device)
        dummy_i = torch.empty(1, dtype=torch.int32, device=cum.device)
        kernel[(B,)](
            *kernel_args, dummy, dummy_i, 1, T + 1, 0, 0, BLOCK_K=2, BLOCK_R=block_r, **flags
        )
        yield
        return
    from .triton_far import _far_window_kernel

    S = split.superblock
    gap = S if split.overlap else 0
    nbuf = 2 if split.overlap else 1

    def buffers(nsplit: int) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.empty((nbuf, B, S, nsplit, C), dtype=cum.dtype, device=cum.device)
        shape_d = (nbuf, B, S, nsplit, C) if maxsr else (nbuf, 1)
        return v, torch.empty(shape_d, dtype=torch.int32, device=cum.device)

    farv, fard = buffers(split.nsplit)
    block_k = max(2, min(16, 1 << (split.nsplit - 1).bit_length()))
    far_grid = (math.ceil(S / split.block_pf), split.nsplit, B)
    if split.reduce:
        # The partials merged by a parallel kernel: the serial kernel reads one per output.
        from .triton_far import _far_reduce_kernel

        merged_v, merged_d = buffers(1)
        block_pr = max(1, min(_pow2_floor(S), _pow2_floor(4096 // (block_k * block_c))))
        reduce_grid = (math.ceil(S / block_pr), B)
    else:
        merged_v, merged_d = farv, fard

    # Per-buffer views made once: the host issues every launch of a long scan one after another
    # and at small super-blocks sets the pace (three launches a super-block), so a tensor index
    # per launch (a few microseconds each) is worth keeping out of the loop.
    bufs = [(farv[k], fard[k], merged_v[k], merged_d[k]) for k in range(nbuf)]

    # One launcher per launch site and buffer: after its first launch each issues the compiled
    # kernel directly (.fast_launch), the host cost that sets the pace at small super-blocks.
    cuda = cum.device.type == "cuda"
    far_sites = [
        SiteLauncher(
            _far_window_kernel, far_grid,
            dict(REVERSE=reverse, MAXSR=maxsr, BLOCK_C=block_c, BLOCK_PF=split.block_pf,
                 BLOCK_SF=split.block_sf, num_warps=split.far_warps),
            cuda,
        )
        for _ in range(nbuf)
    ]  # fmt: skip
    if split.reduce:
        reduce_sites = [
            SiteLauncher(
                _far_reduce_kernel, reduce_grid,
                dict(MAXSR=maxsr, BLOCK_C=block_c, BLOCK_P=block_pr, BLOCK_K=block_k, num_warps=4),
                cuda,
            )
            for _ in range(nbuf)
        ]  # fmt: skip
    serial_nsplit, serial_block_k = (1, 2) if split.reduce else (split.nsplit, block_k)
    # no exponential space in split scans (redoing one super-block is not implemented)
    no_exp = {"EXP_TRANS": False} if "EXP_TRANS" in flags else {}
    serial_sites = [
        SiteLauncher(
            kernel, (B,), {**flags, "BLOCK_K": serial_block_k, "BLOCK_R": 0, **no_exp}, cuda
        )
        for _ in range(nbuf)
    ]

    def far(t0: int) -> None:
        k = (t0 // S) % nbuf  # super-block t0's buffers (two alternate if overlapped)
        fv, fd, mv, md = bufs[k]
        far_sites[k](
            cum, db, lengths, window, shift, fv, fd, T, K, C, t0, S, split.rows_per_split, gap
        )
        if split.reduce:
            reduce_sites[k](fv, fd, mv, md, lengths, S, split.nsplit, C, t0)

    def serial(t0: int) -> None:
        nsplit = serial_nsplit if t0 - gap > 1 else 0  # far rows exist: rows 0.. are near
        k = (t0 // S) % nbuf
        _, _, mv, md = bufs[k]
        serial_sites[k](*kernel_args, mv, md, t0, S, nsplit, gap)

    starts = range(1, T + 1, S)
    if not split.overlap:
        for t0 in starts:
            if t0 > 1:
                far(t0)
            serial(t0)
            yield
        return
    if cum.device.type != "cuda":
        # the interpreter, one launch after another: super-block j, then the far part of j + 1
        # (rows before j, all written by now)
        for t0 in starts:
            serial(t0)
            if t0 > 1 and t0 + S <= T:
                far(t0 + S)
            yield
        return
    yield from _overlapped(starts, S, serial, far, T, cum.device)


def _overlapped(starts, S: int, serial, far, T: int, device: torch.device) -> Iterator[None]:
    """Issue a split scan with the far kernels one super-block ahead, on a second stream.

    The serial kernels run on a high-priority stream (a far grid that fills the GPU must not
    delay the critical path), each waiting for its own far kernel; the far kernel of
    super-block ``j + 1`` waits for the serial kernel of ``j - 1`` (its rows) and writes the
    buffer that ``j - 1`` read. Both streams fork from and join back to the current one, so
    CUDA-graph capture records them.
    """
    main = torch.cuda.current_stream(device)
    hp = torch.cuda.Stream(device=device, priority=-1)
    side = torch.cuda.Stream(device=device)
    hp.wait_stream(main)
    side.wait_stream(main)
    far_done = serial_done = None  # far_done: the far kernel of the super-block scanned next
    for t0 in starts:
        with torch.cuda.stream(hp):
            if far_done is not None:
                hp.wait_event(far_done)
            serial(t0)
            prev, serial_done = serial_done, torch.cuda.Event()
            serial_done.record(hp)
        far_done = None
        if t0 > 1 and t0 + S <= T:
            with torch.cuda.stream(side):
                if prev is not None:
                    side.wait_event(prev)
                far(t0 + S)
                far_done = torch.cuda.Event()
                far_done.record(side)
        yield
    main.wait_stream(hp)
    main.wait_stream(side)


def run_launches(steps: Iterator[None]) -> None:
    """Issue every launch of a :func:`scan_cc_launches` generator now."""
    for _ in steps:
        pass


_DONE = object()


def interleave(*scans: tuple[torch.cuda.Stream | None, Iterator[None]]) -> None:
    """Issue several scans' launches super-block by super-block, each on its own stream.

    Issuing one split scan's thousands of launches before the other's would fill the launch
    queue and serialise the two scans; alternating keeps both in flight.
    """
    live = list(scans)
    while live:
        still = []
        for stream, steps in live:
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                if next(steps, _DONE) is not _DONE:
                    still.append((stream, steps))
        live = still
