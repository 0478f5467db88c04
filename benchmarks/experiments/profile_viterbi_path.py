"""Where the time of ``semi_crf_streaming_viterbi`` goes (GPU): each stage timed alone, and a
kernel-level profile of one call.

    python benchmarks/experiments/profile_viterbi_path.py [--shape 32,1000,32,24]
"""

from __future__ import annotations

import argparse

import torch

from flash_semicrf.bench import make_inputs, time_cuda
from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_kernels._shared.inputs import prepare_inputs
from semicrf_kernels.viterbi.path import score_path_segments
from semicrf_kernels.viterbi.triton import launch_streaming_triton_kernel_max_bp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="32,1000,32,24", help="B,T,K,C")
    args = p.parse_args()
    B, T, K, C = (int(x) for x in args.shape.split(","))
    cum, trans, db, lengths = make_inputs(B, T, K, C, "cuda", scale=0.5)
    path = semi_crf_streaming_viterbi(cum, trans, db, lengths, K, validate=False)
    stages = {
        "viterbi score (forward, max)": lambda: semi_crf_streaming_forward(
            cum, trans, db, lengths, K, "max", validate=False
        ),
        "prepare_inputs": lambda: prepare_inputs(cum, trans, db, lengths, K),
        "scan with backpointers (+ label gather)": lambda: launch_streaming_triton_kernel_max_bp(
            cum, trans, db, lengths, K
        ),
        "score_path_segments": lambda: score_path_segments(
            cum, trans, db, path.starts, path.durations, path.labels, path.num_segments
        ),
        "semi_crf_streaming_viterbi (all)": lambda: semi_crf_streaming_viterbi(
            cum, trans, db, lengths, K, validate=False
        ),
    }
    print(f"B={B} T={T} K={K} C={C}; segments per sequence: {path.num_segments.float().mean():.0f}")
    print("| stage | ms |\n| --- | ---: |")
    for name, fn in stages.items():
        print(f"| {name} | {time_cuda(fn):.3f} |")
    fn = stages["semi_crf_streaming_viterbi (all)"]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


if __name__ == "__main__":
    main()
