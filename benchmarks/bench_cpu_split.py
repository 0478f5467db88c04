"""One sequence split over the threads against one thread per sequence (compiled CPU path).

For each ``B x T x K x C`` (float32, ``--per-duration`` for ``(K, C, C)`` transitions) and each
operation of ``bench_cpu.py`` (forward, fwd+bwd, Viterbi + path), the same public call is timed
with the threads' rule (``semicrf_kernels._shared.numba_support.split_parts``) and with the split
disabled (every sequence on one thread), alternately in one process, best of ``--repeats`` after
a warm-up of each, with the rule's median and how many of its calls stalled (each call decides
afresh: the 10 s hold after a stall is cleared before every call). The ``parts`` column is what
the rule chose; where it is 1 both columns run the same code, which shows the machine's noise.

``--busy N`` runs N busy-looping processes meanwhile (a machine shared with other work: a split
part that loses its core stalls the scan, which then runs again on one thread).

Run: ``uv run python benchmarks/bench_cpu_split.py --threads 2 --per-duration [--busy 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from bench_cpu import cells  # this script's folder is on sys.path

from semicrf_kernels import set_cpu_path
from semicrf_kernels._shared import numba_support

SIZES = "1x2000x1000x24,1x50000x500x24"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="e.g. 1x50000x500x24,1x3000x200x24")
    parser.add_argument("--per-duration", action="store_true", help="(K, C, C) transitions")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="busy processes meanwhile")
    args = parser.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        run(args)
    finally:
        for process in busy:
            process.kill()
            process.wait()


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    set_cpu_path("numba")
    rule = numba_support.split_parts
    modes = {"one thread per sequence": lambda *a: 1, "rule": rule}
    print(f"{torch.get_num_threads()} threads, {args.busy} busy processes, best of {args.repeats}")
    print("| B x T x K x C | op | parts | one thread per sequence | rule | speed-up "
          "| rule, median | stalled |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes.split(","):
        B, T, K, C = (int(v) for v in size.split("x"))
        numba_support._last_stall = float("-inf")
        parts = rule(B, T, K, C, args.per_duration)
        for op, fn in cells(B, T, K, C, args.per_duration).items():
            times: dict[str, list[float]] = {name: [] for name in modes}
            for split in modes.values():  # warm-up
                numba_support.split_parts = split
                fn()
            stalls = numba_support.stalls
            for _ in range(args.repeats):
                for name, split in modes.items():
                    numba_support.split_parts = split
                    # each call decides afresh: no hold from an earlier call's stall
                    numba_support._last_stall = float("-inf")
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
            numba_support.split_parts = rule
            whole, split = (min(t) for t in times.values())
            median = statistics.median(times["rule"])
            stalled = numba_support.stalls - stalls
            print(f"| {size} | {op} | {parts} | {whole * 1e3:.1f} ms | {split * 1e3:.1f} ms | "
                  f"{whole / split:.2f}x | {median * 1e3:.1f} ms | {stalled} of {args.repeats} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
