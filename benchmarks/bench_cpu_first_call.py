"""First call against second call of the compiled CPU path, each in a fresh process.

Each process times one operation twice on the same inputs (``B x T x K x C``, float32,
``(C, C)`` transitions): the first call imports numba and loads the kernels from numba's disk
cache (or compiles them when the cache is cold), the second runs them. The difference is what a
user's first call costs. Before either, the process makes one PyTorch-path call, which pays for
torch's own first-call costs (its custom-operator machinery imports ``torch._dynamo``: seconds)
so they are not counted against numba.

Cache states, in a temporary ``NUMBA_CACHE_DIR``: ``cold`` (empty: the kernels compile) once,
then ``warm`` ``--repeats`` times per operation. Python bytecode is written
(``PYTHONDONTWRITEBYTECODE`` removed from the children's environment), as for an installed
package: pip compiles it at install time; without it every process recompiles numba's own
sources, 1-2 s more that no installed user pays. ``--breakdown`` also times, in the warm
processes, ``import numba`` on its own before the first call (so the first call's remainder is
loading the cached kernels; the first call's time includes the import either way).

Run: ``uv run python benchmarks/bench_cpu_first_call.py [--size 2x5000x16x8] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

OPS = ("fwd+bwd", "viterbi", "forward")

CHILD = textwrap.dedent(
    """
    import sys, time
    import torch
    from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi, set_cpu_path
    B, T, K, C = (int(v) for v in sys.argv[1].split("x"))
    op, breakdown = sys.argv[2], sys.argv[3] == "1"
    g = torch.Generator().manual_seed(0)
    cum = torch.nn.functional.pad(torch.randn(B, T, C, generator=g).cumsum(1), (0, 0, 1, 0))
    trans, bias = torch.randn(C, C, generator=g) * 0.5, torch.randn(K, C, generator=g) * 0.5
    lengths = torch.full((B,), T)

    def call(cum, lengths):
        if op == "viterbi":
            semi_crf_streaming_viterbi(cum, trans, bias, lengths, K, use_triton=False)
        elif op == "forward":
            with torch.no_grad():
                semi_crf_streaming_forward(cum, trans, bias, lengths, K, use_triton=False)
        else:
            leaves = [x.clone().requires_grad_() for x in (cum, trans, bias)]
            semi_crf_streaming_forward(*leaves, lengths, K, use_triton=False).sum().backward()

    set_cpu_path("pytorch")
    call(cum[:, :21].contiguous(), torch.full((B,), 20))
    set_cpu_path("numba")
    imported = 0.0
    times = []
    for i in range(2):
        c0, t0 = time.process_time(), time.perf_counter()
        if breakdown and i == 0:  # inside the first call's time: the call would import it
            import numba
            imported = time.perf_counter() - t0
        call(cum, lengths)
        times += [time.perf_counter() - t0, time.process_time() - c0]
    print(imported, *times)
    """
)


def measure(size: str, op: str, cache: str, breakdown: bool) -> list[float]:
    """``[import numba, first, first CPU, second, second CPU]`` seconds in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(NUMBA_CACHE_DIR=cache, SEMICRF_CPU_PATH="numba")
    args = [sys.executable, "-c", CHILD, size, op, "1" if breakdown else "0"]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


def table(
    size: str, repeats: int, ops: tuple[str, ...] = OPS, breakdown: bool = False
) -> list[str]:
    """Markdown rows: per operation, a cold-cache process, then ``repeats`` warm-cache ones."""
    lines = [
        f"First compiled call against the second, `{size}` float32, fresh processes "
        f"(warm: median and worst of {repeats}):",
        "",
        "| operation | numba cache | first call | second call | first - second | same, CPU time |"
        + (" import numba alone |" if breakdown else ""),
        "| --- | --- | ---: | ---: | ---: | ---: |" + (" ---: |" if breakdown else ""),
    ]
    with tempfile.TemporaryDirectory() as prime:  # writes the bytecode of every module used
        measure(size, ops[0], prime, False)
    for op in ops:
        with tempfile.TemporaryDirectory() as cache:
            _, first, first_cpu, second, second_cpu = measure(size, op, cache, False)
            extra = " |" if breakdown else ""
            lines.append(
                f"| {op} | cold | {first:.2f} s | {second * 1e3:.1f} ms | {first - second:.2f} s "
                f"| {first_cpu - second_cpu:.2f} s |{extra}"
            )
            runs = [measure(size, op, cache, breakdown) for _ in range(repeats)]
        diff = [r[1] - r[3] for r in runs]
        cpu = [r[2] - r[4] for r in runs]
        row = (
            f"| {op} | warm | {statistics.median(r[1] for r in runs) * 1e3:.0f} ms | "
            f"{statistics.median(r[3] for r in runs) * 1e3:.1f} ms | "
            f"{statistics.median(diff):.2f} s (worst {max(diff):.2f} s) | "
            f"{statistics.median(cpu):.2f} s |"
        )
        if breakdown:
            row += f" {statistics.median(r[0] for r in runs):.2f} s |"
        lines.append(row)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2x5000x16x8", help="B x T x K x C")
    parser.add_argument("--repeats", type=int, default=5, help="warm-cache processes per op")
    parser.add_argument("--ops", default=",".join(OPS))
    parser.add_argument("--breakdown", action="store_true", help="also time import numba alone")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = table(args.size, args.repeats, tuple(args.ops.split(",")), args.breakdown)
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
