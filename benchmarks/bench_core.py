"""Time and peak memory of each `SemiMarkov` algorithm against the sequence length N.

Measures, for each algorithm and N, the log partition function of a random edge tensor
`(batch, N-1, K, C, C)`:

* forward time (no autograd) and forward + backward time, median of `--repeats` runs;
* peak memory above what was allocated before the call (the edge tensor itself is not counted):
  on CUDA `torch.cuda.max_memory_allocated`; on the CPU the running "Total Allocated" of the
  PyTorch profiler's memory events (every CPU tensor allocation and free).

Run: `uv run python benchmarks/bench_core.py` (CPU, under a minute), or
`--device cuda`; `--out FILE.md` also writes the markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from semicrf_core import SemiMarkov

ALGORITHMS: dict[str, dict[str, object]] = {
    "linear scan (ring buffer)": {"use_linear_scan": True},
    "vectorized scan": {"use_vectorized": True},
    "binary tree": {"use_linear_scan": False},
    "sharded-checkpoint tree": {"checkpoint_shards": 2**20},
    "block-triangular tree": {"use_block_triangular": True},
    "banded tree": {"use_banded": True},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def peak_bytes(fn: Callable[[], None], device: torch.device) -> int:
    """Peak bytes allocated by `fn` above the level allocated when it starts."""
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - base
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    finally:
        os.remove(path)
    mem = sorted(
        (e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0),
        key=lambda e: e["ts"],
    )
    if not mem:
        return 0
    base = mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"]
    return max(e["args"]["Total Allocated"] for e in mem) - base


def measure(
    name: str, kwargs: dict[str, object], edge: torch.Tensor, repeats: int
) -> dict[str, float]:
    """Forward / forward+backward time and peak memory of one algorithm on `edge`."""
    device = edge.device
    model = SemiMarkov()
    leaf = edge.detach().requires_grad_(True)

    def forward() -> None:
        with torch.no_grad():
            model.sum(edge, **kwargs)

    def train() -> None:
        model.sum(leaf, **kwargs).sum().backward()
        leaf.grad = None

    return {
        "fwd_ms": median_ms(forward, device, repeats),
        "train_ms": median_ms(train, device, repeats),
        "fwd_kib": peak_bytes(forward, device) / 2**10,
        "train_kib": peak_bytes(train, device) / 2**10,
    }


def run(args: argparse.Namespace) -> str:
    """Run every algorithm at every size and return the markdown report."""
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    lines = [
        f"# semicrf-core algorithms on {device.type.upper()}",
        "",
        f"`benchmarks/bench_core.py`: log partition of a random edge tensor, batch={args.batch}, "
        f"K={args.K} (durations 1..{args.K - 1}), C={args.C}, float32; median of "
        f"{args.repeats} runs after a warm-up. Peak memory is above what was allocated before "
        "the call (the edge tensor itself, `batch*(N-1)*K*C*C*4` bytes, is not counted; "
        "fwd+bwd includes its gradient). Timings come from a shared machine and are noisy.",
        "",
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
        + ".",
        "",
        "| algorithm | N | forward ms | fwd+bwd ms | forward peak KiB | fwd+bwd peak KiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, kwargs in ALGORITHMS.items():
        for n in args.sizes:
            edge = torch.randn((args.batch, n - 1, args.K, args.C, args.C), generator=gen)
            r = measure(name, kwargs, edge.to(device), args.repeats)
            lines.append(
                f"| {name} | {n} | {r['fwd_ms']:.1f} | {r['train_ms']:.1f} | "
                f"{r['fwd_kib']:.1f} | {r['train_kib']:.1f} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512], help="values of N")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--K", type=int, default=6, help="edge duration size (durations 1..K-1)")
    parser.add_argument("--C", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    args = parser.parse_args()
    report = run(args)
    print()
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
