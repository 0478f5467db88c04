"""External baselines on the GPU, each in a process of its own: pytorch-struct and the earlier library.

    python benchmarks/baselines.py --lib struct|earlier --sizes 32x1000x32x24,... [--out FILE]

``struct``: ``torch_struct.SemiMarkov().logpartition`` (the ``torch-struct`` 0.5 wheel; with
``MaxSemiring`` for the Viterbi score) on an
edge tensor ``(B, T, K, C, C)`` built beforehand (its construction is not timed); sizes whose
edge tensor (or the algorithm's working memory) does not fit report ``OOM``.
``earlier``: the previous library's ``flash_semicrf.streaming.semi_crf_streaming_forward``
(its 0.2.0 wheel), log semiring (forward, forward+backward) and max semiring (Viterbi score; it
has no device traceback to time alongside).

Neither is importable beside our packages (the earlier library's import name is ours), so
``benchmarks/gpu_check.sh baselines`` installs each wheel into a folder of its own and runs this
script with only that folder on ``PYTHONPATH``. Inputs come from the same generator as
``flash_semicrf.bench.make_inputs`` (re-implemented here: our packages are not importable in
that process). Times: median of ``triton.testing.do_bench`` (ms); one timed call where a call
takes over 2 s (after an untimed first call, so that compiling is not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def make_inputs(B: int, T: int, K: int, C: int, device: str, seed: int = 0, scale: float = 0.1):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    scores = torch.randn(B, T, C, generator=gen)
    scores -= scores.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = scores.double().cumsum(dim=1)
    trans = scale * torch.randn(C, C, generator=gen)
    db = scale * torch.randn(K, C, generator=gen)
    lengths = torch.full((B,), T, dtype=torch.long)
    return cum.float().to(device), trans.to(device), db.to(device), lengths.to(device)


def timed_ms(fn) -> float:
    """Median ms of ``do_bench`` after one untimed call (which compiles the library's kernels);
    one timed call instead where a call takes over 2 s."""
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    once = 1e3 * (time.perf_counter() - start)
    if once > 2000:
        return once
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def struct_ops(B, T, K, C):
    from torch_struct import MaxSemiring, SemiMarkov

    cum, trans, db, lengths = make_inputs(B, T, K, C, "cuda")
    # edge[b, n, k, c, c_prev]: segment of label c and duration k starting at n (k = 0 unused,
    # so durations 1..K need K + 1 slots)
    n = torch.arange(T, device="cuda")
    edge = torch.full((B, T, K + 1, C, C), -1e9, device="cuda")
    for k in range(1, K + 1):
        end = (n + k).clamp(max=T)
        seg = cum[:, end] - cum[:, n]  # (B, T, C)
        edge[:, :, k] = (seg + db[k - 1])[..., :, None] + trans.t()[None, None]
    edge.requires_grad_()
    model = SemiMarkov()
    lens = lengths + 1

    def fwd():
        with torch.no_grad():
            return model.logpartition(edge, lengths=lens)[0]

    def fwd_bwd():
        v = model.logpartition(edge, lengths=lens)[0]
        return torch.autograd.grad(v.sum(), edge)

    def vit():
        with torch.no_grad():
            return SemiMarkov(MaxSemiring).logpartition(edge, lengths=lens)[0]

    return {"fwd": fwd, "fwd+bwd": fwd_bwd, "viterbi score": vit}


def earlier_ops(B, T, K, C):
    from flash_semicrf.streaming import semi_crf_streaming_forward

    cum, trans, db, lengths = make_inputs(B, T, K, C, "cuda")

    def fwd():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K)

    c2, t2, d2 = (x.clone().requires_grad_() for x in (cum, trans, db))

    def fwd_bwd():
        v = semi_crf_streaming_forward(c2, t2, d2, lengths, K)
        return torch.autograd.grad(v.sum(), (c2, t2, d2))

    def vit():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K, semiring="max")

    return {"fwd": fwd, "fwd+bwd": fwd_bwd, "viterbi score": vit}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lib", choices=["struct", "earlier"], required=True)
    p.add_argument("--sizes", required=True, help="comma-separated BxTxKxC")
    p.add_argument("--ops", default="fwd,fwd+bwd,viterbi score")
    p.add_argument("--out", default=None, help="append one JSON line per size")
    args = p.parse_args()
    make = struct_ops if args.lib == "struct" else earlier_ops
    for size in args.sizes.split(","):
        B, T, K, C = (int(v) for v in size.split("x"))
        row = {"lib": args.lib, "size": size, "device": torch.cuda.get_device_name()}
        try:
            ops = make(B, T, K, C)
            for name, fn in ops.items():
                if name in args.ops.split(","):
                    row[name] = round(timed_ms(fn), 3)
        except torch.cuda.OutOfMemoryError:
            row["error"] = "OOM"
        except Exception as exc:  # a baseline's own failure is a result to report
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        ops = None
        torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
