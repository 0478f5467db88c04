"""Where the time of the streaming forward + backward goes (GPU): a kernel-level profile.

python benchmarks/experiments/profile_backward.py [--shape 32,1000,32,24] [--grad SETTINGS]

``--grad "db_stages=2;programs_per_sm=16"``: instead of the profile, time forward + backward
and each gradient kernel with every setting of ``logpartition.triton.GRAD_OVERRIDE`` (";"
between settings, "," between keys; the first row is the default).
"""

from __future__ import annotations

import argparse

import torch

from flash_semicrf.bench import make_inputs, time_cuda
from semicrf_kernels import semi_crf_streaming_forward
from semicrf_kernels.logpartition import triton as lp_triton


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="32,1000,32,24", help="B,T,K,C")
    p.add_argument("--grad", default="", help="GRAD_OVERRIDE settings to compare")
    args = p.parse_args()
    B, T, K, C = (int(x) for x in args.shape.split(","))
    cum, trans, db, lengths = make_inputs(B, T, K, C, "cuda", scale=0.5)
    leaves = [x.clone().requires_grad_() for x in (cum, trans, db)]

    def forward():
        return semi_crf_streaming_forward(*leaves, lengths, K, validate=False)

    def forward_backward():
        torch.autograd.grad(forward().sum(), leaves)

    def forward_no_grad():
        with torch.no_grad():
            semi_crf_streaming_forward(cum, trans, db, lengths, K, validate=False)

    print(f"B={B} T={T} K={K} C={C}")
    if args.grad:
        compare_grad(args.grad, forward_backward)
        return
    print("| what | ms |\n| --- | ---: |")
    print(f"| forward (no grad) | {time_cuda(forward_no_grad):.3f} |")
    print(f"| forward with both scans (grad ahead) | {time_cuda(forward):.3f} |")
    print(f"| forward + backward | {time_cuda(forward_backward):.3f} |")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            forward_backward()
        torch.cuda.synchronize()
    print(
        prof.key_averages().table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=40)
    )


def kernel_times(fn, reps: int = 5) -> dict[str, float]:
    """Mean CUDA time (us) per call of ``fn`` of each kernel whose name has ``_grad``."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    return {
        e.key: e.device_time_total / reps
        for e in prof.key_averages()
        if "_grad" in e.key or "_batch_sum" in e.key
    }


def compare_grad(settings: str, forward_backward) -> None:
    rows = [""] + [x.strip() for x in settings.split(";") if x.strip()]
    names: list[str] = []
    table = []
    for row in rows:
        lp_triton.GRAD_OVERRIDE.clear()
        for kv in filter(None, row.split(",")):
            k, v = kv.split("=")
            lp_triton.GRAD_OVERRIDE[k.strip()] = int(v)
        forward_backward()
        ms = time_cuda(forward_backward)
        kt = kernel_times(forward_backward)
        names += [k for k in kt if k not in names]
        table.append((row or "default", ms, kt))
    lp_triton.GRAD_OVERRIDE.clear()
    print("| setting | fwd+bwd ms | " + " | ".join(f"{n[:24]} us" for n in names) + " |")
    print("| --- | ---: |" + " ---: |" * len(names))
    for row, ms, kt in table:
        cells = " | ".join(f"{kt.get(n, float('nan')):.1f}" for n in names)
        print(f"| {row} | {ms:.3f} | {cells} |")


if __name__ == "__main__":
    main()
