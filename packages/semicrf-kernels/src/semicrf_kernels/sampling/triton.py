"""Triton sampling: the Triton forward scan, then one program per sample drawing backwards.

The forward kernel of :mod:`..streaming.triton_forward` stores, per position, ``alpha[s] -
shift[s]`` and (with ``(C, C)`` transitions) the window ``A[s] + proj_start[s] - shift[s]``, with
a float64 ``shift`` per row. Each program of :func:`_sample_kernel` then draws one segmentation of
one sequence from its end backwards with the exact conditionals of
:mod:`.pytorch` (the module docstring there derives them): the duration from ``K`` logits
``G[t - d, c] + duration_bias[d - 1, c]`` with ``G = window + shift - cum``, then the previous
label from ``C`` logits ``alpha[s, c'] + transition[c', c]``: O(K + C) per segment; with
``(K, C, C)`` transitions ``(d, c')`` jointly, O(K C). Logits are formed in float64 (the shifts
are float64), so the draw probabilities are exact to float64 rounding of the stored rows.
Uniforms come from ``tl.rand`` (Philox) seeded from the caller's ``torch.Generator``: samples are
reproducible on one device and agree with the PyTorch path in distribution, not draw by draw.
"""

from __future__ import annotations

import torch

from .._inputs import prepare_inputs
from .._logspace import safe_logsumexp
from .._triton_support import HAS_TRITON
from ..segmentation import Segmentation
from ..segmentation_score import score_segmentation_tensors
from ..streaming.triton_forward import _check_triton, _next_pow2, run_forward_scan

__all__ = ["streaming_sample_triton"]

#: Philox offsets are 32-bit: a launch covers at most this many (row, step) uniforms.
_MAX_OFFSETS = 2**31 - 1

if HAS_TRITON:
    import triton
    import triton.language as tl

    @triton.jit
    def _draw(logits, valid, u):
        """Index drawn with probability softmax(logits) over ``valid`` entries (inverse CDF with
        ``1 - u`` in (0, 1]); an entry of probability 0 is never drawn."""
        x = tl.where(valid, logits, float("-inf"))
        m = tl.max(x, axis=0)
        m = tl.where(m > float("-inf"), m, 0.0)
        w = tl.where(valid, tl.exp(x - m), 0.0)
        cdf = tl.cumsum(w, axis=0)
        target = (1.0 - u) * tl.sum(w, axis=0)
        return tl.sum((cdf < target).to(tl.int64), axis=0)

    @triton.jit(do_not_specialize=["B", "T", "C", "K", "row0", "seed"])
    def _sample_kernel(
        alpha_ptr,  # (B, T+1, C) alpha - shift
        window_ptr,  # (B, T+1, C) A + proj_start - shift ((C, C) only)
        shift_ptr,  # (B, T+1) float64
        cum_ptr,  # (B, T+1, C)
        ps_ptr,  # (B, T, C) proj_start ((K, C, C) with HAS_PS only)
        trans_ptr,  # (C, C) or (K, C, C), forbidden -inf
        bias_ptr,  # (K, C), forbidden -inf
        first_ptr,  # (K, C) float64 start scores ((K, C, C) only)
        len_ptr,  # (B,) int64
        alive_ptr,  # (B,) int8: log Z finite
        starts_ptr,  # out (rows, T) int8, zero-initialised
        label_ptr,  # out (rows, T) int64
        B,
        T,
        C,
        K,
        row0,
        seed,
        PER_DURATION: tl.constexpr,
        HAS_PS: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        local = tl.program_id(0).to(tl.int64)
        row = row0 + local
        b = row % B
        L = tl.load(len_ptr + b)
        ok = tl.load(alive_ptr + b) != 0
        offs_c = tl.arange(0, BLOCK_C)
        cm = offs_c < C
        offs_k = tl.arange(0, BLOCK_K)
        base = b * (T + 1) * C
        final = tl.load(alpha_ptr + base + L * C + offs_c, mask=cm, other=float("-inf"))
        stride = 2 * T + 2  # uniforms per row: the final label, then two per segment
        u = tl.rand(seed, (local * stride).to(tl.int32))
        c = _draw(final.to(tl.float64), cm, u)
        t = tl.where(ok, L, 0)
        step = 1
        while t > 0:
            u1 = tl.rand(seed, (local * stride + 2 * step - 1).to(tl.int32))
            u2 = tl.rand(seed, (local * stride + 2 * step).to(tl.int32))
            d = offs_k + 1
            s = t - d
            ok_d = (d <= K) & (s >= 0)
            s_safe = tl.where(ok_d, s, 0)
            bias = tl.load(bias_ptr + (d - 1) * C + c, mask=ok_d, other=float("-inf"))
            if PER_DURATION:
                # Joint (d, c') over a (BLOCK_K, BLOCK_C) tile, flattened for the draw.
                s2 = s_safe[:, None]
                ok2 = ok_d[:, None] & cm[None, :]
                a = tl.load(alpha_ptr + base + s2 * C + offs_c[None, :], mask=ok2, other=0.0)
                sh = tl.load(shift_ptr + b * (T + 1) + s2, mask=ok_d[:, None], other=0.0)
                tr = tl.load(
                    trans_ptr + (d[:, None] - 1) * C * C + offs_c[None, :] * C + c,
                    mask=ok2, other=float("-inf"),
                )  # fmt: skip
                first = tl.load(first_ptr + (d - 1) * C + c, mask=ok_d, other=float("-inf"))
                side = bias.to(tl.float64) - tl.load(
                    cum_ptr + base + s_safe * C + c, mask=ok_d, other=0.0
                ).to(tl.float64)
                if HAS_PS:
                    side += tl.load(
                        ps_ptr + b * T * C + s_safe * C + c, mask=ok_d & (s_safe < T), other=0.0
                    ).to(tl.float64)
                inner = a.to(tl.float64) + sh + tr.to(tl.float64)
                at_start = (s2 == 0) & (offs_c[None, :] == 0)
                inner = tl.where(s2 == 0, tl.where(at_start, first[:, None], float("-inf")), inner)
                joint = inner + side[:, None]
                valid = ok2 & (joint == joint)  # NaN-free by construction; keep it that way
                flat = tl.reshape(joint, [BLOCK_K * BLOCK_C])
                fvalid = tl.reshape(valid, [BLOCK_K * BLOCK_C])
                pick = _draw(flat, fvalid, u1)
                dd = pick // BLOCK_C + 1
                prev = pick % BLOCK_C
            else:
                w = tl.load(window_ptr + base + s_safe * C + c, mask=ok_d, other=float("-inf"))
                sh = tl.load(shift_ptr + b * (T + 1) + s_safe, mask=ok_d, other=0.0)
                cs = tl.load(cum_ptr + base + s_safe * C + c, mask=ok_d, other=0.0)
                g = w.to(tl.float64) + sh - cs.to(tl.float64) + bias.to(tl.float64)
                dd = _draw(g, ok_d, u1) + 1
                sp = t - dd
                a = tl.load(alpha_ptr + base + sp * C + offs_c, mask=cm, other=float("-inf"))
                tr = tl.load(trans_ptr + offs_c * C + c, mask=cm, other=float("-inf"))
                prev = _draw(a.to(tl.float64) + tr.to(tl.float64), cm, u2)
            s_new = t - dd
            tl.store(starts_ptr + local * T + s_new, (s_new * 0 + 1).to(tl.int8))
            tl.store(label_ptr + local * T + s_new, c)
            c = prev
            t = s_new
            step += 1


def streaming_sample_triton(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    num_warps: int = 4,
) -> Segmentation:
    """``num_samples`` exact samples per sequence with the Triton kernels (not validated).

    Arguments and result as :func:`semicrf_kernels.sampling.pytorch.streaming_sample_pytorch`.
    """
    inp = prepare_inputs(cum_scores, transition, duration_bias, lengths, K, proj_start, proj_end)
    _check_triton(inp.cum_scores)
    cum, trans, bias, lens = inp.cum_scores, inp.transition, inp.duration_bias, inp.lengths
    B, T1, C = cum.shape
    T = T1 - 1
    with torch.no_grad():
        score, _final, alpha, window, shift, _, _ = run_forward_scan(
            cum, trans, bias, lens, K, inp.proj_start, inp.proj_end,
            maxsr=False, backpointers=False, num_warps=num_warps,
        )  # fmt: skip
        alive = torch.isfinite(score)
        per_duration = trans.dim() == 3
        first = safe_logsumexp(trans.to(torch.float64), dim=-2)
        first = first.expand(K, C).contiguous() if per_duration else first
        rows = num_samples * B
        starts = torch.zeros(rows, T, dtype=torch.int8, device=cum.device)
        label_at = torch.zeros(rows, T, dtype=torch.int64, device=cum.device)
        ps = inp.proj_start if inp.proj_start is not None else cum
        per_launch = max(1, _MAX_OFFSETS // (2 * T + 2))
        for row0 in range(0, rows, per_launch):
            n = min(per_launch, rows - row0)
            seed = int(
                torch.randint(0, 2**31 - 1, (1,), generator=generator, device=cum.device).item()
            )
            _sample_kernel[(n,)](
                alpha, window if window is not None else alpha, shift, cum, ps, trans, bias,
                first, lens, alive.to(torch.int8), starts[row0:], label_at[row0:],
                B, T, C, K, row0, seed,
                PER_DURATION=per_duration, HAS_PS=inp.proj_start is not None,
                BLOCK_C=_next_pow2(C), BLOCK_K=_next_pow2(K), num_warps=num_warps,
            )  # fmt: skip
        starts = starts.bool().reshape(num_samples, B, T)
        t = torch.arange(T, device=cum.device).expand(starts.shape)
        owner = torch.cummax(torch.where(starts, t, torch.zeros_like(t)), dim=-1).values
        labels = label_at.reshape(num_samples, B, T).gather(-1, owner)
        valid = (t < lens[:, None]) & alive[:, None]
        labels = torch.where(valid, labels, -1)
        segmentation = Segmentation(labels, starts, None)
        scores = score_segmentation_tensors(
            cum, trans, bias, lens, segmentation, proj_start=inp.proj_start,
            proj_end=inp.proj_end,
        )  # fmt: skip
        scores = torch.where(alive, scores, -torch.inf).to(cum.dtype)
        return segmentation._replace(scores=scores)
