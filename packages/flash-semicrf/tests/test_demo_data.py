"""The synthetic gene data set: shapes, determinism, label structure."""

from __future__ import annotations

import itertools

import pytest
import torch

from flash_semicrf.demo.data import EXON, INTERGENIC, INTRON, REGIONS, make_gene_dataset
from flash_semicrf.demo.metrics import label_runs


def test_shapes_and_padding() -> None:
    data = make_gene_dataset(12, max_len=150, seed=3)
    assert data.inputs.shape == (12, 150, 4)
    assert data.labels.shape == (12, 150)
    assert ((data.lengths >= 112) & (data.lengths <= 150)).all()
    for b in range(12):
        L = int(data.lengths[b])
        assert torch.equal(data.inputs[b, :L].sum(-1), torch.ones(L))  # one-hot bases
        assert data.inputs[b, L:].abs().sum() == 0


def test_deterministic_by_seed() -> None:
    a, b = make_gene_dataset(5, 100, seed=7), make_gene_dataset(5, 100, seed=7)
    c = make_gene_dataset(5, 100, seed=8)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


def test_region_grammar_and_lengths() -> None:
    data = make_gene_dataset(40, max_len=400, noise=0.0, seed=1)
    allowed = {(INTERGENIC, EXON), (EXON, INTRON), (EXON, INTERGENIC), (INTRON, EXON)}
    for b in range(len(data)):
        L = int(data.lengths[b])
        runs = label_runs(data.labels[b, :L].tolist())
        for (_, _, prev), (_, _, nxt) in itertools.pairwise(runs):
            assert (prev, nxt) in allowed
        for start, end, label in runs[:-1]:  # the last run may be cut by the sequence end
            assert end - start + 1 <= REGIONS[label].max_len
        # Introns carry the splice signals GT ... AG when noise is off.
        bases = data.inputs[b, :L].argmax(-1).tolist()
        for start, end, label in runs[:-1]:
            if label == INTRON and end - start + 1 >= 4:
                assert bases[start : start + 2] == [2, 3] and bases[end - 1 : end + 1] == [0, 2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_seqs": 0}, "num_seqs"),
        ({"num_seqs": 2, "max_len": 5}, "max_len"),
        ({"num_seqs": 2, "noise": 1.0}, "noise"),
        ({"num_seqs": 2, "max_len": 50, "min_len": 60}, "min_len"),
    ],
)
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_gene_dataset(**kwargs)
