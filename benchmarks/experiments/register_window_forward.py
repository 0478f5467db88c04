"""Experiment: forward scan with the K-window kept in registers (no global round trip)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _fwd_reg_kernel(
    cum_ptr,
    trans_ptr,
    db_ptr,
    len_ptr,
    out_ptr,
    alpha_ptr,
    win_ptr,
    shift_ptr,
    T,
    K,
    C,
    MAXSR: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
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
    # t = 0: alpha = 0, A[0] = logsumexp_c' M[c', c]
    m0 = tl.max(M, axis=0)
    m0 = tl.where(m0 == NEG, 0.0, m0)
    w0 = m0 + tl.log(tl.sum(tl.exp(M - m0[None, :]), axis=0))
    ring = tl.full([BLOCK_K, BLOCK_C], NEG, tl.float32)
    ring = tl.where(offs_k[:, None] == 0, w0[None, :], ring)
    R = L.to(tl.float64) * 0.0
    tl.store(win_ptr + b * (T + 1) * C + offs_c, w0, mask=cmask)
    for t in range(1, L + 1):
        # slot j holds start s_j = t-1 - ((t-1-j) mod BLOCK_K); duration d_j = t - s_j
        dj = 1 + ((t - 1 - offs_k + BLOCK_K) % BLOCK_K)
        sj = t - dj
        valid = (dj <= K) & (sj >= 0)
        m2 = valid[:, None] & cmask[None, :]
        cw = tl.load(cum_b + sj[:, None] * C + offs_c[None, :], mask=m2, other=0.0)
        dbr = tl.load(db_ptr + (dj[:, None] - 1) * C + offs_c[None, :], mask=m2, other=NEG)
        ct = tl.load(cum_b + t * C + offs_c, mask=cmask, other=0.0)
        x = ring + (ct[None, :] - cw) + dbr
        x = tl.where(m2, x, NEG)
        mx = tl.max(x, axis=0)
        if MAXSR:
            alpha = mx
        else:
            mxs = tl.where(mx == NEG, 0.0, mx)
            alpha = mxs + tl.log(tl.sum(tl.exp(x - mxs[None, :]), axis=0))
        a_max = tl.max(tl.where(cmask, alpha, NEG), axis=0)
        a_max = tl.where(a_max == NEG, 0.0, a_max)
        alpha = alpha - a_max
        R += a_max.to(tl.float64)
        ring = ring - a_max
        tl.store(alpha_ptr + b * (T + 1) * C + t * C + offs_c, alpha, mask=cmask)
        y = alpha[:, None] + M
        if MAXSR:
            ym = tl.max(y, axis=0)
            ym = tl.where(ym == NEG, NEG, ym)
            wt = ym
        else:
            ym = tl.max(y, axis=0)
            ym = tl.where(ym == NEG, 0.0, ym)
            wt = ym + tl.log(tl.sum(tl.exp(y - ym[None, :]), axis=0))
        tl.store(win_ptr + b * (T + 1) * C + t * C + offs_c, wt, mask=cmask)
        ring = tl.where(offs_k[:, None] == (t % BLOCK_K), wt[None, :], ring)
        if t == L:
            fm = tl.max(tl.where(cmask, alpha, NEG), axis=0)
            if MAXSR:
                res = fm
            else:
                fms = tl.where(fm == NEG, 0.0, fm)
                res = fms + tl.log(tl.sum(tl.where(cmask, tl.exp(alpha - fms), 0.0), axis=0))
            tl.store(out_ptr + b, R + res.to(tl.float64))


def fwd_reg(cum, trans, db, lengths, K, num_warps=1, maxsr=False):
    B, T1, C = cum.shape
    T = T1 - 1
    BLOCK_C = max(2, triton.next_power_of_2(C))
    BLOCK_K = max(2, triton.next_power_of_2(K))
    out = torch.empty(B, device=cum.device, dtype=torch.float64)
    alpha = torch.empty(B, T + 1, C, device=cum.device)
    win = torch.empty(B, T + 1, C, device=cum.device)
    _fwd_reg_kernel[(B,)](
        cum,
        trans,
        db,
        lengths,
        out,
        alpha,
        win,
        None,
        T,
        K,
        C,
        MAXSR=maxsr,
        BLOCK_C=BLOCK_C,
        BLOCK_K=BLOCK_K,
        num_warps=num_warps,
    )
    return out


if __name__ == "__main__":
    from semicrf_kernels import semi_crf_streaming_forward
    from semicrf_kernels.logpartition.triton_scan import launch_streaming_triton_kernel

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfgs = (
        [(32, 1000, 32, 24), (8, 10000, 100, 24), (64, 512, 16, 8), (4, 2048, 64, 128)]
        if dev == "cuda"
        else [(3, 13, 4, 5), (2, 9, 12, 3)]
    )
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
        ref = (
            semi_crf_streaming_forward(
                cum.double(), tr.double(), db.double(), L, K, use_triton=False
            )
            if T <= 2048
            else None
        )
        line = f"{B}x{T}x{K}x{C}"
        for nw in [1, 2, 4, 8] if dev == "cuda" else [1]:
            if K * C > 4096 and nw < 4:
                continue
            z = fwd_reg(cum, tr, db, L, K, num_warps=nw)
            err = ((z - ref).abs() / ref.abs()).max().item() if ref is not None else float("nan")
            ms = (
                triton.testing.do_bench(
                    lambda cum=cum, tr=tr, db=db, L=L, K=K, nw=nw: fwd_reg(
                        cum, tr, db, L, K, num_warps=nw
                    )
                )
                if dev == "cuda"
                else 0
            )
            line += f" | reg nw{nw} {ms:.3f}ms err {err:.1e}"
        if dev == "cuda":
            for nw in [2, 4, 8]:
                ms = triton.testing.do_bench(
                    lambda cum=cum, tr=tr, db=db, L=L, K=K, nw=nw: launch_streaming_triton_kernel(
                        cum, tr, db, L, K, num_warps=nw
                    )[0]
                )
                line += f" | D nw{nw} {ms:.3f}"
        print(line, flush=True)
