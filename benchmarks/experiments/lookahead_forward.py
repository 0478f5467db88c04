"""Experiment: take the duration window off the per-step critical path of the forward scan.

Position ``t`` reduces the window rows ``t - d`` for ``d = 1..K``. All rows but the newest
(``d >= 2``) are known one step earlier, so their log-sum-exp (``part[t]``) can be computed
during step ``t - 1``, beside that step's own chain. The chain of dependent work per position is
then a two-term log-sum-exp (``part[t]`` and the newest row), the reduction over the previous
label and the normalising maximum (which runs beside the transition reduction: the transition
acts on the unnormalised row, and the result is shifted afterwards).

Compared with ``register_window_forward.py`` (the same window-in-registers kernel, with every
reduction on the chain) and with the library's scan, float32 against float64, on the GPU:

    python benchmarks/experiments/lookahead_forward.py
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _fwd_lookahead_kernel(
    cum_ptr, trans_ptr, db_ptr, len_ptr, out_ptr, alpha_ptr, win_ptr, T, K, C,
    BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    NEG: tl.constexpr = float("-inf")
    b = tl.program_id(0).to(tl.int64)
    L = tl.load(len_ptr + b)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, BLOCK_K)
    cmask = offs_c < C
    cum_b = cum_ptr + b * (T + 1) * C
    # MT[c_out, c_in]: the reduction over c_in along the fastest axis
    MT = tl.load(
        trans_ptr + offs_c[None, :] * C + offs_c[:, None],
        mask=cmask[:, None] & cmask[None, :],
        other=NEG,
    )
    m0 = tl.max(MT, axis=1)
    m0s = tl.where(m0 == NEG, 0.0, m0)
    w_new = m0s + tl.log(tl.sum(tl.exp(MT - m0s[:, None]), axis=1))  # w[0], shift 0
    tl.store(win_ptr + b * (T + 1) * C + offs_c, w_new, mask=cmask)
    ring = tl.full([BLOCK_K, BLOCK_C], NEG, tl.float32)
    ring = tl.where(offs_k[:, None] == 0, w_new[None, :], ring)
    R = L.to(tl.float64) * 0.0
    part = tl.full([BLOCK_C], NEG, tl.float32)  # rows d >= 2 of position 1: none
    db0 = tl.load(db_ptr + offs_c, mask=cmask, other=NEG)
    c_prev = tl.load(cum_b + offs_c, mask=cmask, other=0.0)
    for t in range(1, L + 1):
        # ---- off the chain: part of position t + 1 (rows t - 1 .. t + 1 - K, in the ring) ---
        dj = 2 + ((t - 1 - offs_k + BLOCK_K) % BLOCK_K)  # slot j holds row t + 1 - dj
        sj = t + 1 - dj
        valid = (dj <= K) & (sj >= 0)
        m2 = valid[:, None] & cmask[None, :]
        cw = tl.load(cum_b + sj[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
        dbr = tl.load(db_ptr + (dj[:, None] - 1) * C + offs_c[None, :], mask=m2, other=NEG)
        c_next = tl.load(
            cum_b + (t + 1) * C + offs_c, mask=cmask & ((offs_c * 0 + t + 1) <= L), other=0.0
        )
        x = tl.where(m2, ring + (c_next[None, :] - cw) + dbr, NEG)
        pm = tl.max(x, axis=0)
        pms = tl.where(pm == NEG, 0.0, pm)
        part_next = pms + tl.log(tl.sum(tl.exp(x - pms[None, :]), axis=0))
        # ---- the chain: position t from part[t] and the newest row t - 1 ---------------------
        c_t = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
        y1 = w_new + (c_t - c_prev) + db0
        hi = tl.maximum(part, y1)
        his = tl.where(hi == NEG, 0.0, hi)
        val = his + tl.log(tl.exp(part - his) + tl.exp(y1 - his))
        val = tl.where(cmask, val, NEG)
        xs = val[None, :] + MT
        ms = tl.max(xs, axis=1)
        mss = tl.where(ms == NEG, 0.0, ms)
        sec = mss + tl.log(tl.sum(tl.exp(xs - mss[:, None]), axis=1))
        mx = tl.max(val, axis=0)  # beside the transition reduction
        mxs = tl.where(mx == NEG, 0.0, mx)
        w_new = sec - mxs
        R += mxs.to(tl.float64)
        tl.store(alpha_ptr + b * (T + 1) * C + t * C + offs_c, val - mxs, mask=cmask)
        tl.store(win_ptr + b * (T + 1) * C + t * C + offs_c, w_new, mask=cmask)
        ring = tl.where(offs_k[:, None] == (t % BLOCK_K), w_new[None, :], ring - mxs)
        part = part_next - mxs
        c_prev = c_t
        if t == L:
            fa = tl.where(cmask, val - mxs, NEG)
            fm = tl.max(fa, axis=0)
            fms = tl.where(fm == NEG, 0.0, fm)
            res = fms + tl.log(tl.sum(tl.exp(fa - fms), axis=0))
            tl.store(out_ptr + b, R + res.to(tl.float64))


@triton.jit
def _fwd_lookahead_t_kernel(
    cum_ptr, trans_ptr, dbrot_ptr, db_ptr, len_ptr, out_ptr, alpha_ptr, win_ptr, T, K, C,
    BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """The lookahead kernel with the ring held transposed, ``(C, K)``, and no 2-D load on
    cumulative rows: the ring keeps each slot's cumulative row, and the duration bias comes
    from a table rotated on the host, ``dbrot[m, c, j]`` (the bias of slot ``j`` when ``t - 1
    = m mod BLOCK_K``), contiguous along the slots so that lanes run along the ring's slots and
    its reduction stays inside a warp."""
    NEG: tl.constexpr = float("-inf")
    b = tl.program_id(0).to(tl.int64)
    L = tl.load(len_ptr + b)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, BLOCK_K)
    cmask = offs_c < C
    cum_b = cum_ptr + b * (T + 1) * C
    MT = tl.load(
        trans_ptr + offs_c[None, :] * C + offs_c[:, None],
        mask=cmask[:, None] & cmask[None, :],
        other=NEG,
    )
    m0 = tl.max(MT, axis=1)
    m0s = tl.where(m0 == NEG, 0.0, m0)
    w_new = m0s + tl.log(tl.sum(tl.exp(MT - m0s[:, None]), axis=1))
    tl.store(win_ptr + b * (T + 1) * C + offs_c, w_new, mask=cmask)
    c_prev = tl.load(cum_b + offs_c, mask=cmask, other=0.0)
    ring = tl.where(offs_k[None, :] == 0, w_new[:, None], NEG)  # (C, K)
    ring_c = tl.where(offs_k[None, :] == 0, c_prev[:, None], 0.0)
    R = L.to(tl.float64) * 0.0
    part = tl.full([BLOCK_C], NEG, tl.float32)
    db0 = tl.load(db_ptr + offs_c, mask=cmask, other=NEG)
    for t in range(1, L + 1):
        m = (t - 1) % BLOCK_K
        dbr = tl.load(
            dbrot_ptr + m * BLOCK_C * BLOCK_K + offs_c[:, None] * BLOCK_K + offs_k[None, :]
        )
        c_next = tl.load(
            cum_b + (t + 1) * C + offs_c, mask=cmask & ((offs_c * 0 + t + 1) <= L), other=0.0
        )
        x = ring + (c_next[:, None] - ring_c) + dbr
        pm = tl.max(x, axis=1)
        pms = tl.where(pm == NEG, 0.0, pm)
        part_next = pms + tl.log(tl.sum(tl.exp(x - pms[:, None]), axis=1))
        c_t = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
        y1 = w_new + (c_t - c_prev) + db0
        hi = tl.maximum(part, y1)
        his = tl.where(hi == NEG, 0.0, hi)
        val = his + tl.log(tl.exp(part - his) + tl.exp(y1 - his))
        val = tl.where(cmask, val, NEG)
        xs = val[None, :] + MT
        ms = tl.max(xs, axis=1)
        mss = tl.where(ms == NEG, 0.0, ms)
        sec = mss + tl.log(tl.sum(tl.exp(xs - mss[:, None]), axis=1))
        mx = tl.max(val, axis=0)
        mxs = tl.where(mx == NEG, 0.0, mx)
        w_new = sec - mxs
        R += mxs.to(tl.float64)
        tl.store(alpha_ptr + b * (T + 1) * C + t * C + offs_c, val - mxs, mask=cmask)
        tl.store(win_ptr + b * (T + 1) * C + t * C + offs_c, w_new, mask=cmask)
        into = offs_k[None, :] == (t % BLOCK_K)
        ring = tl.where(into, w_new[:, None], ring - mxs)
        ring_c = tl.where(into, c_t[:, None], ring_c)
        part = part_next - mxs
        c_prev = c_t
        if t == L:
            fa = tl.where(cmask, val - mxs, NEG)
            fm = tl.max(fa, axis=0)
            fms = tl.where(fm == NEG, 0.0, fm)
            res = fms + tl.log(tl.sum(tl.exp(fa - fms), axis=0))
            tl.store(out_ptr + b, R + res.to(tl.float64))


@triton.jit
def _fwd_ring_t_kernel(
    cum_ptr, trans_ptr, dbt_ptr, len_ptr, out_ptr, alpha_ptr, win_ptr, T, K, C,
    BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Every reduction on the chain (as ``register_window_forward.py``), but the ring held
    transposed, ``(C, K)``, with each slot's cumulative row kept in the ring and the duration
    bias gathered from its transpose ``dbt (C, K)`` by a slot index with no provable
    contiguity... (see fwd_ring_t)."""
    NEG: tl.constexpr = float("-inf")
    b = tl.program_id(0).to(tl.int64)
    L = tl.load(len_ptr + b)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, BLOCK_K)
    cmask = offs_c < C
    cum_b = cum_ptr + b * (T + 1) * C
    # trans_ptr holds the transpose (host side), so that MT[c_out, c_in] is contiguous along
    # c_in and its load, too, puts lanes along the reduced axis
    MT = tl.load(
        trans_ptr + offs_c[:, None] * C + offs_c[None, :],
        mask=cmask[:, None] & cmask[None, :],
        other=NEG,
    )
    m0 = tl.max(MT, axis=1)
    m0s = tl.where(m0 == NEG, 0.0, m0)
    w0 = m0s + tl.log(tl.sum(tl.exp(MT - m0s[:, None]), axis=1))
    tl.store(win_ptr + b * (T + 1) * C + offs_c, w0, mask=cmask)
    c0 = tl.load(cum_b + offs_c, mask=cmask, other=0.0)
    ring = tl.where(offs_k[None, :] == 0, w0[:, None], NEG)
    ring_c = tl.where(offs_k[None, :] == 0, c0[:, None], 0.0)
    R = L.to(tl.float64) * 0.0
    for t in range(1, L + 1):
        # slot j holds row t - dj, dj = 1 + ((t - 1 - j) mod BLOCK_K); its bias comes from
        # the table rotated for m = (t - 1) mod BLOCK_K (-inf past K and for padded labels);
        # slots never written hold -inf
        m = (t - 1) % BLOCK_K
        dbr = tl.load(dbt_ptr + m * BLOCK_C * BLOCK_K + offs_c[:, None] * BLOCK_K + offs_k[None, :])
        ct = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
        x = ring + (ct[:, None] - ring_c) + dbr
        mx = tl.max(x, axis=1)
        mxs = tl.where(mx == NEG, 0.0, mx)
        alpha = mxs + tl.log(tl.sum(tl.exp(x - mxs[:, None]), axis=1))
        a_max = tl.max(tl.where(cmask, alpha, NEG), axis=0)
        a_max = tl.where(a_max == NEG, 0.0, a_max)
        alpha = tl.where(cmask, alpha - a_max, NEG)
        R += a_max.to(tl.float64)
        tl.store(alpha_ptr + b * (T + 1) * C + t * C + offs_c, alpha, mask=cmask)
        xs = alpha[None, :] + MT
        ms = tl.max(xs, axis=1)
        mss = tl.where(ms == NEG, 0.0, ms)
        wt = mss + tl.log(tl.sum(tl.exp(xs - mss[:, None]), axis=1))
        tl.store(win_ptr + b * (T + 1) * C + t * C + offs_c, wt, mask=cmask)
        into = offs_k[None, :] == (t % BLOCK_K)
        ring = tl.where(into, wt[:, None], ring - a_max)
        ring_c = tl.where(into, ct[:, None], ring_c)
        if t == L:
            fm = tl.max(alpha, axis=0)
            fms = tl.where(fm == NEG, 0.0, fm)
            res = fms + tl.log(tl.sum(tl.exp(alpha - fms), axis=0))
            tl.store(out_ptr + b, R + res.to(tl.float64))


@triton.jit
def _fwd_exptrans_kernel(
    cum_ptr, trans_ptr, db_ptr, len_ptr, out_ptr, alpha_ptr, win_ptr, T, K, C,
    BLOCK_C: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """``register_window_forward.py``'s kernel with the reduction over the previous label in
    exponential space: ``E[c_in, c] = exp(M[c_in, c] - colmax[c])`` once, then per step
    ``w[c] = colmax[c] + log(sum_{c_in} exp(alpha[c_in]) E[c_in, c])`` (alpha is normalised, its
    maximum 0): C exponentials and C^2 multiply-adds a step instead of C^2 exponentials and a
    maximum pass. Exact to float32 rounding while each sum is at least 2^-60; a column whose sum
    falls below (its mass then underflows) is flagged, and ``out`` gets NaN where that happened
    (the library would redo the scan in log space)."""
    NEG: tl.constexpr = float("-inf")
    b = tl.program_id(0).to(tl.int64)
    L = tl.load(len_ptr + b)
    offs_c = tl.arange(0, BLOCK_C)
    offs_k = tl.arange(0, BLOCK_K)
    cmask = offs_c < C
    cum_b = cum_ptr + b * (T + 1) * C
    M = tl.load(
        trans_ptr + offs_c[:, None] * C + offs_c[None, :],
        mask=cmask[:, None] & cmask[None, :],
        other=NEG,
    )
    colmax = tl.max(M, axis=0)
    cms = tl.where(colmax == NEG, 0.0, colmax)
    E = tl.exp(M - cms[None, :])
    live_col = colmax > NEG
    w0 = tl.where(live_col, cms + tl.log(tl.sum(E, axis=0)), NEG)
    ring = tl.full([BLOCK_K, BLOCK_C], NEG, tl.float32)
    ring = tl.where(offs_k[:, None] == 0, w0[None, :], ring)
    R = L.to(tl.float64) * 0.0
    bad = offs_c * 0
    tl.store(win_ptr + b * (T + 1) * C + offs_c, w0, mask=cmask)
    for t in range(1, L + 1):
        dj = 1 + ((t - 1 - offs_k + BLOCK_K) % BLOCK_K)
        sj = t - dj
        valid = (dj <= K) & (sj >= 0)
        m2 = valid[:, None] & cmask[None, :]
        cw = tl.load(cum_b + sj[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
        dbr = tl.load(db_ptr + (dj[:, None] - 1) * C + offs_c[None, :], mask=m2, other=NEG)
        ct = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
        x = tl.where(m2, ring + (ct[None, :] - cw) + dbr, NEG)
        mx = tl.max(x, axis=0)
        mxs = tl.where(mx == NEG, 0.0, mx)
        alpha = mxs + tl.log(tl.sum(tl.exp(x - mxs[None, :]), axis=0))
        a_max = tl.max(tl.where(cmask, alpha, NEG), axis=0)
        a_max = tl.where(a_max == NEG, 0.0, a_max)
        alpha = tl.where(cmask, alpha - a_max, NEG)
        R += a_max.to(tl.float64)
        ring = ring - a_max
        tl.store(alpha_ptr + b * (T + 1) * C + t * C + offs_c, alpha, mask=cmask)
        a = tl.exp(alpha)
        s = tl.sum(a[:, None] * E, axis=0)
        bad = bad | ((s < 8.673617379884035e-19) & live_col).to(tl.int32)
        wt = tl.where(live_col, cms + tl.log(s), NEG)
        tl.store(win_ptr + b * (T + 1) * C + t * C + offs_c, wt, mask=cmask)
        ring = tl.where(offs_k[:, None] == (t % BLOCK_K), wt[None, :], ring)
        if t == L:
            fm = tl.max(alpha, axis=0)
            fms = tl.where(fm == NEG, 0.0, fm)
            res = fms + tl.log(tl.sum(tl.exp(alpha - fms), axis=0))
            nan = tl.where(tl.max(bad, axis=0) > 0, float("nan"), 0.0)
            tl.store(out_ptr + b, R + res.to(tl.float64) + nan)


def rotated_bias(db, K, BLOCK_C, BLOCK_K, first=2):
    """``dbrot[m, c, j]``: the duration bias slot ``j`` sees when ``t - 1 = m (mod BLOCK_K)``
    (duration ``first + ((m - j) mod BLOCK_K)``), ``-inf`` past ``K``."""
    m = torch.arange(BLOCK_K, device=db.device)[:, None]
    j = torch.arange(BLOCK_K, device=db.device)[None, :]
    d = first + (m - j) % BLOCK_K
    out = torch.full((BLOCK_K, BLOCK_C, BLOCK_K), float("-inf"), device=db.device)
    ok = d <= K
    C = db.shape[1]
    vals = db[(d.clamp(max=K) - 1)]  # (BK, BK, C)
    out[:, :C, :] = torch.where(ok[:, :, None], vals, float("-inf")).permute(0, 2, 1)
    return out.contiguous()


def _blocks(C: int, K: int) -> tuple[int, int]:
    """``(BLOCK_C, BLOCK_K)``: labels and window rows padded to powers of two."""
    return max(2, triton.next_power_of_2(C)), max(2, triton.next_power_of_2(K))


def _launch(kernel, cum, inputs, lengths, K, num_warps):
    """Run one experiment kernel on ``(cum, *inputs, lengths, out, alpha, win, T, K, C)``, one
    program per sequence: the ``(batch,)`` float64 log Z."""
    B, T1, C = cum.shape
    BLOCK_C, BLOCK_K = _blocks(C, K)
    out = torch.empty(B, device=cum.device, dtype=torch.float64)
    alpha = torch.empty(B, T1, C, device=cum.device)
    win = torch.empty(B, T1, C, device=cum.device)
    kernel[(B,)](
        cum, *inputs, lengths, out, alpha, win, T1 - 1, K, cum.shape[2],
        BLOCK_C=BLOCK_C, BLOCK_K=BLOCK_K, num_warps=num_warps,
    )  # fmt: skip
    return out


def fwd_lookahead(cum, trans, db, lengths, K, num_warps=4):
    return _launch(_fwd_lookahead_kernel, cum, (trans, db), lengths, K, num_warps)


def fwd_lookahead_t(cum, trans, db, lengths, K, num_warps=4, dbrot=None):
    if dbrot is None:
        dbrot = rotated_bias(db, K, *_blocks(cum.shape[2], K))
    return _launch(_fwd_lookahead_t_kernel, cum, (trans, dbrot, db), lengths, K, num_warps)


def fwd_ring_t(cum, trans, db, lengths, K, num_warps=4):
    dbrot = rotated_bias(db, K, *_blocks(cum.shape[2], K), first=1)
    return _launch(_fwd_ring_t_kernel, cum, (trans.t().contiguous(), dbrot), lengths, K, num_warps)


def fwd_exptrans(cum, trans, db, lengths, K, num_warps=4):
    return _launch(_fwd_exptrans_kernel, cum, (trans, db), lengths, K, num_warps)


def runner(name, nw, args, dbrot):
    """The call that times kernel ``name`` on ``args = (cum, trans, db, lengths, K)``."""
    from register_window_forward import fwd_reg

    from semicrf_kernels import semi_crf_streaming_forward

    if name == "library":
        return lambda: semi_crf_streaming_forward(*args, validate=False)
    if name == "register":
        return lambda: fwd_reg(*args, num_warps=nw)
    if name == "exptrans":
        return lambda: fwd_exptrans(*args, num_warps=nw)
    if name == "ring_t":
        return lambda: fwd_ring_t(*args, num_warps=nw)
    if name == "lookahead":
        return lambda: fwd_lookahead(*args, num_warps=nw)
    return lambda: fwd_lookahead_t(*args, nw, dbrot)


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from semicrf_kernels import semi_crf_streaming_forward

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfgs = (
        [(32, 1000, 32, 24), (8, 10000, 100, 24), (64, 512, 16, 8), (4, 2048, 64, 128)]
        if dev == "cuda"
        else [(3, 13, 4, 5), (2, 9, 12, 3), (2, 7, 1, 3), (2, 6, 2, 4)]
    )
    print("| B x T x K x C | kernel | warps | ms | rel. err vs float64 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for B, T, K, C in cfgs:
        g = torch.Generator(device=dev).manual_seed(0)
        s = torch.randn(B, T, C, device=dev, generator=g)
        s = s - s.mean(1, keepdim=True)
        cum = torch.zeros(B, T + 1, C, device=dev)
        cum[:, 1:] = s.cumsum(1)
        tr = torch.randn(C, C, device=dev, generator=g) * 0.5
        db = torch.randn(K, C, device=dev, generator=g) * 0.5
        L = torch.randint(max(1, T // 2), T + 1, (B,), device=dev, generator=g)
        L[0] = T
        ref = semi_crf_streaming_forward(
            cum.double(), tr.double(), db.double(), L, K, use_triton=False
        )
        line = f"{B}x{T}x{K}x{C}"
        runs = [("library", None)] if dev == "cuda" else []
        runs += [
            (n, nw)
            for n in ("register", "exptrans", "ring_t", "lookahead", "lookahead_t")
            for nw in (2, 4, 8)
        ]
        dbrot = rotated_bias(db, K, *_blocks(C, K))
        cpu = [
            ("lookahead", 1),
            ("register", 1),
            ("lookahead_t", 1),
            ("ring_t", 1),
            ("exptrans", 1),
        ]
        for name, nw in runs if dev == "cuda" else cpu:
            fn = runner(name, nw, (cum, tr, db, L, K), dbrot)
            with torch.no_grad():
                z = fn()
                err = ((z.double() - ref).abs() / ref.abs()).max().item()
                ms = triton.testing.do_bench(fn) if dev == "cuda" else float("nan")
            print(f"| {line} | {name} | {nw or '-'} | {ms:.3f} | {err:.1e} |", flush=True)
