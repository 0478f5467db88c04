"""Shared helpers: an enumeration of structures written independently of `semicrf_core`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch


def structures(positions: int, K: int, C: int) -> list[list[tuple[int, int, int, int]]]:
    """Every structure as its list of edge indices `(s, d, c_dst, c_src)`.

    Built fence by fence (a different walk from the package's composition-first enumeration).
    """
    out: list[list[tuple[int, int, int, int]]] = []

    def walk(fence: int, prev: int, acc: list[tuple[int, int, int, int]]) -> None:
        if fence == positions:
            out.append(list(acc))
            return
        for d in range(1, K):
            if fence + d > positions:
                break
            for c in range(C):
                acc.append((fence, d, c, prev))
                walk(fence + d, c, acc)
                acc.pop()

    for c0 in range(C):
        walk(0, c0, [])
    return out


def structure_scores(edge: torch.Tensor, b: int, length: int) -> tuple[torch.Tensor, list]:
    """Plain sums of edge values per structure of sequence `b` with `length` fences.

    Returns:
        `(scores (n_structures,), structures)`.
    """
    K, C = edge.shape[2], edge.shape[3]
    structs = structures(length - 1, K, C)
    scores = torch.stack([sum(edge[b, s, d, c, p] for s, d, c, p in st) for st in structs])
    return scores, structs


def indicator(shape: tuple[int, ...], structs: list, b: int) -> torch.Tensor:
    """`(n_structures, *shape[1:])` 0/1: which edges each structure of sequence `b` uses."""
    out = torch.zeros((len(structs), *shape[1:]), dtype=torch.float64)
    for i, st in enumerate(structs):
        for s, d, c, p in st:
            out[i, s, d, c, p] = 1.0
    return out


@pytest.fixture
def ref() -> SimpleNamespace:
    """The independent enumeration helpers (`structures`, `structure_scores`, `indicator`)."""
    return SimpleNamespace(
        structures=structures, structure_scores=structure_scores, indicator=indicator
    )


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded generator, fresh per test."""
    return torch.Generator().manual_seed(1234)
