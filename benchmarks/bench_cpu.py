"""The CPU paths side by side: the vectorised PyTorch scan and the compiled (numba) one.

For each ``B x T x K x C`` (float32 inputs, ``(C, C)`` transitions unless ``--per-duration``):

* forward: ``semi_crf_streaming_forward`` without gradients;
* fwd+bwd: the same with gradients for ``cum_scores``, ``transition`` and ``duration_bias``,
  then ``backward``;
* Viterbi + path: ``semi_crf_streaming_viterbi`` (scan, traceback and segment scores).

Each cell is the best of ``--repeats`` runs after one warm-up call (best, not median: the
machine is shared and noise only ever adds time). PyTorch cells expected to take minutes are
skipped unless ``--full``, and the large PyTorch cells run once. ``--paths numba`` times the
compiled path alone. ``--compile-times`` also measures, in fresh processes, the first call with
a cold numba cache (an empty ``NUMBA_CACHE_DIR``) and with a warm one, against the second call
(``bench_cpu_first_call.py``).

Run: ``uv run python benchmarks/bench_cpu.py [--out benchmarks/results/cpu_DATE.md]``.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch

from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi, set_cpu_path

SIZES = [(2, 5000, 16, 8), (8, 500, 32, 24), (1, 2000, 1000, 24), (1, 50000, 500, 24)]
TARGETS = {  # the targets on a 2-core machine, seconds: forward, fwd+bwd, Viterbi
    (2, 5000, 16, 8): (0.020, 0.080, 0.040),
    (8, 500, 32, 24): (0.015, 0.050, 0.030),
    (1, 2000, 1000, 24): (0.3, 1.0, 0.4),
    (1, 50000, 500, 24): (6.0, 18.0, 8.0),
}
SLOW_PYTORCH = {(1, 50000, 500, 24): ("fwd+bwd", "viterbi")}


def inputs(B: int, T: int, K: int, C: int, per_duration: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(B, T, C, generator=g)
    emissions = emissions - emissions.mean(dim=1, keepdim=True)
    cum = torch.nn.functional.pad(emissions.cumsum(1), (0, 0, 1, 0))
    trans = torch.randn((K, C, C) if per_duration else (C, C), generator=g) * 0.5
    bias = torch.randn(K, C, generator=g) * 0.5
    lengths = torch.full((B,), T, dtype=torch.int64)
    return cum, trans, bias, lengths


def best_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cells(B, T, K, C, per_duration):
    cum, trans, bias, lengths = inputs(B, T, K, C, per_duration)

    def forward():
        with torch.no_grad():
            semi_crf_streaming_forward(cum, trans, bias, lengths, K, use_triton=False)

    def fwd_bwd():
        leaves = [x.clone().requires_grad_() for x in (cum, trans, bias)]
        semi_crf_streaming_forward(*leaves[:3], lengths, K, use_triton=False).sum().backward()

    def viterbi():
        semi_crf_streaming_viterbi(cum, trans, bias, lengths, K, use_triton=False)

    return {"forward": forward, "fwd+bwd": fwd_bwd, "viterbi": viterbi}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def compile_times() -> list[str]:
    """First against second call in fresh processes (``bench_cpu_first_call.py``)."""
    from bench_cpu_first_call import table  # this script's folder is on sys.path

    return table("2x5000x16x8", repeats=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=str, default=None, help="e.g. 2x5000x16x8,8x500x32x24")
    parser.add_argument("--per-duration", action="store_true", help="(K, C, C) transitions")
    parser.add_argument("--full", action="store_true", help="also the multi-minute PyTorch cells")
    parser.add_argument("--compile-times", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--paths", type=str, default="pytorch,numba", help="columns to time")
    parser.add_argument("--out", type=str, default=None)
    args = parser.parse_args()
    paths = args.paths.split(",")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    header = (
        f"CPU paths, float32 inputs, {'(K, C, C)' if args.per_duration else '(C, C)'} "
        f"transitions, {torch.get_num_threads()} threads, best of {args.repeats} after a warm-up "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__})"
    )
    lines = [header, "", "| B x T x K x C | op | PyTorch | numba | speed-up | target |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    print("\n".join(lines), flush=True)
    for B, T, K, C in sizes:
        timed = {}
        for path in ("pytorch", "numba"):
            if path not in paths:
                timed.update({(path, op): None for op in ("forward", "fwd+bwd", "viterbi")})
                continue
            set_cpu_path(path)
            for op, fn in cells(B, T, K, C, args.per_duration).items():
                slow = op in SLOW_PYTORCH.get((B, T, K, C), ())
                skip = path == "pytorch" and slow and not args.full
                big = path == "pytorch" and (slow or T * K * C > 1e7)
                repeats = 1 if big else args.repeats
                timed[path, op] = None if skip else best_seconds(fn, repeats)
        set_cpu_path(None)
        for i, op in enumerate(("forward", "fwd+bwd", "viterbi")):
            a, b = timed["pytorch", op], timed["numba", op]
            speed = f"{a / b:.1f}x" if a is not None and b is not None else ""
            target = TARGETS.get((B, T, K, C))
            goal = f"<= {_fmt(target[i])}" if target and not args.per_duration else ""
            line = f"| {B}x{T}x{K}x{C} | {op} | {_fmt(a)} | {_fmt(b)} | {speed} | {goal} |"
            lines.append(line)
            print(line, flush=True)
    if args.compile_times:
        extra = ["", *compile_times()]
        print("\n".join(extra))
        lines += extra
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
