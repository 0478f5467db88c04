"""Exact (edge-tensor) backends: the edge layout, and every semiring against enumeration."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_kernels import semi_crf_streaming_forward
from semicrf_kernels.testing.brute_force import brute_force_streaming
from semicrf_nn.backends import build_edge_tensor, check_edge_memory, edge_tensor_bytes, exact_sum
from semicrf_semirings import EntropySemiring, LogSemiring, MaxSemiring


def _problem(B, T, C, K, *, per_duration=False, proj=False, forbid=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.float64
    cum = torch.cat(
        [torch.zeros(B, 1, C, dtype=f), torch.randn(B, T, C, generator=g, dtype=f).cumsum(1)], 1
    )
    trans = torch.randn(*((K, C, C) if per_duration else (C, C)), generator=g, dtype=f)
    db = torch.randn(K, C, generator=g, dtype=f)
    if forbid:
        trans[..., 0, 1] = -math.inf
        db[-1, 0] = -math.inf
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    ps = torch.randn(B, T, C, generator=g, dtype=f) if proj else None
    pe = torch.randn(B, T, C, generator=g, dtype=f) if proj else None
    return cum, trans, db, lengths, ps, pe


@pytest.mark.parametrize("per_duration", [False, True])
def test_edge_tensor_layout(per_duration) -> None:
    B, T, C, K = 2, 4, 3, 3
    cum, trans, db, _, ps, pe = _problem(
        B, T, C, K, per_duration=per_duration, proj=True, forbid=True, seed=1
    )
    edge = build_edge_tensor(cum, trans, db, K, ps, pe)
    assert edge.shape == (B, T, K + 1, C, C)
    for b in range(B):
        for s in range(T):
            assert (edge[b, s, 0] == -math.inf).all()  # duration slot 0 is unused
            for d in range(1, K + 1):
                tr = trans[d - 1] if per_duration else trans
                for c in range(C):
                    for cp in range(C):
                        got = float(edge[b, s, d, c, cp])
                        if s + d > T:
                            assert got == -math.inf
                            continue
                        seg = float(
                            cum[b, s + d, c]
                            - cum[b, s, c]
                            + db[d - 1, c]
                            + ps[b, s, c]
                            + pe[b, s + d - 1, c]
                        )
                        if s == 0:
                            link = float(torch.logsumexp(tr[:, c], 0)) if cp == 0 else -math.inf
                        else:
                            link = float(tr[cp, c])
                        expected = seg + link
                        if expected == -math.inf:  # a forbidden choice: the semirings' zero
                            assert got == -math.inf
                        else:
                            assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize(
    ("B", "T", "C", "K", "per_duration", "proj", "forbid"),
    [
        (3, 5, 3, 3, False, False, False),
        (3, 5, 2, 1, False, True, False),
        (2, 6, 3, 2, True, False, True),
        (3, 4, 2, 6, True, True, True),
    ],
)
@pytest.mark.parametrize("sharded", [False, True])
def test_every_semiring_matches_enumeration(
    B, T, C, K, per_duration, proj, forbid, sharded
) -> None:
    cum, trans, db, lengths, ps, pe = _problem(
        B, T, C, K, per_duration=per_duration, proj=proj, forbid=forbid, seed=T + K
    )
    truth = brute_force_streaming(cum, trans, db, lengths, K, ps, pe)
    edge = build_edge_tensor(cum, trans, db, K, ps, pe)
    torch.testing.assert_close(
        exact_sum(edge, lengths, LogSemiring, sharded=sharded), truth.log_partition
    )
    torch.testing.assert_close(
        exact_sum(edge, lengths, MaxSemiring, sharded=sharded), truth.viterbi_score
    )
    torch.testing.assert_close(
        exact_sum(edge, lengths, EntropySemiring, sharded=sharded), truth.entropy
    )


def test_no_allowed_segmentation_gives_minus_inf() -> None:
    cum, trans, db, _, _, _ = _problem(1, 3, 2, 2, seed=4)
    db[:, 1] = -math.inf  # label 1 never allowed
    trans[:, 0] = -math.inf  # nothing may enter label 0, so it cannot start
    edge = build_edge_tensor(cum, trans, db, 2)
    for sr in (LogSemiring, MaxSemiring):
        assert exact_sum(edge, torch.tensor([3]), sr)[0] == -math.inf


def test_gradients_through_the_edge_tensor() -> None:
    cum, trans, db, lengths, ps, pe = _problem(2, 4, 2, 3, per_duration=True, proj=True, seed=7)
    inputs = [x.clone().requires_grad_() for x in (cum, trans, db, ps, pe)]

    def f(c, t, d, a, e):
        return exact_sum(build_edge_tensor(c, t, d, 3, a, e), lengths, LogSemiring)

    assert torch.autograd.gradcheck(f, inputs)


def test_edge_memory_estimate_and_guard() -> None:
    assert edge_tensor_bytes(2, 10, 4, 3, torch.float32) == 2 * 10 * 5 * 3 * 3 * 4
    assert edge_tensor_bytes(1, 1, 1, 1, torch.float64) == 16
    check_edge_memory(2, 10, 4, 3, torch.float32, 3600, "exact")  # exactly at the limit
    with pytest.raises(ValueError, match=r"3600 bytes.*edge_memory_threshold=3599.*'streaming'"):
        check_edge_memory(2, 10, 4, 3, torch.float32, 3599, "exact")


def test_edge_tensor_forbids_by_scores_not_by_segment_totals() -> None:
    # A segment whose total is far below NEG_INF / 2 (large negative emissions) is still
    # allowed: only transitions and duration scores forbid (docs/conventions.md section 1), so
    # the exact backends agree with the streaming one at any magnitude.
    B, T, C, K = 2, 5, 3, 3
    cum, trans, db, lengths, _, _ = _problem(B, T, C, K, per_duration=False, proj=False, forbid=True, seed=4)  # fmt: skip
    cum = cum * 1e10
    edge = build_edge_tensor(cum, trans, db, K)
    inside = torch.arange(T)[:, None] + torch.arange(1, K + 1)[None, :] <= T  # (T, K)
    allowed = torch.isfinite(db)[None, :, :, None] & torch.isfinite(trans.T)[None, None]
    allowed = allowed.expand(T, K, C, C).clone()
    allowed[0] = torch.isfinite(db)[:, :, None] & (torch.arange(C) == 0)  # the start slot
    want = (inside[None, :, :, None, None] & allowed[None]).expand(B, T, K, C, C)
    assert (edge[:, :, 1:] > -math.inf).eq(want).all()
    assert (edge[:, :, 1:][want] < -5e8).any()  # totals below NEG_INF / 2 among them
    for semiring in (LogSemiring, MaxSemiring):
        exact = exact_sum(edge, lengths, semiring)
        streaming = semi_crf_streaming_forward(
            cum, trans, db, lengths, K, semiring="log" if semiring is LogSemiring else "max"
        )
        torch.testing.assert_close(exact, streaming, rtol=1e-12, atol=0)
