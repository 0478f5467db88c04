"""One-shot timing of a genome-scale configuration (default 1 x 400,000 x 3,000 x 24).

``do_bench`` repeats a call many times; at this scale one call takes seconds, so this script
compiles with a short sequence first, then times one forward, one forward+backward and one
Viterbi score with CUDA events, and reports peak memory (allocated, inputs included).

    python benchmarks/bench_long.py [--B 1 --T 400000 --K 3000 --C 24] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import torch


def timed(fn) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--B", type=int, default=1)
    p.add_argument("--T", type=int, default=400_000)
    p.add_argument("--K", type=int, default=3000)
    p.add_argument("--C", type=int, default=24)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("bench_long.py needs a CUDA GPU", file=sys.stderr)
        return 1
    from semicrf_kernels import semi_crf_streaming_forward

    B, T, K, C = args.B, args.T, args.K, args.C
    gen = torch.Generator(device="cuda").manual_seed(0)
    scores = torch.randn(B, T, C, device="cuda", generator=gen)
    scores -= scores.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, device="cuda")
    cum[:, 1:] = scores.double().cumsum(1).float()
    del scores
    trans = (0.1 * torch.randn(C, C, device="cuda", generator=gen)).requires_grad_()
    db = (0.1 * torch.randn(K, C, device="cuda", generator=gen)).requires_grad_()
    lengths = torch.full((B,), T, device="cuda", dtype=torch.long)
    cum.requires_grad_()

    def fwd():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K, validate=False)

    def vit():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K, "max", validate=False)

    def fwd_bwd():
        z = semi_crf_streaming_forward(cum, trans, db, lengths, K, validate=False)
        z.sum().backward()
        return z

    # Compile every kernel on a short sequence first.
    short = torch.full((B,), min(T, 2 * K + 7), device="cuda", dtype=torch.long)
    z = semi_crf_streaming_forward(cum, trans, db, short, K, validate=False)
    z.sum().backward()
    with torch.no_grad():
        semi_crf_streaming_forward(cum, trans, db, short, K, "max", validate=False)
    cum.grad = trans.grad = db.grad = None
    torch.cuda.synchronize()
    inputs = sum(x.numel() * x.element_size() for x in (cum, trans, db)) / 2**20
    t_fwd = timed(fwd)
    t_vit = timed(vit)
    torch.cuda.reset_peak_memory_stats()
    t_fb = timed(fwd_bwd)
    peak = torch.cuda.max_memory_allocated() / 2**20
    card = torch.cuda.get_device_name()
    commit = os.environ.get("GIT_COMMIT", "unknown")
    table = (
        f"{card}, torch {torch.__version__}, commit {commit}, {datetime.date.today()}; one call each "
        f"(CUDA events), float32, zero-centred random emissions.\n\n"
        "| B x T x K x C | forward ms | Viterbi score ms | fwd+bwd ms | peak MiB (inputs + grads) | inputs MiB |\n"
        "|---|---|---|---|---|---|\n"
        f"| {B}x{T}x{K}x{C} | {t_fwd:.1f} | {t_vit:.1f} | {t_fb:.1f} | {peak:.1f} | {inputs:.1f} |\n"
    )
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        name = f"long_{card.replace(' ', '-')}_{datetime.date.today()}_{B}x{T}x{K}x{C}.md"
        (out / name).write_text("# Genome-scale streaming run\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
