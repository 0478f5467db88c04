"""Mixed precision: training under ``torch.autocast("cpu", dtype=torch.bfloat16)``.

Under autocast the encoder's and the head's linear layers run in bfloat16; everything after the
emission scores (centering, cumulative sums, the kernels, the gold score) is float32 or float64,
so the loss is a float32 number accumulated in float32 or better, and the gradients of the
float32 parameters are float32. The bf16 run follows the float32 run to bf16 precision:
``eps(bf16) = 2^-8``, and every linear layer rounds its inputs and outputs to it, so the loss
and the gradients agree to that (relative; measured: 0.01 and 0.5 of it).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from semicrf_nn import SemiMarkovCRFHead

C, K, F, H = 4, 5, 6, 16
BF16_EPS = 2.0**-8


class Tagger(nn.Module):
    def __init__(self, **head_kwargs) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(F, H), nn.GELU(), nn.Linear(H, H))
        self.crf = SemiMarkovCRFHead(C, K, hidden_dim=H, **head_kwargs)

    def loss(self, x, lengths, labels):
        return self.crf.compute_loss(self.encoder(x), lengths, labels)


def batch(B: int = 4, T: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    labels = (torch.arange(T) // 3 + torch.randint(0, C, (B, 1), generator=g)) % C
    return x, lengths, labels


def gradient_norm(model: nn.Module) -> float:
    return float(torch.cat([p.grad.double().flatten() for p in model.parameters()]).norm())


@pytest.mark.parametrize(
    "head_kwargs",
    [{}, {"use_boundary_projections": True, "duration_distribution": "poisson"}],
    ids=["default", "projections_poisson"],
)
def test_bf16_autocast_training_tracks_float32(head_kwargs) -> None:
    torch.manual_seed(0)
    mixed = Tagger(**head_kwargs)
    full = copy.deepcopy(mixed)
    opt_mixed = torch.optim.SGD(mixed.parameters(), lr=0.05)
    opt_full = torch.optim.SGD(full.parameters(), lr=0.05)
    x, lengths, labels = batch()
    for step in range(4):
        opt_mixed.zero_grad()
        opt_full.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_mixed = mixed.loss(x, lengths, labels)
        loss_full = full.loss(x, lengths, labels)
        # The loss leaves autocast as a float32 number, finite and a true NLL (>= 0).
        assert loss_mixed.dtype == torch.float32
        assert bool(torch.isfinite(loss_mixed)) and loss_mixed.item() >= 0
        mixed_value, full_value = loss_mixed.item(), loss_full.item()
        assert abs(mixed_value - full_value) <= BF16_EPS * full_value
        loss_mixed.backward()
        loss_full.backward()
        # Errors relative to the whole gradient's norm: some gradients are exactly 0 in float32
        # (the emission bias, which centering cancels) and bf16 rounding noise in bf16.
        scale = gradient_norm(full)
        for (name, p), q in zip(mixed.named_parameters(), full.parameters()):
            assert p.grad.dtype == torch.float32, name
            assert bool(torch.isfinite(p.grad).all()), name
            error = float((p.grad.double() - q.grad.double()).norm())
            assert error <= 4 * BF16_EPS * scale, (step, name, error, scale)
        opt_mixed.step()
        opt_full.step()


def test_bf16_emissions_are_accumulated_in_float32() -> None:
    """bf16 emission scores (as an autocast encoder outputs) give exactly the loss and the
    gradients of the same values in float32: nothing after the emissions runs in bf16."""
    torch.manual_seed(1)
    head = SemiMarkovCRFHead(C, K)  # no projection: the inputs are the emission scores
    _, lengths, labels = batch(seed=2)
    emissions = torch.randn(4, 20, C).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        leaf_mixed = emissions.clone().requires_grad_()
        loss_mixed = head.compute_loss(leaf_mixed, lengths, labels)
        grads_mixed = torch.autograd.grad(loss_mixed, [leaf_mixed, *head.parameters()])
    leaf_full = emissions.float().requires_grad_()
    loss_full = head.compute_loss(leaf_full, lengths, labels)
    grads_full = torch.autograd.grad(loss_full, [leaf_full, *head.parameters()])
    assert loss_mixed.dtype == torch.float32
    assert torch.equal(loss_mixed, loss_full)
    assert grads_mixed[0].dtype == torch.bfloat16
    assert torch.equal(grads_mixed[0], grads_full[0].to(torch.bfloat16))
    for g, e in zip(grads_mixed[1:], grads_full[1:]):
        assert torch.equal(g, e)


def test_decoding_under_autocast_returns_float32() -> None:
    torch.manual_seed(2)
    model = Tagger()
    x, lengths, _ = batch(seed=3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.encoder(x)
        assert hidden.dtype == torch.bfloat16
        scores = model.crf.decode(hidden, lengths)
        result = model.crf.decode_with_traceback(hidden, lengths)
    assert scores.dtype == torch.float32 and bool(torch.isfinite(scores).all())
    torch.testing.assert_close(result.scores, scores, rtol=0, atol=0)
    for b, segments in enumerate(result.segments):
        assert segments[0].start == 0 and segments[-1].end == int(lengths[b]) - 1
        total = sum(s.score for s in segments)
        assert abs(total - float(scores[b])) <= 1e-4 * max(1.0, abs(float(scores[b])))
