"""``flash-semicrf bench``: time the streaming kernels and print a markdown table.

On a GPU every configuration of the reference suite (``B x T x K x C``) is timed with
``triton.testing.do_bench`` (median) for the Triton kernels, and with CUDA events for the
PyTorch path where it finishes in reasonable time; on the CPU a small suite times the default
CPU path (compiled with numba; ``SEMICRF_CPU_PATH=pytorch`` times the PyTorch one instead). Columns: forward (log semiring, no gradient), Viterbi score, Viterbi with device traceback
(the tensor path ``semi_crf_streaming_viterbi``), forward+backward, and the peak memory of
forward+backward above the inputs.

The module is also the one home of the helpers that the GPU scripts in ``benchmarks/`` share
(``bench_streaming.py``, ``check_precision.py``, ``gpu_reliability.py``): :func:`make_inputs`
(random streaming-kernel inputs), :func:`time_cuda` (median milliseconds of a CUDA call),
:func:`git_commit` and :func:`card_name` (what a results file is named after).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

#: The issue's reference configurations (batch, T, K, C).
GPU_SUITE: tuple[tuple[int, int, int, int], ...] = (
    (32, 1000, 32, 24),
    (8, 10000, 100, 24),
    (64, 512, 16, 8),
    (4, 2048, 64, 128),
    (1, 400000, 3000, 24),
)
GPU_QUICK: tuple[tuple[int, int, int, int], ...] = ((32, 1000, 32, 24), (64, 512, 16, 8))
CPU_SUITE: tuple[tuple[int, int, int, int], ...] = ((8, 512, 16, 8), (4, 1000, 32, 24))
CPU_QUICK: tuple[tuple[int, int, int, int], ...] = ((2, 128, 8, 4),)

#: The PyTorch path loops over T in Python: time it only below this many B*T*(K+C) cells.
PYTORCH_LIMIT = 3_000_000


@dataclass
class Row:
    config: str
    forward: float | None = None
    viterbi: float | None = None
    viterbi_path: float | None = None
    fwd_bwd: float | None = None
    peak_mib: float | None = None
    torch_forward: float | None = None
    torch_fwd_bwd: float | None = None
    note: str = ""


def make_inputs(
    B: int,
    T: int,
    K: int,
    C: int,
    device: torch.device | str,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    scale: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random inputs of the streaming kernels: zero-centred scores, full-length sequences.

    Everything is drawn on the CPU from one ``torch.Generator`` seeded with ``seed`` (so the
    values do not depend on ``device``), in this order: the per-position scores, the transition,
    the duration bias. The scores are centred over time per sequence and label (as the CRF head
    does) and summed in float64, so ``cum_scores[:, -1]`` is about 0; every tensor is then cast
    once to ``dtype`` and moved to ``device``.

    Args:
        B: Batch size.
        T: Sequence length; every sequence has length ``T``.
        K: Maximum segment duration.
        C: Number of labels.
        device: Where the returned tensors live.
        seed: Seed of the CPU generator.
        dtype: Floating dtype of ``cum_scores``, ``transition`` and ``duration_bias``.
        scale: Standard deviation of ``transition`` and ``duration_bias`` (drawn in float32 as
            ``scale * randn``, then cast). ``flash-semicrf bench`` uses 0.1,
            ``benchmarks/bench_streaming.py`` 0.5.

    Returns:
        ``(cum_scores, transition, duration_bias, lengths)``:

        * ``cum_scores``: ``(batch, T+1, C)``, ``dtype``; prefix sums over time of standard-normal
          scores centred over time, with ``cum_scores[:, 0] == 0``.
        * ``transition``: ``(C, C)``, ``dtype``; ``transition[c_prev, c]``, the score of a
          segment of label ``c`` after one of label ``c_prev``.
        * ``duration_bias``: ``(K, C)``, ``dtype``; ``duration_bias[d-1, c]``, the score of a
          segment of label ``c`` and duration ``d``.
        * ``lengths``: ``(batch,)``, int64; all equal to ``T``.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    scores = torch.randn(B, T, C, generator=gen)
    scores -= scores.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = scores.double().cumsum(dim=1)
    transition = scale * torch.randn(C, C, generator=gen)
    duration_bias = scale * torch.randn(K, C, generator=gen)
    lengths = torch.full((B,), T, dtype=torch.long)
    return (
        cum.to(device=device, dtype=dtype),
        transition.to(device=device, dtype=dtype),
        duration_bias.to(device=device, dtype=dtype),
        lengths.to(device),
    )


def _time_cpu(fn: Callable[[], object], reps: int = 3) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_cuda(
    fn: Callable[[], object], long: bool = False, warmup: int = 25, rep: int = 100
) -> float:
    """Median milliseconds of one call of ``fn`` on the current CUDA device.

    Args:
        fn: The call to time; it must launch its work on the current CUDA stream.
        long: ``fn`` runs for seconds: one warm-up call, then the median of three calls timed with
            CUDA events (``triton.testing.do_bench`` would first run it five times just to
            estimate its duration). ``warmup`` and ``rep`` are then ignored.
        warmup: Milliseconds of warm-up runs, as in ``triton.testing.do_bench``.
        rep: Milliseconds of timed runs, as in ``triton.testing.do_bench``.

    Returns:
        The median time of one call, in milliseconds.
    """
    if long:
        fn()
        times = []
        for _ in range(3):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)
    from triton.testing import do_bench

    try:
        return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))
    except TypeError:  # older triton 3.x signatures: quantiles only
        return float(do_bench(fn, warmup=warmup, rep=rep, quantiles=[0.5])[0])


def _fwd_bwd(api, cum, trans, db, lengths, K, use_triton):
    cum = cum.detach().requires_grad_(True)
    trans = trans.detach().requires_grad_(True)
    db = db.detach().requires_grad_(True)

    def run():
        z = api(cum, trans, db, lengths, K, use_triton=use_triton, validate=False)
        z.sum().backward()
        cum.grad = trans.grad = db.grad = None

    return run


def bench_config(B: int, T: int, K: int, C: int, device: torch.device) -> Row:
    from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi

    row = Row(config=f"{B}x{T}x{K}x{C}")
    cum, trans, db, lengths = make_inputs(B, T, K, C, device)
    cuda = device.type == "cuda"
    long = B * T * (K + C) > 50_000_000

    def timer(fn):
        return time_cuda(fn, long) if cuda else _time_cpu(fn)

    def fwd(use_triton: bool, semiring: str = "log"):
        def run():
            with torch.no_grad():
                return semi_crf_streaming_forward(
                    cum, trans, db, lengths, K, semiring, use_triton=use_triton, validate=False
                )

        return run

    def vit():
        with torch.no_grad():
            return semi_crf_streaming_viterbi(
                cum, trans, db, lengths, K, use_triton=cuda, validate=False
            )

    row.forward = timer(fwd(cuda))
    row.viterbi = timer(fwd(cuda, "max"))
    if T <= 20000:
        row.viterbi_path = timer(vit)
    step = _fwd_bwd(semi_crf_streaming_forward, cum, trans, db, lengths, K, cuda)
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        row.peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    row.fwd_bwd = timer(step)
    if cuda:
        if B * T * (K + C) <= PYTORCH_LIMIT:
            row.torch_forward = timer(fwd(False))
            row.torch_fwd_bwd = timer(
                _fwd_bwd(semi_crf_streaming_forward, cum, trans, db, lengths, K, False)
            )
        else:
            row.note = "PyTorch path not timed (too long)"
    return row


def _fmt(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def git_commit() -> str:
    """The commit that results are recorded against.

    Returns:
        ``$GIT_COMMIT`` when set and non-empty, else ``git rev-parse --short HEAD`` run in the
        current directory, else ``"unknown"`` (no git, or not a checkout).
    """
    env = os.environ.get("GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def card_name(device: torch.device | str | None = None) -> str:
    """The device's name as it goes into a results file name.

    Args:
        device: A CPU or CUDA device; ``None`` means the current CUDA device.

    Returns:
        ``"cpu"`` for a CPU device, else the CUDA device's name with every run of characters
        other than ASCII letters and digits replaced by ``-`` (``"NVIDIA-H100-80GB-HBM3"``).
    """
    if device is not None and torch.device(device).type == "cpu":
        return "cpu"
    name = torch.cuda.get_device_name(device)
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def format_table(rows: list[Row], device: torch.device) -> str:
    card = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "CPU"
    )
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "absent"
    head = [
        f"device: {card}; date: {_dt.date.today().isoformat()}; commit: {git_commit()}; "
        f"torch {torch.__version__}; triton {triton_version}",
        "",
        "Times in ms (median). Peak: memory of forward+backward above the inputs, MiB.",
        "",
        "| B x T x K x C | forward | Viterbi score | Viterbi + path | fwd+bwd | peak MiB | PyTorch fwd | PyTorch fwd+bwd | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    body = [
        f"| {r.config} | {_fmt(r.forward)} | {_fmt(r.viterbi)} | {_fmt(r.viterbi_path)} | {_fmt(r.fwd_bwd)} "
        f"| {_fmt(r.peak_mib)} | {_fmt(r.torch_forward)} | {_fmt(r.torch_fwd_bwd)} | {r.note} |"
        for r in rows
    ]
    return "\n".join(head + body)


def run_bench(quick: bool = False, device: str = "auto", out: str | None = None) -> str:
    """Run the suite on ``device`` and return the markdown table (also written to ``out``)."""
    if device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"--device {device!r} is not a device: {err}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine")
        if dev.type not in ("cpu", "cuda"):
            raise ValueError(f"--device must be cpu or cuda, got {device!r}")
    if dev.type == "cuda":
        suite = GPU_QUICK if quick else GPU_SUITE
    else:
        suite = CPU_QUICK if quick else CPU_SUITE
    rows = []
    for B, T, K, C in suite:
        try:
            rows.append(bench_config(B, T, K, C, dev))
        except torch.cuda.OutOfMemoryError:
            rows.append(Row(config=f"{B}x{T}x{K}x{C}", note="out of memory"))
            torch.cuda.empty_cache()
    table = format_table(rows, dev)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"streaming_{card_name(dev)}_{_dt.date.today().isoformat()}_{git_commit()}.md"
        (folder / name).write_text("# Streaming kernels benchmark\n\n" + table + "\n")
    return table
