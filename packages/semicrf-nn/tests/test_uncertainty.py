"""UncertaintySemiMarkovCRFHead: marginals and entropy against enumeration, weighted loss."""

from __future__ import annotations

import math

import pytest
import torch
from _nn_helpers import H, brute, make_batch

from semicrf_kernels import cumulative_scores, semi_crf_streaming_forward
from semicrf_nn import UncertaintySemiMarkovCRFHead

OPTIONS = [
    ("plain", 3, 3, 5, {}),
    ("K1", 3, 1, 5, {}),
    ("K2_no_centering", 2, 2, 6, {"center_emissions": False}),
    ("K_gt_T", 2, 7, 4, {}),
    ("duration_dependent", 3, 3, 5, {"duration_dependent_transitions": True}),
    ("mask", 3, 2, 5, {"transition_mask": torch.tensor([[True, False, True], [True, True, False], [False, True, True]])}),
    ("boundaries", 2, 3, 5, {"use_boundary_projections": True, "use_sequence_boundaries": True}),
    ("negbin", 3, 3, 5, {"duration_distribution": "negative_binomial"}),
    ("poisson", 2, 4, 5, {"duration_distribution": "poisson"}),
    ("uniform", 3, 2, 5, {"duration_distribution": "uniform"}),
    ("everything", 3, 3, 5, {
        "duration_dependent_transitions": True,
        "transition_mask": torch.tensor([[True, True, False], [True, True, True], [True, False, True]]),
        "use_boundary_projections": True,
        "use_sequence_boundaries": True,
        "duration_distribution": "geometric",
    }),
]  # fmt: skip
IDS = [o[0] for o in OPTIONS]


def make_uhead(C, K, scale=0.7, **kwargs) -> UncertaintySemiMarkovCRFHead:
    head = UncertaintySemiMarkovCRFHead(C, K, hidden_dim=H, init_scale=scale, **kwargs).double()
    with torch.no_grad():
        for name, p in head.named_parameters():
            if name != "transition_raw":
                p.add_(torch.randn_like(p) * scale)
    return head


@pytest.mark.parametrize(("name", "C", "K", "T", "kwargs"), OPTIONS, ids=IDS)
def test_marginals_and_entropy_match_enumeration(name, C, K, T, kwargs) -> None:
    head = make_uhead(C, K, **kwargs)
    hidden, lengths = make_batch(3, T, H, seed=3 + len(name))
    truth, _ = brute(head, hidden, lengths)
    for backend in ("streaming", "exact"):
        boundary = head.compute_boundary_marginals(hidden, lengths, backend=backend)
        torch.testing.assert_close(boundary, truth.boundary_marginals, rtol=1e-9, atol=1e-10)
        position = head.compute_position_marginals(hidden, lengths, backend=backend)
        torch.testing.assert_close(position, truth.position_marginals, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(
        head.compute_entropy_streaming(hidden, lengths), truth.entropy, rtol=1e-8, atol=1e-9
    )
    torch.testing.assert_close(
        head.compute_entropy_exact(hidden, lengths), truth.entropy, rtol=1e-8, atol=1e-9
    )


def test_marginal_shapes_padding_and_normalisation() -> None:
    head = make_uhead(4, 3)
    hidden, _ = make_batch(3, 9, H, seed=1)
    lengths = torch.tensor([9, 4, 1])
    boundary = head.compute_boundary_marginals(hidden, lengths)
    position = head.compute_position_marginals(hidden, lengths)
    assert boundary.shape == (3, 9) and position.shape == (3, 9, 4)
    valid = torch.arange(9)[None, :] < lengths[:, None]
    torch.testing.assert_close(boundary[:, 0], torch.ones(3, dtype=torch.float64))
    assert (boundary[~valid] == 0).all() and (position[~valid] == 0).all()
    torch.testing.assert_close(
        position.sum(-1)[valid], torch.ones(int(valid.sum()), dtype=torch.float64)
    )
    assert ((boundary >= 0) & (boundary <= 1)).all()


def test_entropy_streaming_equals_exact_at_moderate_length() -> None:
    """Beyond enumeration: the two exact methods agree (T = 40, variable lengths)."""
    for kwargs in ({}, {"duration_dependent_transitions": True, "use_sequence_boundaries": True}):
        head = make_uhead(3, 5, scale=0.4, **kwargs)
        hidden, lengths = make_batch(3, 40, H, seed=8)
        torch.testing.assert_close(
            head.compute_entropy_streaming(hidden, lengths),
            head.compute_entropy_exact(hidden, lengths),
            rtol=1e-8,
            atol=1e-8,
        )


def test_entropy_exact_is_differentiable() -> None:
    head = make_uhead(2, 3)
    hidden, lengths = make_batch(2, 5, H, seed=2)
    x = hidden.clone().requires_grad_()
    head.compute_entropy_exact(x, lengths).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_entropy_of_a_near_certain_model_is_near_zero() -> None:
    # Without centering: a constant label-0 emission would be centered away.
    head = UncertaintySemiMarkovCRFHead(2, 2, init_scale=0.0, center_emissions=False).double()
    hidden = torch.zeros(1, 4, 2, dtype=torch.float64)
    hidden[0, :, 0] = 60.0  # label 0 everywhere, by far
    with torch.no_grad():
        head.duration_dist.bias[0] = -60.0  # duration 2 only
    H_stream = head.compute_entropy_streaming(hidden, torch.tensor([4]))
    assert 0 <= float(H_stream) < 1e-10
    # With centering the same emissions carry no information: 2 segments, 2 labels each.
    head.center_emissions = True
    torch.testing.assert_close(
        head.compute_entropy_streaming(hidden, torch.tensor([4])),
        torch.tensor([math.log(4.0)], dtype=torch.float64),
    )
    # A flat model over N allowed segmentations has entropy log N.
    flat = UncertaintySemiMarkovCRFHead(2, 2, init_scale=0.0).double()
    for fn in (flat.compute_entropy_streaming, flat.compute_entropy_exact):
        # K=2, L=4: 5 tilings; label choices 2^segments: 2^2 + 3 * 2^3 + 2^4 = 44, plus the
        # start score log 2 (the virtual start label) is the same for all, so the law is uniform.
        torch.testing.assert_close(
            fn(torch.zeros(1, 4, 2, dtype=torch.float64), torch.tensor([4])),
            torch.tensor([math.log(44.0)], dtype=torch.float64),
        )


def test_sequence_uncertainty_definitions() -> None:
    head = make_uhead(3, 3)
    hidden, _ = make_batch(3, 6, H, seed=5)
    lengths = torch.tensor([6, 4, 1])
    truth, _ = brute(head, hidden, lengths)
    L = lengths.double()
    u_h = head.sequence_uncertainty(hidden, lengths, "high_uncertainty")
    torch.testing.assert_close(u_h, truth.entropy / (L * math.log(6)))
    p = truth.boundary_marginals
    expected = torch.zeros(3, dtype=torch.float64)
    for b in range(3):
        n = int(lengths[b])
        if n > 1:
            q = p[b, 1:n]
            expected[b] = (4 * q * (1 - q)).mean()
    torch.testing.assert_close(
        head.sequence_uncertainty(hidden, lengths, "boundary_regions"), expected
    )
    assert ((u_h >= 0) & (u_h <= 1)).all()


@pytest.mark.parametrize("focus_mode", ["high_uncertainty", "boundary_regions"])
def test_uncertainty_weighted_loss(focus_mode) -> None:
    head = make_uhead(3, 3)
    hidden, lengths = make_batch(4, 6, H, seed=6)
    labels = torch.randint(0, 3, (4, 6))
    w = 2.5
    u = head.sequence_uncertainty(hidden, lengths, focus_mode)
    nll = head.compute_loss(hidden, lengths, labels, reduction="none")
    weighted = head.compute_loss_uncertainty_weighted(
        hidden, lengths, labels, w, focus_mode, reduction="none"
    )
    torch.testing.assert_close(weighted, (1 + w * u) * nll)
    torch.testing.assert_close(
        head.compute_loss_uncertainty_weighted(hidden, lengths, labels, w, focus_mode),
        ((1 + w * u) * nll).mean(),
    )
    # u is detached: the gradient is the NLL gradient scaled per sequence.
    x = hidden.clone().requires_grad_()
    head.compute_loss_uncertainty_weighted(
        x, lengths, labels, w, focus_mode, reduction="sum"
    ).backward()
    y = hidden.clone().requires_grad_()
    ((1 + w * u) * head.compute_loss(y, lengths, labels, reduction="none")).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


def test_uncertainty_errors() -> None:
    head = make_uhead(3, 3)
    hidden, lengths = make_batch(2, 5, H, seed=0)
    labels = torch.zeros(2, 5, dtype=torch.int64)
    with pytest.raises(ValueError, match="focus_mode"):
        head.compute_loss_uncertainty_weighted(hidden, lengths, labels, focus_mode="entropy")
    with pytest.raises(ValueError, match="reduction"):
        head.compute_loss_uncertainty_weighted(hidden, lengths, labels, reduction="max")
    with pytest.raises(ValueError, match="uncertainty_weight"):
        head.compute_loss_uncertainty_weighted(hidden, lengths, labels, uncertainty_weight=-1.0)
    with pytest.raises(ValueError, match="backend"):
        head.compute_boundary_marginals(hidden, lengths, backend="dp")
    small = UncertaintySemiMarkovCRFHead(3, 3, hidden_dim=H, edge_memory_threshold=100).double()
    with pytest.raises(ValueError, match="edge_memory_threshold"):
        small.compute_entropy_exact(hidden, lengths)


def _marginals_by_autograd(head, hidden, lengths):
    """Reference: differentiate the public streaming log Z with torch.autograd, as the head did
    before its streaming marginals called the kernels' operators directly."""
    with torch.no_grad():
        inputs = head._prepare(hidden, lengths)
    out = {}
    for wrt in ("scores", "start"):
        scores = inputs.scores.detach().requires_grad_(wrt == "scores")
        ps = inputs.proj_start
        bonus = torch.zeros_like(scores, requires_grad=True)
        if wrt == "start":
            ps = bonus if ps is None else ps + bonus
        log_z = semi_crf_streaming_forward(
            cumulative_scores(scores).to(scores.dtype),
            inputs.transition,
            inputs.duration_bias,
            lengths,
            head.max_duration,
            proj_start=ps,
            proj_end=inputs.proj_end,
        )
        (out[wrt],) = torch.autograd.grad(log_z.sum(), scores if wrt == "scores" else bonus)
    valid = torch.arange(hidden.shape[1])[None, :] < lengths[:, None]
    boundary = torch.where(valid, out["start"].sum(-1), torch.zeros(()).to(out["start"]))
    return boundary.clamp(0.0, 1.0), out["scores"].clamp(0.0, 1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["plain", "K_gt_T", "duration_dependent", "boundaries"])
def test_streaming_marginals_equal_autograd_bitwise(name: str, dtype) -> None:
    _, C, K, T, kwargs = OPTIONS[IDS.index(name)]
    head = make_uhead(C, K, **kwargs).to(dtype)
    hidden, lengths = make_batch(3, T + 2, H, seed=11 + len(name))
    hidden = hidden.to(dtype)
    boundary, position = _marginals_by_autograd(head, hidden, lengths)
    got_boundary = head.compute_boundary_marginals(hidden, lengths, backend="streaming")
    got_position = head.compute_position_marginals(hidden, lengths, backend="streaming")
    assert got_boundary.dtype == dtype and got_position.dtype == dtype
    assert torch.equal(got_boundary, boundary) and torch.equal(got_position, position)


@pytest.mark.parametrize(("use_streaming", "backend"), [(True, "streaming"), (False, "exact")])
def test_use_streaming_is_a_deprecated_alias_of_backend(use_streaming, backend) -> None:
    head = make_uhead(3, 4)
    hidden, lengths = make_batch(2, 7, H, seed=11)
    truth, _ = brute(head, hidden, lengths)
    expected = head.compute_boundary_marginals(hidden, lengths, backend=backend)
    torch.testing.assert_close(expected, truth.boundary_marginals, rtol=1e-9, atol=1e-10)
    with pytest.warns(DeprecationWarning, match=f"backend='{backend}'") as caught:
        got = head.compute_boundary_marginals(hidden, lengths, use_streaming=use_streaming)
    # The warning points at the caller's line, not inside the library.
    assert caught[0].filename == __file__
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # The earlier signature had the flag third, where backend now is.
    with pytest.warns(DeprecationWarning, match="use_streaming"):
        positional = head.compute_boundary_marginals(hidden, lengths, use_streaming)
    torch.testing.assert_close(positional, expected, rtol=0, atol=0)
    # Agreeing with backend is fine; contradicting it is an error naming both.
    with pytest.warns(DeprecationWarning):
        head.compute_boundary_marginals(
            hidden, lengths, backend=backend, use_streaming=use_streaming
        )
    other = "exact" if use_streaming else "streaming"
    with pytest.raises(ValueError, match="contradicts"), pytest.warns(DeprecationWarning):
        head.compute_boundary_marginals(hidden, lengths, backend=other, use_streaming=use_streaming)
    with pytest.raises(TypeError, match="use_streaming must be a bool"):
        head.compute_boundary_marginals(hidden, lengths, use_streaming="yes")


@pytest.mark.parametrize("impossible", ["transitions", "durations"])
def test_impossible_model_every_path_agrees(impossible) -> None:
    # No allowed segmentation at all: log Z = -inf, every entropy path 0 (a distribution over
    # nothing has no uncertainty), every marginal path 0, and never NaN.
    from semicrf_nn import CallableDuration

    C, K = 3, 4
    if impossible == "transitions":
        head = make_uhead(C, K, transition_mask=torch.zeros(C, C, dtype=torch.bool))
    else:
        forbid_all = CallableDuration(
            K, C, lambda K_, C_, dev: torch.full((K_, C_), -math.inf, device=dev)
        )
        head = make_uhead(C, K, duration_distribution=forbid_all)
    hidden, lengths = make_batch(3, 9, H, seed=21)
    assert (head(hidden, lengths)["partition"] == -math.inf).all()
    for entropy in (
        head.compute_entropy_exact(hidden, lengths),
        head.compute_entropy_streaming(hidden, lengths),
    ):
        assert entropy.shape == (3,)
        assert (entropy == 0).all(), entropy
    for backend in ("streaming", "exact", "binary_tree_sharded"):
        boundary = head.compute_boundary_marginals(hidden, lengths, backend=backend)
        position = head.compute_position_marginals(hidden, lengths, backend=backend)
        assert (boundary == 0).all(), (backend, boundary)
        assert (position == 0).all(), (backend, position)
