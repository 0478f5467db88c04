"""Tune the split scan on a GPU: times of forward, forward+backward and Viterbi+path per config.

    python benchmarks/experiments/split_tune.py [--sizes all|long|short] [--configs a,b,...]

Each config is a set of overrides of ``triton_split.SPLIT_OVERRIDE`` / ``triton_forward.
CONFIG_OVERRIDE``; ``base`` is the unsplit scan (today's kernel). Prints one table row per
(size, config) and checks every split result against the unsplit one (float32) and, for
``--precision``, against float64.
"""

from __future__ import annotations

import argparse

import torch

from flash_semicrf.bench import make_inputs, time_cuda
from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi
from semicrf_kernels._shared import scan_launch as triton_forward
from semicrf_kernels._shared import split_launch as triton_split
from semicrf_kernels._shared.fast_launch import FAST_LAUNCH

SIZES = {
    "1x400000x3000x24": (1, 400000, 3000, 24),
    "1x1000000x1000x16": (1, 1000000, 1000, 16),
    "1x100000x200x24": (1, 100000, 200, 24),
    # the per-step floor: windows too short for phase 1 to cost anything
    "1x100000x2x24": (1, 100000, 2, 24),
    "1x100000x8x24": (1, 100000, 8, 24),
    "1x100000x32x24": (1, 100000, 32, 24),
    "8x10000x100x24": (8, 10000, 100, 24),
    "32x1000x32x24": (32, 1000, 32, 24),
    "64x512x16x8": (64, 512, 16, 8),
    "4x2048x64x128": (4, 2048, 64, 128),
}
CONFIGS = {
    "base": ({"enable": False}, {}),
    "s32": ({"enable": True, "superblock": 32}, {}),
    "s64": ({"enable": True, "superblock": 64}, {}),
    "s128": ({"enable": True, "superblock": 128}, {}),
    "s256": ({"enable": True, "superblock": 256}, {}),
    "s512": ({"enable": True, "superblock": 512}, {}),
    "s128w2": ({"enable": True, "superblock": 128}, {"num_warps": 2}),
    "s128w8": ({"enable": True, "superblock": 128}, {"num_warps": 8}),
    "s64w2": ({"enable": True, "superblock": 64}, {"num_warps": 2}),
    "basew2": ({"enable": False}, {"num_warps": 2}),
    "basew1": ({"enable": False}, {"num_warps": 1}),
    # the (C, C) matrix in registers beyond C = 64 (C = 128: 64 registers a thread at 8 warps)
    "basetr": ({"enable": False}, {"trans_regs": True}),
    "basetrw16": ({"enable": False}, {"trans_regs": True, "num_warps": 16}),
    "basep4w2": ({"enable": False}, {"num_warps": 2, "block_p": 4}),
    "basep16w2": ({"enable": False}, {"num_warps": 2, "block_p": 16}),
    # the overlapped schedule: far rows end one super-block back, the far kernel of the next
    # super-block runs on a second stream while this one is scanned (sN: the default schedule)
    "s32o": ({"enable": True, "superblock": 32, "overlap": True}, {}),
    "s64o": ({"enable": True, "superblock": 64, "overlap": True}, {}),
    "s128o": ({"enable": True, "superblock": 128, "overlap": True}, {}),
    "s256o": ({"enable": True, "superblock": 256, "overlap": True}, {}),
    "s16": ({"enable": True, "superblock": 16}, {}),
    "s32w4": ({"enable": True, "superblock": 32}, {"num_warps": 4}),
    "s64w4": ({"enable": True, "superblock": 64}, {"num_warps": 4}),
    "s128w4": ({"enable": True, "superblock": 128}, {"num_warps": 4}),
    "s256w4": ({"enable": True, "superblock": 256}, {"num_warps": 4}),
    "s128p4": ({"enable": True, "superblock": 128}, {"block_p": 4}),
    "s128p16": ({"enable": True, "superblock": 128}, {"block_p": 16}),
    "auto": ({}, {}),
}
# sNm: the far partials merged by the serial kernel, as before the reduce kernel (the "before"
# column of issue 12's comparison)
# rows rebased on a new shift once per temporal block instead of once per position (one
# reduction a step fewer; ScanConfig.renorm_block, off by default)
CONFIGS["baserb"] = ({"enable": False}, {"renorm_block": True})
CONFIGS["s64rb"] = ({"enable": True, "superblock": 64}, {"renorm_block": True})
# the unsplit forward and backward scans (gradients ahead) as one launch of 2 B programs instead
# of two launches on two streams (ScanConfig.fused_pair, on by default since 21f6d12, so
# "base" includes it too from then on); fwd+bwd only differs
CONFIGS["basefp"] = ({"enable": False}, {"fused_pair": True})
# the unsplit scans with the duration window in a register ring instead of read back once per
# temporal block (ScanConfig.ring, on for the paired scans by default since 21f6d12; "ring" keeps scan_config's warps and so the
# blocked body where the ring does not fit them, e.g. K = 100 on 4 warps; at C = 128 a 64-row
# ring fits only 16), and on 8 warps with the fused pair of scans
# the defaults before 2026-12-07's rules (unsplit at K < 128, no ring, two launches for the
# paired scans): the "before" column against "auto"
CONFIGS["before"] = ({"enable": False}, {"ring": False, "fused_pair": False})
CONFIGS["ring"] = ({"enable": False}, {"ring": True})
CONFIGS["ringw4"] = ({"enable": False}, {"ring": True, "num_warps": 4})
CONFIGS["ringw8"] = ({"enable": False}, {"ring": True, "num_warps": 8})
CONFIGS["ringw16"] = ({"enable": False}, {"ring": True, "num_warps": 16})
CONFIGS["ringw8fp"] = ({"enable": False}, {"ring": True, "num_warps": 8, "fused_pair": True})
# the serial kernel on fewer warps once the split leaves it only the near rows (its per-step
# reductions then need fewer or no shared-memory round trips); the far kernel keeps 4
CONFIGS.update(
    {
        f"s{S}w{w}": ({"enable": True, "superblock": S}, {"num_warps": w})
        for S in (32, 64, 128)
        for w in (1, 2)
    }
)
CONFIGS.update(
    {f"s{S}m": ({"enable": True, "superblock": S, "reduce": False}, {}) for S in (32, 64, 128, 256)}
)


# the log semiring's reduction over the previous label in exponential space (ScanConfig.exp_trans,
# off by default; unsplit scans with the transition in registers): with today's rules, and at
# C = 128 with the transition forced into registers on 8 warps (without it exp_trans does not
# apply there)
CONFIGS["expt"] = ({}, {"exp_trans": True})
CONFIGS["exptrw8"] = ({"enable": False}, {"exp_trans": True, "trans_regs": True, "num_warps": 8})
CONFIGS["basetrw8"] = ({"enable": False}, {"trans_regs": True, "num_warps": 8})
# the register ring at C = 128 (64 x 128 slots x labels, the transition in registers), past the
# ring's budget rule (ScanConfig.ring_elems): an experiment kernel like it was 1.8x the blocked
# body on 4 warps; the library's ring spills there
_RING128 = {"ring": True, "trans_regs": True, "ring_elems": 8192}
CONFIGS["ringc128w4"] = ({"enable": False}, {**_RING128, "num_warps": 4})
CONFIGS["ringc128w8"] = ({"enable": False}, {**_RING128, "num_warps": 8})
CONFIGS["ringc128w4exp"] = ({"enable": False}, {**_RING128, "num_warps": 4, "exp_trans": True})


# a name ending in "nf" (e.g. "autonf", "s32nf"): the same config with every launch through
# Triton's normal path instead of the launch sites' direct one (_shared/fast_launch.py)
CONFIGS.update({f"{name}nf": cfg for name, cfg in list(CONFIGS.items())})


def apply(cfg):
    so, co = CONFIGS[cfg]
    FAST_LAUNCH["enable"] = not cfg.endswith("nf")
    triton_split.SPLIT_OVERRIDE.clear()
    triton_split.SPLIT_OVERRIDE.update(so)
    triton_forward.CONFIG_OVERRIDE.clear()
    triton_forward.CONFIG_OVERRIDE.update(co)


def ops(cum, trans, db, lengths, K):
    def fwd():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K, validate=False)

    c2, t2, d2 = (x.detach().requires_grad_() for x in (cum, trans, db))

    def fwdbwd():
        z = semi_crf_streaming_forward(c2, t2, d2, lengths, K, validate=False)
        return torch.autograd.grad(z.sum(), (c2, t2, d2))

    def vit():
        return semi_crf_streaming_viterbi(cum, trans, db, lengths, K, validate=False)

    return fwd, fwdbwd, vit


def graphed(fn):
    """``fn`` captured once in a CUDA graph (after warm-up calls on a side stream): a call
    replays the graph and returns the captured outputs."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()

    def replay():
        graph.replay()
        return out

    return replay


def once(fn):
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    out = fn()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e), out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="all")
    p.add_argument("--configs", default="base,s128,s256")
    p.add_argument("--ops", default="fwd,fwdbwd,vit")
    p.add_argument("--precision", action="store_true")
    p.add_argument(
        "--graph",
        action="store_true",
        help="time CUDA-graph replays of each call (no host cost: what a captured step costs)",
    )
    a = p.parse_args()
    names = list(SIZES) if a.sizes == "all" else a.sizes.split(",")
    cfgs = a.configs.split(",")
    want = a.ops.split(",")
    dev = torch.device("cuda")
    print(
        f"device {torch.cuda.get_device_name()}  SMs {torch.cuda.get_device_properties(0).multi_processor_count}"
    )
    print(
        "| size | config | fwd ms | fwd+bwd ms | viterbi+path ms | peak MiB | max rel diff vs base |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        B, T, K, C = SIZES[name]
        long = T >= 100000
        cum, trans, db, lengths = make_inputs(B, T, K, C, dev, scale=0.1)
        ref = ref_v = None
        for cfg in cfgs:
            apply(cfg)
            fwd, fwdbwd, vit = ops(cum, trans, db, lengths, K)
            if long:
                # compile on a short sequence first (same K, C; long enough to split)
                sc, st, sd, sl = make_inputs(1, min(T, 4 * K + 600), K, C, dev, scale=0.1)
                for f in ops(sc, st, sd, sl, K):
                    f()
            res = {}
            torch.cuda.reset_peak_memory_stats()
            for opname, f in (("fwd", fwd), ("fwdbwd", fwdbwd), ("vit", vit)):
                if opname not in want:
                    res[opname] = (float("nan"), None)
                    continue
                if a.graph:
                    f = graphed(f)
                if long:
                    ms, out = once(f)
                else:
                    ms = time_cuda(f)
                    out = f()
                res[opname] = (ms, out)
            peak = torch.cuda.max_memory_allocated() / 2**20
            diff = float("nan")
            if "fwdbwd" in want:
                z_g = res["fwdbwd"][1]
                if ref is None:
                    ref = [g.double().clone() for g in z_g]
                else:
                    diff = max(
                        ((g.double() - r).abs().max() / r.abs().max().clamp(min=1e-30)).item()
                        for g, r in zip(z_g, ref)
                    )
            same_path = ""
            if "vit" in want:
                v = res["vit"][1]
                if ref_v is None:
                    ref_v = v
                else:
                    ev = ((v.scores.double() - ref_v.scores.double()).abs().max()).item()
                    eq = all(
                        torch.equal(getattr(v, f), getattr(ref_v, f))
                        for f in ("num_segments", "starts", "durations", "labels")
                    )
                    same_path = f" viterbi score diff {ev:.1e}, paths {'equal' if eq else 'DIFFER'}"
            print(
                f"| {name} | {cfg} | {res['fwd'][0]:.3f} | {res['fwdbwd'][0]:.3f} | {res['vit'][0]:.3f} | {peak:.0f} | {diff:.1e}{same_path} |",
                flush=True,
            )
            del res
        if a.precision:
            apply(cfgs[-1])
            c64, t64, d64 = (x.double().detach().requires_grad_() for x in (cum, trans, db))
            z64 = semi_crf_streaming_forward(c64, t64, d64, lengths, K, validate=False)
            g64 = torch.autograd.grad(z64.sum(), (c64, t64, d64))
            c32, t32, d32 = (x.detach().requires_grad_() for x in (cum, trans, db))
            z32 = semi_crf_streaming_forward(c32, t32, d32, lengths, K, validate=False)
            g32 = torch.autograd.grad(z32.sum(), (c32, t32, d32))
            ez = ((z32.double() - z64).abs() / z64.abs()).max().item()
            eg = [((a.double() - b).abs().max() / b.abs().max()).item() for a, b in zip(g32, g64)]
            v32 = semi_crf_streaming_viterbi(cum, trans, db, lengths, K, validate=False)
            v64 = semi_crf_streaming_viterbi(
                cum.double(), trans.double(), db.double(), lengths, K, validate=False
            )
            ev = ((v32.scores.double() - v64.scores).abs() / v64.scores.abs()).max().item()
            print(
                f"precision {name} [{cfgs[-1]}] float32 vs float64: logZ {ez:.1e}  grads (cum, trans, db) {', '.join(f'{e:.1e}' for e in eg)}  viterbi {ev:.1e}",
                flush=True,
            )
        del cum, trans, db, lengths
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
