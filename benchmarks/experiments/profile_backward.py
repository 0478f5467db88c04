"""Where the time of the streaming forward + backward goes (GPU): a kernel-level profile.

python benchmarks/experiments/profile_backward.py [--shape 32,1000,32,24]
"""

from __future__ import annotations

import argparse

import torch

from flash_semicrf.bench import make_inputs, time_cuda
from semicrf_kernels import semi_crf_streaming_forward


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="32,1000,32,24", help="B,T,K,C")
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


if __name__ == "__main__":
    main()
