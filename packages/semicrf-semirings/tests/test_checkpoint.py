"""Checkpointed and sharded matmul: same values and gradients as the base, less saved memory."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_semirings import (
    CheckpointSemiring,
    CheckpointShardSemiring,
    CrossEntropySemiring,
    EntropySemiring,
    KLDivergenceSemiring,
    KMaxSemiring,
    LogSemiring,
    MaxSemiring,
    StdSemiring,
)
from semicrf_semirings.checkpoint import matmul_size

BASES = [
    LogSemiring,
    MaxSemiring,
    StdSemiring,
    KMaxSemiring(2),
    EntropySemiring,
    CrossEntropySemiring,
    KLDivergenceSemiring,
]


def operands(S, batch_a, batch_b, n, k, m, seed):
    rng = np.random.default_rng(seed)
    s = S.size()
    a = rng.normal(size=(s, *batch_a, n, k))
    b = rng.normal(size=(s, *batch_b, k, m))
    if hasattr(S, "k"):  # k-max channels are sorted best first
        a, b = -np.sort(-a, axis=0), -np.sort(-b, axis=0)
    return (torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))


def value_and_grads(S, a, b, g_seed):
    out = S.matmul(a, b)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(g_seed), dtype=out.dtype)
    ga, gb = torch.autograd.grad(out, (a, b), g)
    return out.detach(), ga, gb


@pytest.mark.parametrize("S", BASES, ids=lambda S: S.__name__)
@settings(max_examples=6, deadline=None)
@given(
    batch=st.sampled_from([((), ()), ((2,), ()), ((2, 1), (3,)), ((1,), (2, 3))]),
    n=st.integers(1, 4),
    k=st.integers(1, 4),
    m=st.integers(1, 4),
    max_size=st.integers(1, 60),
    seed=st.integers(0, 2**31),
)
def test_same_values_and_gradients_as_the_base(S, batch, n, k, m, max_size, seed):
    a, b = operands(S, *batch, n, k, m, seed)
    ref = value_and_grads(S, a, b, seed)
    for W in (CheckpointSemiring(S), CheckpointShardSemiring(S, max_size=max_size)):
        got = value_and_grads(W, a, b, seed)
        for x, y in zip(got, ref):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def saved_bytes(fn):
    """Bytes of all tensors autograd saves for backward while running fn()."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total


@pytest.mark.parametrize("S", [LogSemiring, EntropySemiring], ids=lambda S: S.__name__)
def test_checkpointing_saves_fewer_bytes(S):
    s = S.size()
    a = torch.randn(s, 4, 16, 16, requires_grad=True)
    b = torch.randn(s, 4, 16, 16, requires_grad=True)
    _, base = saved_bytes(lambda: S.matmul(a, b))
    operand_bytes = 2 * a.numel() * a.element_size()
    # The plain product keeps its (s, 4, 16, 16, 16) intermediate; the wrappers keep a and b only.
    assert base >= 16 * operand_bytes // 2
    for W in (CheckpointSemiring(S), CheckpointShardSemiring(S, max_size=1000)):
        out, saved = saved_bytes(lambda W=W: W.matmul(a, b))
        assert saved == operand_bytes
        out.sum().backward()


def test_min_size_keeps_small_products_plain():
    a = torch.randn(1, 3, 4, requires_grad=True)
    b = torch.randn(1, 4, 5, requires_grad=True)
    size = matmul_size(LogSemiring, a, b)
    assert size == 60
    _, base = saved_bytes(lambda: LogSemiring.matmul(a, b))
    _, small = saved_bytes(lambda: CheckpointSemiring(LogSemiring, min_size=size).matmul(a, b))
    _, large = saved_bytes(lambda: CheckpointSemiring(LogSemiring, min_size=size - 1).matmul(a, b))
    assert small == base and large < base
    _, shard = saved_bytes(
        lambda: CheckpointShardSemiring(LogSemiring, 7, min_size=size).matmul(a, b)
    )
    assert shard == base


class Recording(LogSemiring):
    """LogSemiring that records the intermediate size of every matmul it computes."""

    sizes: ClassVar[list[int]] = []

    @classmethod
    def matmul(cls, a, b):
        cls.sizes.append(matmul_size(LogSemiring, a, b))
        return super().matmul(a, b)


@pytest.mark.parametrize("max_size", [1, 10, 50, 130, 10_000])
def test_shards_bound_the_intermediate(max_size):
    n, k, m, batch = 5, 3, 4, (2, 3)
    a = torch.randn(1, *batch, n, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 1, 3, k, m, dtype=torch.float64, requires_grad=True)
    W = CheckpointShardSemiring(Recording, max_size=max_size)
    Recording.sizes = []
    out = W.matmul(a, b)
    row = k * m  # one output row of one batch entry: the smallest possible chunk
    forward_sizes = list(Recording.sizes)
    assert max(forward_sizes) <= max(max_size, row)
    assert sum(forward_sizes) == 6 * n * k * m  # every entry computed exactly once
    Recording.sizes = []
    out.sum().backward()
    assert max(Recording.sizes) <= max(max_size, row)
    torch.testing.assert_close(out, LogSemiring.matmul(a, b))


def test_kmax_shards_count_pairwise_channels():
    S = KMaxSemiring(3)
    a = torch.randn(3, 4, 2, 2)
    b = torch.randn(3, 4, 2, 2)
    assert matmul_size(S, a, b) == 9 * 4 * 2 * 2 * 2


def test_wrappers_are_subclasses_and_cached():
    W = CheckpointSemiring(EntropySemiring)
    assert issubclass(W, EntropySemiring) and W is CheckpointSemiring(EntropySemiring)
    assert W.size() == 2 and W.unconvert is not None
    V = CheckpointShardSemiring(MaxSemiring, 100)
    assert issubclass(V, MaxSemiring) and hasattr(V, "sparse_sum")


def test_no_grad_forward_works():
    a, b = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 4, 5)
    with torch.no_grad():
        for W in (CheckpointSemiring(LogSemiring), CheckpointShardSemiring(LogSemiring, 3)):
            torch.testing.assert_close(W.matmul(a, b), LogSemiring.matmul(a, b))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="max_size must be >= 1, got 0"):
        CheckpointShardSemiring(LogSemiring, 0)
    with pytest.raises(TypeError, match="max_size must be an int"):
        CheckpointShardSemiring(LogSemiring, 10.0)
    with pytest.raises(ValueError, match="min_size must be >= 0, got -1"):
        CheckpointSemiring(LogSemiring, min_size=-1)
    with pytest.raises(TypeError, match="Semiring subclass"):
        CheckpointSemiring(int)
    with pytest.raises(ValueError, match="inner sizes differ"):
        CheckpointShardSemiring(LogSemiring, 10).matmul(torch.zeros(1, 2, 3), torch.zeros(1, 4, 2))
