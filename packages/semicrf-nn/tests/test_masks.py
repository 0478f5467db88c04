"""Tests of ``masks.py``: ``mask=`` on every head method, and ``decode_labels``."""

from __future__ import annotations

import pytest
import torch
from _nn_helpers import brute, make_batch, make_head

from semicrf_nn import UncertaintySemiMarkovCRFHead


def _mask(lengths, T):
    return torch.arange(T)[None, :] < lengths[:, None]


def test_mask_equals_lengths_on_every_method() -> None:
    head = make_head(3, 3)
    unc = UncertaintySemiMarkovCRFHead(3, 3, hidden_dim=4).double()
    hidden, lengths = make_batch(3, 6, 4, seed=1)
    mask = _mask(lengths, 6)
    labels = torch.randint(0, 3, (3, 6))
    pairs = [
        (lambda **kw: head(hidden, **kw)["partition"]),
        (lambda **kw: head.compute_loss(hidden, labels=labels, reduction="none", **kw)),
        (lambda **kw: head.decode(hidden, **kw)),
        (lambda **kw: head.decode_with_traceback(hidden, **kw).scores),
        (lambda **kw: head.decode_labels(hidden, **kw)),
        (lambda **kw: head.distribution(hidden, **kw).log_partition),
        (lambda **kw: unc.compute_boundary_marginals(hidden, **kw)),
        (lambda **kw: unc.compute_position_marginals(hidden, **kw)),
        (lambda **kw: unc.compute_entropy_streaming(hidden, **kw)),
        (lambda **kw: unc.compute_entropy_exact(hidden, **kw)),
    ]
    for call in pairs:
        a = call(lengths=lengths)
        b = call(mask=mask)
        c = call(lengths=lengths, mask=mask)
        assert torch.equal(a, b) and torch.equal(a, c)
    # Positional lengths still work.
    assert torch.equal(head.decode(hidden, lengths), head.decode(hidden, mask=mask))


def test_decode_labels_is_the_viterbi_segmentation() -> None:
    head = make_head(3, 2, use_boundary_projections=True)
    hidden, lengths = make_batch(4, 5, 4, seed=2)
    got = head.decode_labels(hidden, lengths)
    ref, _ = brute(head, hidden, lengths)
    for b in range(4):
        expected = [-1] * 5
        for s, e, c in ref.viterbi_segments[b]:
            expected[s : e + 1] = [c] * (e - s + 1)
        assert got[b].tolist() == expected


def test_bad_masks() -> None:
    head = make_head(2, 2)
    hidden, _ = make_batch(2, 4, 4, seed=3)
    with pytest.raises(ValueError, match="prefix"):
        head.decode(hidden, mask=torch.tensor([[True, False, True, False], [True] * 4]))
    with pytest.raises(ValueError, match="disagree"):
        head.decode(hidden, torch.tensor([4, 1]), mask=_mask(torch.tensor([4, 2]), 4))
    with pytest.raises(ValueError, match=r"\(batch, T\) = \(2, 4\)"):
        head.decode(hidden, mask=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        head.decode(hidden, mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"lengths .* or mask="):
        head.decode(hidden)
    with pytest.raises(ValueError, match="mask: expected at least one True in every row"):
        head.decode(hidden, mask=torch.tensor([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="mask: expected at least one True"):
        head.distribution(hidden, mask=torch.tensor([[False] * 4, [True] * 4]))


def test_neither_lengths_nor_mask_is_full_length_where_lengths_is_optional() -> None:
    # decode_labels and distribution default lengths to None: like torch-crf without a mask,
    # every sequence is then full length; methods whose lengths is required still raise.
    head = make_head(3, 2)
    hidden, _ = make_batch(3, 5, 4, seed=4)
    full = torch.full((3,), 5)
    assert torch.equal(head.decode_labels(hidden), head.decode_labels(hidden, full))
    assert torch.equal(
        head.distribution(hidden).log_partition, head.distribution(hidden, full).log_partition
    )
    with pytest.raises(ValueError, match=r"lengths .* or mask="):
        head(hidden)
