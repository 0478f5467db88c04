"""The demo's models: grammar mask, encoder receptive field, losses, decoding, marginals."""

from __future__ import annotations

import itertools

import pytest
import torch

from flash_semicrf.demo.data import GRAMMAR, LONGEST_REGION, make_gene_dataset
from flash_semicrf.demo.metrics import label_runs
from flash_semicrf.demo.model import Encoder, SemiCRFTagger, SoftmaxTagger, grammar_mask


@pytest.fixture(scope="module")
def data():
    return make_gene_dataset(5, max_len=130, min_len=60, seed=11)


def test_grammar_mask() -> None:
    full = grammar_mask(3, LONGEST_REGION)
    allowed = {(i, j) for i in range(3) for j in range(3) if full[i, j]}
    assert allowed == set(GRAMMAR)  # no self-transition: every region is one segment
    short = grammar_mask(3, LONGEST_REGION - 1)
    assert {(i, j) for i in range(3) for j in range(3) if short[i, j]} == set(GRAMMAR) | {
        (c, c) for c in range(3)
    }
    assert full.dtype == torch.bool and full.shape == (3, 3)


def test_encoder_receptive_field() -> None:
    torch.manual_seed(0)
    enc = Encoder(4, 8).double()
    x = torch.randn(1, 150, 4, dtype=torch.float64)
    y = enc(x)
    assert y.shape == (1, 150, 8)
    x2 = x.clone()
    x2[0, 75] += 1.0
    changed = (enc(x2) - y).abs().amax(-1)[0] > 0
    where = changed.nonzero()[:, 0]
    # Width 9 + 4 * (2 + 4 + 8) = 65: 32 positions on each side.
    assert where.min().item() == 75 - 32 and where.max().item() == 75 + 32


def test_softmax_loss_and_predict(data) -> None:
    torch.manual_seed(0)
    model = SoftmaxTagger(3, hidden=8)
    x, lengths, labels = data.inputs, data.lengths, data.labels
    logits = model(x)
    assert logits.shape == (5, 130, 3)
    # Independent: mean over valid positions of -log softmax at the gold label.
    terms = [
        -torch.log_softmax(logits[b, t], -1)[labels[b, t]]
        for b in range(5)
        for t in range(int(lengths[b]))
    ]
    assert torch.allclose(model.loss(x, lengths, labels), torch.stack(terms).mean(), atol=1e-6)
    pred = model.predict(x, lengths)
    assert [len(p) for p in pred] == lengths.tolist()
    for b, p in enumerate(pred):
        assert p == logits[b, : int(lengths[b])].argmax(-1).tolist()


@pytest.mark.parametrize("max_duration", [LONGEST_REGION, 7])
def test_semicrf_loss_decode_marginals(data, max_duration: int) -> None:
    torch.manual_seed(0)
    model = SemiCRFTagger(3, max_duration, hidden=8)
    x, lengths, labels = data.inputs, data.lengths, data.labels
    loss = model.loss(x, lengths, labels)
    nll = model.crf.compute_loss(model.encoder(x), lengths, labels, reduction="sum")
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.allclose(loss, nll / lengths.sum(), rtol=1e-5)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)

    pred = model.predict(x, lengths)
    assert [len(p) for p in pred] == lengths.tolist()
    for p in pred:
        for (_, _, prev), (_, _, nxt) in itertools.pairwise(label_runs(p)):
            assert (prev, nxt) in GRAMMAR

    marg = model.boundary_marginals(x, lengths)
    assert marg.shape == (5, 130)
    assert ((marg >= 0) & (marg <= 1)).all()
    assert torch.allclose(marg[:, 0], torch.ones(5))
    for b in range(5):
        assert (marg[b, int(lengths[b]) :] == 0).all()


def test_semicrf_decode_follows_viterbi_segments(data) -> None:
    torch.manual_seed(1)
    model = SemiCRFTagger(3, LONGEST_REGION, hidden=8)
    x, lengths = data.inputs, data.lengths
    result = model.crf.decode_with_traceback(model.encoder(x), lengths)
    pred = model.predict(x, lengths)
    for b, segs in enumerate(result.segments):
        assert label_runs(pred[b]) == [(s.start, s.end, s.label) for s in segs]
