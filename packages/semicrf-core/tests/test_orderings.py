"""Orderings are permutations, measure bandwidth correctly and narrow bands where they should."""

from __future__ import annotations

import builtins

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_core import (
    BandedMatrix,
    apply_permutation,
    measure_effective_bandwidth,
    rcm_ordering_from_adjacency,
    snake_ordering,
)


def test_spec_examples():
    adj = torch.eye(5)
    assert measure_effective_bandwidth(adj) == 0
    adj[0, 4] = 1
    assert measure_effective_bandwidth(adj) == 4
    assert snake_ordering(4, 2).tolist() == [0, 1, 6, 7, 2, 3, 4, 5]
    assert snake_ordering(3, 1).tolist() == [0, 2, 1]


@pytest.mark.parametrize(("K", "C"), [(1, 1), (2, 3), (5, 2), (6, 1), (7, 3)])
def test_snake_is_a_permutation_alternating_low_and_high_durations(K, C):
    perm = snake_ordering(K, C)
    assert sorted(perm.tolist()) == list(range(K * C))
    durations = (perm[::C] // C).tolist()
    for i, k in enumerate(durations):
        assert k == (i // 2 if i % 2 == 0 else K - 1 - i // 2)
    assert torch.all(perm.view(K, C) % C == torch.arange(C))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 12), band=st.integers(0, 5), seed=st.integers(0, 2**31 - 1))
def test_bandwidth_of_random_banded_matrices(n, band, seed):
    g = torch.Generator().manual_seed(seed)
    i = torch.arange(n).view(-1, 1)
    j = torch.arange(n).view(1, -1)
    inside = (i - j).abs() <= band
    values = torch.rand((n, n), generator=g) + 0.1
    assert measure_effective_bandwidth(torch.where(inside, values, 0.0)) == min(band, n - 1)
    log = torch.where(inside, values, torch.tensor(float("-inf")))
    assert measure_effective_bandwidth(log) == min(band, n - 1)
    assert measure_effective_bandwidth(torch.where(inside, values, -1e9)) == min(band, n - 1)
    assert measure_effective_bandwidth(inside) == min(band, n - 1)
    assert measure_effective_bandwidth(torch.where(inside, values, 7.0), fill_value=7.0) == min(
        band, n - 1
    )


def test_bandwidth_of_batches_banded_matrices_and_nan():
    a = torch.zeros(2, 6, 6)
    a[1, 5, 2] = 1.0
    assert measure_effective_bandwidth(a) == 3
    a[0, 0, 1] = float("nan")
    assert measure_effective_bandwidth(a[:1]) == 1
    assert measure_effective_bandwidth(torch.zeros(3, 3)) == 0
    dense = torch.randn(1, 8, 8)
    assert measure_effective_bandwidth(BandedMatrix.from_dense(dense, 2, 1)) == 2
    with pytest.raises(TypeError, match="adj"):
        measure_effective_bandwidth([[1.0]])
    with pytest.raises(ValueError, match="adj"):
        measure_effective_bandwidth(torch.zeros(2, 3))


def _shuffled_band(n, band, g):
    i = torch.arange(n).view(-1, 1)
    j = torch.arange(n).view(1, -1)
    adj = ((i - j).abs() <= band).float()
    shuffle = torch.randperm(n, generator=g)
    return apply_permutation(adj, shuffle)


def test_rcm_recovers_a_narrow_band_from_a_shuffled_one(gen):
    adj = _shuffled_band(30, 2, gen)
    before = measure_effective_bandwidth(adj)
    perm, ok = rcm_ordering_from_adjacency(adj)
    assert ok
    assert sorted(perm.tolist()) == list(range(30))
    after = measure_effective_bandwidth(apply_permutation(adj, perm))
    assert after <= 4 < before


def test_rcm_falls_back_to_the_identity_without_scipy(monkeypatch):
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("no scipy here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    perm, ok = rcm_ordering_from_adjacency(torch.ones(4, 4))
    assert not ok and perm.tolist() == [0, 1, 2, 3]


def test_rcm_rejects_non_square():
    with pytest.raises(ValueError, match="adj"):
        rcm_ordering_from_adjacency(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="adj"):
        rcm_ordering_from_adjacency([[1]])


def test_snake_narrows_links_between_short_and_long_durations():
    # Durations k and k+1 (a count-down) and k and K-1-k (short paired with long) linked, C labels
    # fully linked inside each pair of linked durations.
    K, C = 9, 2
    k = torch.arange(K * C) // C
    linked = ((k.view(-1, 1) - k.view(1, -1)).abs() <= 1) | (k.view(-1, 1) + k.view(1, -1) == K - 1)
    natural = measure_effective_bandwidth(linked)
    snake = measure_effective_bandwidth(apply_permutation(linked, snake_ordering(K, C)))
    assert natural == (K - 1) * C + C - 1
    assert snake < 3 * C


def test_apply_permutation_matches_indexing(gen):
    x = torch.randn((2, 3, 5, 5), generator=gen)
    perm = torch.randperm(5, generator=gen)
    out = apply_permutation(x, perm)
    for i in range(5):
        for j in range(5):
            torch.testing.assert_close(out[..., i, j], x[..., perm[i], perm[j]])
    with pytest.raises(ValueError, match="permutation"):
        apply_permutation(x, torch.tensor([0, 0, 1, 2, 3]))
    with pytest.raises(TypeError, match="integer"):
        apply_permutation(x, torch.arange(5.0))
    with pytest.raises(ValueError, match="potentials"):
        apply_permutation(torch.zeros(3, 4), torch.arange(4))
