"""The synthetic gene data set: shapes, determinism, gene grammar, lengths, composition, signals."""

from __future__ import annotations

import itertools

import pytest
import torch

from flash_semicrf.demo.data import (
    CONTINUE_GENE,
    EXON,
    GRAMMAR,
    INTERGENIC,
    INTRON,
    LONGEST_REGION,
    MOTIFS,
    REGIONS,
    STOP_CODONS,
    _region_length,
    make_gene_dataset,
)
from flash_semicrf.demo.metrics import label_runs

A, C, G, T = 0, 1, 2, 3


def _bases(data, b: int) -> list[int]:
    return data.inputs[b, : int(data.lengths[b])].argmax(-1).tolist()


def _runs(data, b: int) -> list[tuple[int, int, int]]:
    return label_runs(data.labels[b, : int(data.lengths[b])].tolist())


def test_shapes_and_padding() -> None:
    data = make_gene_dataset(12, max_len=150, seed=3)
    assert data.inputs.shape == (12, 150, 4) and data.inputs.dtype == torch.float32
    assert data.labels.shape == (12, 150) and data.labels.dtype == torch.int64
    assert len(data) == 12
    assert ((data.lengths >= 112) & (data.lengths <= 150)).all()
    for b in range(12):
        L = int(data.lengths[b])
        assert torch.equal(data.inputs[b, :L].sum(-1), torch.ones(L))  # one-hot bases
        assert data.inputs[b, L:].abs().sum() == 0
        assert (data.labels[b, L:] == 0).all()


def test_min_len_is_respected() -> None:
    data = make_gene_dataset(30, max_len=90, min_len=21, seed=0)
    assert int(data.lengths.min()) >= 21 and int(data.lengths.max()) <= 90
    assert int(data.lengths.min()) < 40  # the range is used, not only its top


def test_deterministic_by_seed() -> None:
    a, b = make_gene_dataset(5, 100, seed=7), make_gene_dataset(5, 100, seed=7)
    c = make_gene_dataset(5, 100, seed=8)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


def test_region_grammar_and_lengths() -> None:
    data = make_gene_dataset(60, max_len=400, seed=1)
    seen = set()
    for b in range(len(data)):
        runs = _runs(data, b)
        assert runs[0][2] == INTERGENIC  # a window starts in intergenic DNA
        for (_, _, prev), (_, _, nxt) in itertools.pairwise(runs):
            assert (prev, nxt) in GRAMMAR
            seen.add((prev, nxt))
        for start, end, label in runs[:-1]:  # the last run may be cut by the window's end
            assert REGIONS[label].min_len <= end - start + 1 <= REGIONS[label].max_len
        assert runs[-1][1] - runs[-1][0] + 1 <= REGIONS[runs[-1][2]].max_len
    assert seen == set(GRAMMAR)  # every kind of boundary occurs
    assert LONGEST_REGION == max(spec.max_len for spec in REGIONS.values())


@pytest.mark.parametrize("label", [INTERGENIC, EXON, INTRON])
def test_region_length_distribution(label: int) -> None:
    spec = REGIONS[label]
    gen = torch.Generator().manual_seed(label)
    draws = torch.tensor([_region_length(spec, gen) for _ in range(4000)], dtype=torch.float64)
    assert spec.min_len <= draws.min() and draws.max() <= spec.max_len
    # The negative binomial's mean; clipping at max_len removes well under 1% of the mass.
    assert draws.mean().item() == pytest.approx(spec.mean_len, rel=0.03)
    # Peaked, not geometric: the mode is well above the minimum.
    assert torch.bincount(draws.long()).argmax().item() > spec.min_len + 5


def test_genes_continue_with_the_documented_probability() -> None:
    data = make_gene_dataset(200, max_len=400, seed=4)
    go_on = stop = 0
    for b in range(len(data)):
        for (_, _, prev), (_, _, nxt) in itertools.pairwise(_runs(data, b)):
            if prev == EXON:
                go_on += nxt == INTRON
                stop += nxt == INTERGENIC
    assert go_on / (go_on + stop) == pytest.approx(CONTINUE_GENE, abs=0.05)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_composition_inside_regions(noise: float) -> None:
    # Away from boundaries (no motif reaches 15 bases) a base follows the region's composition,
    # mixed with the uniform noise.
    data = make_gene_dataset(150, max_len=400, noise=noise, seed=2)
    counts = torch.zeros(3, 4)
    for b in range(len(data)):
        onehot = data.inputs[b]
        for start, end, label in _runs(data, b):
            if end - start + 1 > 30:
                counts[label] += onehot[start + 15 : end - 14].sum(0)
    for label, spec in REGIONS.items():
        expected = (1 - noise) * torch.tensor(spec.composition) + noise / 4
        assert counts[label].sum() > 2000
        assert torch.allclose(counts[label] / counts[label].sum(), expected, atol=0.025)


def test_invariant_signals_at_every_boundary() -> None:
    data = make_gene_dataset(40, max_len=400, noise=0.0, seed=5)
    checked = dict.fromkeys(GRAMMAR, 0)
    for b in range(len(data)):
        bases = _bases(data, b)
        for (_, _, prev), (start, _, label) in itertools.pairwise(_runs(data, b)):
            if (prev, label) == (INTERGENIC, EXON) and start + 3 <= len(bases):
                assert bases[start : start + 3] == [A, T, G]  # start codon
            elif (prev, label) == (EXON, INTERGENIC):
                assert tuple(bases[start - 3 : start]) in STOP_CODONS
            elif (prev, label) == (EXON, INTRON) and start + 2 <= len(bases):
                assert bases[start : start + 2] == [G, T]  # splice donor
            elif (prev, label) == (INTRON, EXON):
                assert bases[start - 2 : start] == [A, G]  # splice acceptor
            else:
                continue
            checked[(prev, label)] += 1
    assert min(checked.values()) >= 10


def test_consensus_sites_follow_their_probability() -> None:
    # At each motif site the consensus appears with probability
    # prob + (1 - prob) * P(background base is consensus): counted over many boundaries.
    data = make_gene_dataset(250, max_len=400, noise=0.0, seed=6)
    hits: dict[tuple[tuple[int, int], int], list[int]] = {}
    for b in range(len(data)):
        bases = _bases(data, b)
        for (_, _, prev), (start, _, label) in itertools.pairwise(_runs(data, b)):
            for i, site in enumerate(MOTIFS[(prev, label)]):
                at = start + site.offset
                if 0 <= at < len(bases):
                    hits.setdefault(((prev, label), i), []).append(int(bases[at] in site.bases))
    assert {k for k, _ in hits} == {k for k, v in MOTIFS.items() if v}
    for (kind, i), values in hits.items():
        site = MOTIFS[kind][i]
        region = kind[0] if site.offset < 0 else kind[1]
        background = sum(REGIONS[region].composition[x] for x in site.bases)
        expected = site.prob + (1 - site.prob) * background
        assert len(values) >= 150
        assert sum(values) / len(values) == pytest.approx(expected, abs=0.1), (kind, site)


def test_motifs_fit_inside_the_shortest_regions() -> None:
    # No site may reach past the region it describes, or into the next boundary's sites.
    for (prev, nxt), sites in MOTIFS.items():
        for site in sites:
            if site.offset < 0:
                assert -site.offset <= REGIONS[prev].min_len
            else:
                assert site.offset < REGIONS[nxt].min_len
    reach_in = {label: 0 for label in REGIONS}
    reach_out = {label: 0 for label in REGIONS}
    for (prev, nxt), sites in MOTIFS.items():
        back = [-s.offset for s in sites if s.offset < 0]
        fwd = [s.offset + 1 for s in sites if s.offset >= 0]
        if (prev, nxt) == (EXON, INTERGENIC):
            back.append(3)  # the stop codon
        reach_out[prev] = max(reach_out[prev], *back, 0)
        reach_in[nxt] = max(reach_in[nxt], *fwd, 0)
    for label, spec in REGIONS.items():
        assert reach_in[label] + reach_out[label] <= spec.min_len


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_seqs": 0}, ValueError, "num_seqs"),
        ({"num_seqs": 2, "max_len": 5}, ValueError, "max_len"),
        ({"num_seqs": 2, "noise": 1.0}, ValueError, "noise"),
        ({"num_seqs": 2, "noise": -0.1}, ValueError, "noise"),
        ({"num_seqs": 2, "max_len": 50, "min_len": 60}, ValueError, "min_len"),
        ({"num_seqs": 2.0}, TypeError, "num_seqs"),
        ({"num_seqs": 2, "seed": "0"}, TypeError, "seed"),
    ],
)
def test_bad_arguments(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        make_gene_dataset(**kwargs)
