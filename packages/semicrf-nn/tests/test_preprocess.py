"""Projection, centering, cumulative scores and boundary scores."""

from __future__ import annotations

import torch
from torch import nn

from semicrf_nn.preprocess import (
    center_scores,
    compute_dtype,
    cumulative_scores,
    position_mask,
    prepare_inputs,
    sequence_boundary_scores,
)


def test_center_scores_masked_mean_and_zero_padding() -> None:
    scores = torch.randn(3, 6, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 1])
    out = center_scores(scores, lengths)
    for b in range(3):
        L = int(lengths[b])
        torch.testing.assert_close(out[b, :L], scores[b, :L] - scores[b, :L].mean(0))
        assert (out[b, L:] == 0).all()
    # Padding values never matter.
    garbage = torch.where(position_mask(lengths, 6)[..., None], scores, 1e6)
    torch.testing.assert_close(center_scores(garbage, lengths), out, rtol=0, atol=0)
    x = scores[:, :, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda s: center_scores(s, lengths), (x,))


def test_cumulative_scores_accumulate_in_float64() -> None:
    scores = torch.full((1, 200_000, 1), 0.1, dtype=torch.float32)
    cum = cumulative_scores(scores, torch.float32)
    assert cum.shape == (1, 200_001, 1) and cum.dtype == torch.float32 and cum[0, 0, 0] == 0
    # Every prefix is the float64 sum rounded once to float32.
    torch.testing.assert_close(cum[:, 1:], torch.cumsum(scores.double(), 1).float(), rtol=0, atol=0)
    assert cumulative_scores(scores, torch.float64).dtype == torch.float64


def test_sequence_boundary_scores_placement() -> None:
    pi_start, pi_end = torch.tensor([1.0, 2.0]), torch.tensor([-3.0, 4.0])
    lengths = torch.tensor([4, 1, 2])
    start, end = sequence_boundary_scores(pi_start, pi_end, lengths, 4, torch.float64)
    assert start.shape == end.shape == (3, 4, 2) and start.dtype == torch.float64
    for b in range(3):
        L = int(lengths[b])
        torch.testing.assert_close(start[b, 0], pi_start.double())
        assert (start[b, 1:] == 0).all()
        torch.testing.assert_close(end[b, L - 1], pi_end.double())
        assert end[b].abs().sum() == end[b, L - 1].abs().sum()


def test_compute_dtype() -> None:
    p32, p64 = torch.zeros(1), torch.zeros(1, dtype=torch.float64)
    assert compute_dtype(torch.zeros(1, dtype=torch.bfloat16), p32) == torch.float32
    assert compute_dtype(torch.zeros(1, dtype=torch.float16), p32) == torch.float32
    assert compute_dtype(torch.zeros(1, dtype=torch.float64), p32) == torch.float64
    assert compute_dtype(torch.zeros(1), p64) == torch.float64


def test_prepare_inputs_without_projection_or_centering() -> None:
    hidden = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 3])
    trans, db = torch.randn(3, 3), torch.randn(2, 3)
    inputs = prepare_inputs(
        hidden, lengths, projection=None, transition=trans, duration_bias=db, center=False
    )
    expected = torch.where(position_mask(lengths, 5)[..., None], hidden, 0.0)
    torch.testing.assert_close(inputs.scores, expected)
    torch.testing.assert_close(inputs.cum_scores[:, 1:], expected.double().cumsum(1).float())
    assert inputs.proj_start is None and inputs.proj_end is None


def test_prepare_inputs_boundary_projections_and_autocast() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 6)
    lengths = torch.tensor([5, 2])
    proj, ps_layer, pe_layer = (
        nn.Linear(6, 3),
        nn.Linear(6, 3, bias=False),
        nn.Linear(6, 3, bias=False),
    )
    kw = {
        "projection": proj,
        "transition": torch.randn(3, 3),
        "duration_bias": torch.randn(2, 3),
        "center": True,
        "proj_start_layer": ps_layer,
        "proj_end_layer": pe_layer,
        "pi_start": torch.randn(3),
        "pi_end": torch.randn(3),
    }
    inputs = prepare_inputs(hidden, lengths, **kw)
    mask = position_mask(lengths, 5)[..., None]
    start, end = sequence_boundary_scores(kw["pi_start"], kw["pi_end"], lengths, 5, torch.float32)
    torch.testing.assert_close(inputs.proj_start, torch.where(mask, ps_layer(hidden), 0.0) + start)
    torch.testing.assert_close(inputs.proj_end, torch.where(mask, pe_layer(hidden), 0.0) + end)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = prepare_inputs(hidden.bfloat16(), lengths, **kw)
    assert low.cum_scores.dtype == torch.float32
    torch.testing.assert_close(low.cum_scores, inputs.cum_scores, rtol=0.05, atol=0.05)
