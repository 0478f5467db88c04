"""Issue 13's alternatives to the compiled (numba) CPU forward, measured against it.

    uv run python benchmarks/experiments/cpu_alternatives.py [--sizes 2x5000x16x8,...]

Forward log partition only, float64, ``(C, C)`` transitions, full-length sequences:

* ``blocked``: a blocked PyTorch step. For a block of ``P`` positions, every window row older
  than the block is reduced for all ``P`` outputs in one vectorised ``(batch, P, K, C)``
  log-sum-exp; the block's own positions then run one after another (a few small tensor
  operations each, as the per-position PyTorch path does for every position).
* ``blocked+compile``: the same, with the in-block loop of ``P`` positions under
  ``torch.compile`` (Inductor's CPU code generation: it needs a C++ compiler on the user's
  machine at run time, and compiles once per block shape).
* ``pytorch``: the library's per-position PyTorch path; ``numba``: the compiled path (default).

Every alternative is checked against the float64 reference before it is timed. Times: best of
``--repeats`` after a warm-up (the first call of ``blocked+compile``, its compile time, is
printed apart).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch

from semicrf_kernels import semi_crf_streaming_forward, set_cpu_path
from semicrf_kernels.testing.reference import reference_forward

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: its timing helper
from bench_cpu import best_seconds


def _lse(x: torch.Tensor, dim: int) -> torch.Tensor:
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (m + (x - m).exp().sum(dim=dim, keepdim=True).log()).squeeze(dim)


def _in_block(far, cum_blk, db_rev, trans):
    """The block's own positions in order: ``far (B, P, C)`` (rows before the block, reduced),
    ``cum_blk (B, P, C)``, ``db_rev (P, C)`` (``db_rev[P - 1 - x] = db[x]``: the bias of
    duration ``x + 1``, -inf past ``K``). Returns ``(alpha (B, P, C), wr (B, P, C))``, ``wr = W
    - cum``."""
    P = far.shape[1]
    alphas, wrs = [], []
    for i in range(P):
        terms = [far[:, i]]
        if i:
            own = torch.stack(wrs, 1) + db_rev[P - i :]  # rows j < i: duration i - j
            terms.append(_lse(own, 1))
        a = cum_blk[:, i] + _lse(torch.stack(terms, 1), 1)
        w = _lse(a[:, :, None] + trans, 1) - cum_blk[:, i]
        alphas.append(a)
        wrs.append(w)
    return torch.stack(alphas, 1), torch.stack(wrs, 1)


def blocked_forward(cum, trans, db, K, P=32, in_block=_in_block):
    """``(B,)`` log partition by the blocked step (full-length sequences)."""
    B, T1, C = cum.shape
    T = T1 - 1
    wr = torch.full((B, T1, C), float("-inf"), dtype=cum.dtype)
    wr[:, 0] = _lse(trans, 0) - cum[:, 0]  # start score at row 0
    alpha_last = None
    d = torch.arange(1, K + 1)
    for t0 in range(1, T + 1, P):
        n = min(P, T + 1 - t0)
        t = torch.arange(t0, t0 + P)
        s = t[:, None] - d[None, :]  # (P, K) window rows
        ok = (s >= 0) & (s < t0) & (t[:, None] <= T)
        rows = wr[:, s.clamp(0, T)]  # (B, P, K, C)
        x = torch.where(ok[None, :, :, None], rows + db[None, None], float("-inf"))
        far = _lse(x, 2)
        cum_blk = cum[:, t.clamp(max=T)]
        db_rev = torch.full((P, C), float("-inf"), dtype=cum.dtype)
        m = min(P - 1, K)
        db_rev[P - m :] = db[:m].flip(0)
        alpha_blk, wr_blk = in_block(far, cum_blk, db_rev, trans)
        wr[:, t0 : t0 + n] = wr_blk[:, :n]
        alpha_last = alpha_blk[:, n - 1]
    return _lse(alpha_last, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2x5000x16x8,8x500x32x24,1x2000x1000x24")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--block", type=int, default=32)
    p.add_argument("--no-compile", action="store_true")
    args = p.parse_args()
    compiled = None
    if not args.no_compile:
        compiled = torch.compile(_in_block, dynamic=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, P={args.block}")
    print(
        "| B x T x K x C | numba | pytorch (per position) | blocked | blocked+compile | compile |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes.split(","):
        B, T, K, C = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(0)
        scores = torch.randn(B, T, C, generator=g, dtype=torch.float64)
        cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), scores.cumsum(1)], 1)
        trans = 0.1 * torch.randn(C, C, generator=g, dtype=torch.float64)
        db = 0.1 * torch.randn(K, C, generator=g, dtype=torch.float64)
        lengths = torch.full((B,), T)
        want = reference_forward(cum, trans, db, lengths, K)
        got = blocked_forward(cum, trans, db, K, args.block)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-8)
        cells = {}
        for path in ("numba", "pytorch"):
            set_cpu_path(path)
            call = partial(semi_crf_streaming_forward, cum, trans, db, lengths, K, use_triton=False)
            cells[path] = best_seconds(
                call, 1 if path == "pytorch" and K * T > 1e6 else args.repeats
            )
        set_cpu_path(None)
        cells["blocked"] = best_seconds(partial(blocked_forward, cum, trans, db, K, args.block), 1)
        comp = first = float("nan")
        if compiled is not None:
            start = time.perf_counter()
            got = blocked_forward(cum, trans, db, K, args.block, compiled)
            first = time.perf_counter() - start
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-8)
            comp = best_seconds(
                partial(blocked_forward, cum, trans, db, K, args.block, compiled), 1
            )
        print(
            f"| {size} | {cells['numba'] * 1e3:.1f} ms | {cells['pytorch'] * 1e3:.0f} ms | "
            f"{cells['blocked'] * 1e3:.0f} ms | {comp * 1e3:.0f} ms | {first:.1f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
