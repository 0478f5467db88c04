"""``flash-semicrf bench``: time the streaming kernels and print a markdown table.

On a GPU every configuration of the reference suite (``B x T x K x C``) is timed with
``triton.testing.do_bench`` (median) for the Triton kernels, and with CUDA events for the
PyTorch path where it finishes in reasonable time; on the CPU a small suite times the PyTorch
path. Columns: forward (log semiring, no gradient), Viterbi score, Viterbi with device traceback
(the tensor path ``semi_crf_streaming_viterbi``), forward+backward, and the peak memory of
forward+backward above the inputs.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
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


def make_inputs(B: int, T: int, K: int, C: int, device: torch.device, seed: int = 0):
    """Zero-centred random scores as ``cum_scores (B, T+1, C)`` float32, plus parameters."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    scores = torch.randn(B, T, C, generator=gen)
    scores -= scores.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = scores.double().cumsum(dim=1)
    transition = 0.1 * torch.randn(C, C, generator=gen)
    duration_bias = 0.1 * torch.randn(K, C, generator=gen)
    lengths = torch.full((B,), T, dtype=torch.long)
    return (
        cum.float().to(device),
        transition.to(device),
        duration_bias.to(device),
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


def _time_cuda(fn: Callable[[], object], long: bool) -> float:
    if not long:
        import triton.testing

        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    # Seconds-long calls: a warm-up and the median of three event-timed runs.
    fn()
    times = []
    for _ in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


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
        return _time_cuda(fn, long) if cuda else _time_cpu(fn)

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


def _commit() -> str:
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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
        f"device: {card}; date: {_dt.date.today().isoformat()}; commit: {_commit()}; "
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
        card = (torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu").replace(" ", "-")
        name = f"streaming_{card}_{_dt.date.today().isoformat()}_{_commit()}.md"
        (folder / name).write_text("# Streaming kernels benchmark\n\n" + table + "\n")
    return table
