"""The compiled (numba) CPU sampler: :mod:`.pytorch`'s backward draws, one row at a time.

The forward rows come from the CPU path's forward (:func:`.._shared.numba_support.cpu_forward`:
the compiled scan where it applies), exactly the state the PyTorch sampler keeps: ``alpha`` and,
with ``(C, C)`` transitions, ``G = A + proj_start - cum``. Each row (one sample of one sequence)
then draws from its end backwards with the conditionals derived in :mod:`.pytorch`: the
duration from ``G[t - d, c] + duration_bias[d - 1, c]`` (``O(K)``), the previous label from
``alpha[t - d, c'] + transition[c', c]`` (``O(C)``); with ``(K, C, C)`` transitions ``(d, c')``
jointly (``O(K C)``). The PyTorch sampler runs the same draws vectorised over rows, but as a
Python loop of some twenty tensor operations per segment step; here a step is a tight loop.

Uniforms: a counter-based generator (SplitMix64's finaliser of ``(seed, row, draw)``), seeded
from the caller's ``torch.Generator``, so samples are reproducible and do not depend on how the
rows are scheduled; they agree with the PyTorch path in distribution, not draw by draw. (numba's
own ``np.random`` is not used: its per-thread state is not part of a cached kernel's setup.)
Importing this module imports numba (first CPU call only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._shared.inputs import KernelInputs
from .._shared.logspace import safe_logsumexp
from .._shared.numba_jit import jit
from .._shared.numba_support import cpu_forward, guarded
from ..segmentation import Segmentation

__all__ = ["draw_rows_numba", "streaming_sample_numba"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_NEG = -np.inf


@jit
def _uniform(seed: np.uint64, row: int, draw: int) -> float:
    """A float64 in ``(0, 1]`` from ``(seed, row, draw)`` (SplitMix64's finaliser)."""
    counter = (np.uint64(row) << np.uint64(32)) | np.uint64(draw)
    z = seed + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


@jit
def _pick(logits: np.ndarray, n: int, u: float) -> int:
    """Index ``i < n`` with probability ``softmax(logits[:n])``: the first whose cumulative
    weight reaches ``u`` times the total (``u`` in (0, 1]); ``-1`` if all are ``-inf``."""
    m = _NEG
    for i in range(n):
        if logits[i] > m:
            m = logits[i]
    if m == _NEG:
        return -1
    total = 0.0
    for i in range(n):
        logits[i] = math.exp(logits[i] - m)  # weights, in place
        total += logits[i]
    target = u * total
    acc = 0.0
    last = -1
    for i in range(n):
        if logits[i] > 0.0:
            acc += logits[i]
            last = i
            if acc >= target:
                return i
    return last  # rounding left the target a hair above the sum: the last allowed entry


@jit
def _draw_rows(
    alpha, G, begin, trans, bias, start, lengths, K, per_duration, seed, starts_out, label_out
):  # fmt: skip
    """Draw every row ``r`` (sequence ``r % B``) into ``starts_out``/``label_out`` ``(n, T)``."""
    n = starts_out.shape[0]
    B, _, C = alpha.shape
    buf = np.empty(K * C + C)
    for r in range(n):
        b = r % B
        L = lengths[b]
        for c in range(C):
            buf[c] = alpha[b, L, c]
        c = _pick(buf, C, _uniform(seed, r, 0))
        if c < 0:
            continue  # no allowed segmentation: the row stays empty
        t = L
        draw = 1
        while t > 0:
            dmax = min(K, t)
            if not per_duration:
                for d in range(1, dmax + 1):
                    buf[d - 1] = G[b, t - d, c] + bias[d - 1, c]
                d = _pick(buf, dmax, _uniform(seed, r, draw)) + 1
                if d == 0:
                    break  # unreachable for a sequence with log Z > -inf
                s = t - d
                prev = c
                if s > 0:
                    for p in range(C):
                        buf[p] = alpha[b, s, p] + trans[0, p, c]
                    prev = _pick(buf, C, _uniform(seed, r, draw + 1))
            else:
                # (d, c') jointly; the s = 0 candidate has no previous label (its mass on c' = 0)
                for d in range(1, dmax + 1):
                    s = t - d
                    side = begin[b, s, c] + bias[d - 1, c]
                    for p in range(C):
                        if s == 0:
                            x = start[d - 1, c] + side if p == 0 else _NEG
                        else:
                            x = alpha[b, s, p] + trans[d - 1, p, c] + side
                        buf[(d - 1) * C + p] = x
                flat = _pick(buf, dmax * C, _uniform(seed, r, draw))
                if flat < 0:
                    break  # unreachable for a sequence with log Z > -inf
                d = flat // C + 1
                prev = flat % C
                s = t - d
            starts_out[r, s] = True
            label_out[r, s] = c
            c = prev
            t = s
            draw += 2


def draw_rows_numba(
    inp: KernelInputs,
    alpha: torch.Tensor,
    start_part: torch.Tensor | None,
    num_samples: int,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward sampling of ``num_samples * batch`` rows (row ``i`` samples sequence ``i %
    batch``) from the forward's rows.

    Args:
        inp: working inputs (float64, padding inert) on the CPU.
        alpha: ``(batch, T+1, C)`` float64 forward rows.
        start_part: ``(batch, T+1, C)`` float64 ``G`` with ``(C, C)`` transitions, else None.
        num_samples: samples per sequence.
        generator: a CPU ``torch.Generator`` seeding the draws, or None for the default.

    Returns:
        ``(starts (rows, T) bool, label_at (rows, T) int64)``: True at each segment's start and
        its label there (what :func:`.pytorch._draw` returns).
    """
    cum, trans, bias, lengths, K, _, _ = inp
    B, T1, _ = cum.shape
    rows = num_samples * B
    per_duration = trans.dim() == 3
    from ..logpartition.pytorch import _start_terms

    start = safe_logsumexp(trans, dim=-2)
    start = (start if per_duration else start[None]).contiguous().numpy()
    trans3 = (trans if per_duration else trans[None]).contiguous().numpy()
    begin = _start_terms(inp).contiguous().numpy() if per_duration else np.zeros((1, 1, 1))
    G = start_part.contiguous().numpy() if start_part is not None else np.zeros((1, 1, 1))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    starts = torch.zeros(rows, T1 - 1, dtype=torch.bool)
    label_at = torch.zeros(rows, T1 - 1, dtype=torch.int64)
    _draw_rows(
        alpha.contiguous().numpy(), G, begin, trans3, bias.contiguous().numpy(), start,
        lengths.contiguous().numpy(), K, per_duration, np.uint64(seed), starts.numpy(),
        label_at.numpy(),
    )  # fmt: skip
    return starts, label_at


def streaming_sample_numba(
    cum_scores: torch.Tensor,
    transition: torch.Tensor,
    duration_bias: torch.Tensor,
    lengths: torch.Tensor,
    K: int,
    num_samples: int,
    proj_start: torch.Tensor | None = None,
    proj_end: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Segmentation:
    """``num_samples`` exact samples per sequence on the CPU, compiled (not validated).

    Arguments and result as :func:`semicrf_kernels.sampling.pytorch.streaming_sample_pytorch`
    (CPU tensors, a CPU generator). The forward is the CPU path's (compiled where it applies);
    should the draw kernel fail to compile, the PyTorch draws run instead (one warning).
    """
    from .pytorch import _draw, sample_with

    def draw(inp, alpha, start_part, n, gen):
        ok, drawn = guarded(lambda: draw_rows_numba(inp, alpha, start_part, n, gen))
        return drawn if ok else _draw(inp, alpha, start_part, n, gen)

    return sample_with(
        cpu_forward, draw, cum_scores, transition, duration_bias, lengths, K, num_samples,
        proj_start, proj_end, generator,
    )  # fmt: skip
