"""SemiMarkovCRFHead against brute-force enumeration, across options and backends."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from _nn_helpers import H, brute, feature_dim, make_batch, make_head
from hypothesis import given, settings
from hypothesis import strategies as st

from semicrf_kernels.testing.brute_force import score_segmentation
from semicrf_nn import (
    CallableDuration,
    GeometricDuration,
    NegativeBinomialDuration,
    PoissonDuration,
    Segment,
    SemiMarkovCRFHead,
    UniformDuration,
    ViterbiResult,
    labels_to_segment_lists,
)

BACKENDS = ["streaming", "exact", "binary_tree_sharded"]

# Each entry: (name, C, K, T, head kwargs). Sizes stay tiny: enumeration is exponential.
OPTIONS = [
    ("plain", 3, 3, 5, {}),
    ("K1", 3, 1, 5, {}),
    ("K2", 2, 2, 6, {}),
    ("K_gt_T", 2, 7, 4, {}),
    ("C1", 1, 3, 6, {}),
    ("no_centering", 3, 3, 5, {"center_emissions": False}),
    ("duration_dependent", 3, 3, 5, {"duration_dependent_transitions": True}),
    ("mask", 3, 2, 5, {"transition_mask": torch.tensor([[True, False, True], [True, True, False], [False, True, True]])}),
    ("sequence_boundaries", 3, 3, 5, {"use_sequence_boundaries": True}),
    ("boundary_projections", 3, 3, 5, {"use_boundary_projections": True}),
    ("both_boundaries", 2, 3, 5, {"use_boundary_projections": True, "use_sequence_boundaries": True}),
    ("geometric", 3, 3, 5, {"duration_distribution": "geometric"}),
    ("negbin", 3, 3, 5, {"duration_distribution": "negative_binomial"}),
    ("poisson", 3, 3, 5, {"duration_distribution": "poisson"}),
    ("uniform", 3, 3, 5, {"duration_distribution": "uniform"}),
    ("everything", 3, 3, 5, {
        "duration_dependent_transitions": True,
        "transition_mask": torch.tensor([[True, True, False], [True, True, True], [True, False, True]]),
        "use_boundary_projections": True,
        "use_sequence_boundaries": True,
        "duration_distribution": "poisson",
    }),
]  # fmt: skip
IDS = [o[0] for o in OPTIONS]


@pytest.mark.parametrize(("name", "C", "K", "T", "kwargs"), OPTIONS, ids=IDS)
def test_partition_and_viterbi_match_enumeration(name, C, K, T, kwargs) -> None:
    head = make_head(C, K, **kwargs)
    hidden, lengths = make_batch(3, T, feature_dim(head), seed=len(name))
    truth, _ = brute(head, hidden, lengths)
    for backend in BACKENDS:
        out = head(hidden, lengths, backend=backend)
        torch.testing.assert_close(
            out["partition"], truth.log_partition, rtol=1e-9, atol=1e-9, msg=backend
        )
        torch.testing.assert_close(
            head.decode(hidden, lengths, backend=backend), truth.viterbi_score, rtol=1e-9, atol=1e-9
        )
    result = head.decode_with_traceback(hidden, lengths)
    assert isinstance(result, ViterbiResult)
    torch.testing.assert_close(result.scores, truth.viterbi_score, rtol=1e-9, atol=1e-9)
    for b, segs in enumerate(result.segments):
        assert [(s.start, s.end, s.label) for s in segs] == truth.viterbi_segments[b]
        assert math.isclose(
            sum(s.score for s in segs), float(result.scores[b]), rel_tol=1e-9, abs_tol=1e-9
        )


@pytest.mark.parametrize(("name", "C", "K", "T", "kwargs"), OPTIONS, ids=IDS)
def test_loss_is_the_gold_probability(name, C, K, T, kwargs) -> None:
    head = make_head(C, K, **kwargs)
    hidden, lengths = make_batch(3, T, feature_dim(head), seed=7 + len(name))
    truth, (cum, trans, db, ps, pe) = brute(head, hidden, lengths)
    # Gold: the Viterbi path of a perturbed model, so it is inside the constraints.
    other = make_head(C, K, **kwargs)
    other.load_state_dict(head.state_dict())
    with torch.no_grad():
        other.projection.weight.add_(torch.randn_like(other.projection.weight))
    gold = other.decode_with_traceback(hidden, lengths).segments
    labels = torch.zeros(3, T, dtype=torch.int64)
    for b, segs in enumerate(gold):
        for s in segs:
            labels[b, s.start : s.end + 1] = s.label
    for backend in BACKENDS:
        nll = head.compute_loss(hidden, lengths, labels, backend=backend, reduction="none")
        nll_seg = head.compute_loss(
            hidden, lengths, segments=gold, backend=backend, reduction="none"
        )
        assert (nll >= -1e-10).all() and (nll_seg >= -1e-10).all()
        for b in range(3):
            L = int(lengths[b])
            split = [
                (s.start, s.end, s.label)
                for s in labels_to_segment_lists(labels[b : b + 1], lengths[b : b + 1], K)[0]
            ]
            for value, segs in (
                (nll[b], split),
                (nll_seg[b], [(s.start, s.end, s.label) for s in gold[b]]),
            ):
                p = math.exp(
                    score_segmentation(
                        cum[b, : L + 1],
                        trans,
                        db,
                        segs,
                        None if ps is None else ps[b],
                        None if pe is None else pe[b],
                    )
                    - float(truth.log_partition[b])
                )
                assert math.isclose(
                    math.exp(-float(value.detach())), p, rel_tol=1e-8, abs_tol=1e-12
                )


def test_reductions() -> None:
    head = make_head(3, 3)
    hidden, lengths = make_batch(4, 6, H, seed=2)
    labels = torch.randint(0, 3, (4, 6))
    per = head.compute_loss(hidden, lengths, labels, reduction="none")
    assert per.shape == (4,)
    torch.testing.assert_close(head.compute_loss(hidden, lengths, labels), per.mean())
    torch.testing.assert_close(
        head.compute_loss(hidden, lengths, labels, reduction="sum"), per.sum()
    )
    with pytest.raises(ValueError, match="reduction"):
        head.compute_loss(hidden, lengths, labels, reduction="avg")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([0.1, 3.0, 30.0]),
    K=st.integers(1, 4),
    long_bias=st.sampled_from([0.0, 50.0, -50.0]),
)
def test_nll_is_nonnegative_for_any_parameters(seed, scale, K, long_bias) -> None:
    torch.manual_seed(seed)
    C, T = 3, 6
    head = make_head(C, K, scale=scale, duration_dependent_transitions=seed % 2 == 0)
    with torch.no_grad():
        head.duration_dist.bias[-1] += long_bias  # the longest duration hugely (dis)favoured
    hidden, lengths = make_batch(3, T, H, seed=seed)
    labels = torch.randint(0, C, (3, T))
    labels[1] = 0  # one long run: split into K-pieces
    nll = head.compute_loss(hidden, lengths, labels, reduction="none")
    assert torch.isfinite(nll).all()
    assert (nll >= -1e-9 * (1 + nll.abs())).all()


def test_huge_duration_bias_does_not_make_the_loss_negative() -> None:
    """The earlier implementation's case: bias 50 on duration 6, all-0 labels, T=5, K=8."""
    head = SemiMarkovCRFHead(2, 8, init_scale=0.0).double()
    with torch.no_grad():
        head.duration_dist.bias[5, 0] = 50.0
        head.duration_dist.bias[4, 0] = 20.0
    hidden = torch.randn(1, 5, 2, dtype=torch.float64)
    lengths = torch.tensor([5])
    labels = torch.zeros(1, 5, dtype=torch.int64)
    nll = head.compute_loss(hidden, lengths, labels)
    truth, (cum, trans, db, *_) = brute(head, hidden, lengths)
    expected = float(truth.log_partition[0]) - score_segmentation(cum[0], trans, db, [(0, 4, 0)])
    # The NLL is a difference of two numbers ~50 that agree to 1e-8: compare it to a few ulps of
    # log Z (each path rounds its log-sum-exp differently), not to a relative 1e-10 of the tiny
    # difference, which is below float64's resolution at 50.
    ulps = 4 * math.ulp(float(truth.log_partition[0]))
    assert nll >= 0 and math.isclose(float(nll.detach()), expected, rel_tol=1e-10, abs_tol=ulps)


def test_padding_and_batch_composition_do_not_matter() -> None:
    head = make_head(3, 3, use_boundary_projections=True, use_sequence_boundaries=True)
    hidden, _ = make_batch(3, 7, H, seed=4)
    lengths = torch.tensor([7, 3, 5])
    labels = torch.randint(0, 3, (3, 7))
    garbage = hidden.clone()
    pad = (torch.arange(7)[None, :] >= lengths[:, None])[..., None]
    garbage = torch.where(pad, torch.randn_like(hidden) * 100, hidden)
    labels_garbage = torch.where(pad[..., 0], torch.full_like(labels, -100), labels)
    batch = head.compute_loss(hidden, lengths, labels, reduction="none")
    torch.testing.assert_close(
        head.compute_loss(garbage, lengths, labels_garbage, reduction="none"), batch
    )
    for b in range(3):
        L = int(lengths[b])
        alone = head.compute_loss(
            hidden[b : b + 1, :L], lengths[b : b + 1], labels[b : b + 1, :L], reduction="none"
        )
        torch.testing.assert_close(alone[0], batch[b])
    # Gradients at padding are exactly zero.
    x = garbage.clone().requires_grad_()
    head.compute_loss(x, lengths, labels_garbage).backward()
    assert (x.grad[pad.expand_as(x)] == 0).all()


def test_gradients_reach_every_parameter_and_the_encoder() -> None:
    head = SemiMarkovCRFHead(
        3, 3, hidden_dim=H, duration_distribution="negative_binomial", use_boundary_projections=True,
        use_sequence_boundaries=True, transition_mask=torch.tensor([[True, True, False], [True, True, True], [True, True, True]]),
    ).double()  # fmt: skip
    encoder = torch.nn.Linear(5, H).double()
    x = torch.randn(2, 6, 5, dtype=torch.float64)
    lengths = torch.tensor([6, 4])
    labels = torch.tensor([[0, 0, 1, 1, 2, 2], [1, 1, 1, 0, 0, 0]])
    head.compute_loss(encoder(x), lengths, labels).backward()
    for module in (head, encoder):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            if name == "transition_raw":
                assert p.grad[0, 2] == 0  # forbidden: never trained
                assert p.grad.abs().sum() > 0
            else:
                assert p.grad.abs().sum() > 0, name


def test_loss_gradcheck_through_the_streaming_kernels() -> None:
    head = make_head(2, 3, duration_dependent_transitions=True, use_boundary_projections=True)
    hidden, lengths = make_batch(2, 5, H, seed=9)
    labels = torch.tensor([[0, 0, 1, 1, 1], [1, 0, 0, 1, 1]])
    x = hidden.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda h: head.compute_loss(h, lengths, labels, backend="streaming"), (x,)
    )


def test_streaming_and_exact_gradients_agree() -> None:
    grads = {}
    for backend in ("streaming", "exact"):
        torch.manual_seed(0)
        head = make_head(3, 3, duration_dependent_transitions=True, use_sequence_boundaries=True)
        hidden, lengths = make_batch(3, 6, H, seed=1)
        labels = torch.randint(0, 3, (3, 6))
        head.compute_loss(hidden, lengths, labels, backend=backend).backward()
        grads[backend] = {n: p.grad.clone() for n, p in head.named_parameters()}
    for name, g in grads["streaming"].items():
        torch.testing.assert_close(g, grads["exact"][name], rtol=1e-8, atol=1e-10, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_encoder_outputs_run_in_float32(dtype) -> None:
    head = SemiMarkovCRFHead(3, 3, hidden_dim=H)
    hidden = torch.randn(2, 5, H).to(dtype).requires_grad_()
    lengths = torch.tensor([5, 3])
    out = head(hidden, lengths)
    assert out["partition"].dtype == torch.float32 and out["cum_scores"].dtype == torch.float32
    loss = head.compute_loss(hidden, lengths, torch.zeros(2, 5, dtype=torch.int64))
    assert loss.dtype == torch.float32 and loss >= 0
    loss.backward()
    assert hidden.grad.dtype == dtype and torch.isfinite(hidden.grad.float()).all()
    # Same numbers as the float64 model of the same (rounded) inputs.
    ref = SemiMarkovCRFHead(3, 3, hidden_dim=H).double()
    ref.load_state_dict(head.state_dict())
    torch.testing.assert_close(
        out["partition"].double(),
        ref(hidden.detach().double(), lengths)["partition"],
        rtol=1e-5,
        atol=1e-5,
    )


def test_float64_inputs_give_float64_results() -> None:
    head = SemiMarkovCRFHead(3, 2, hidden_dim=H)  # float32 parameters
    out = head(torch.randn(2, 4, H, dtype=torch.float64), torch.tensor([4, 2]))
    assert out["partition"].dtype == torch.float64


def test_forbidden_gold_raises_or_gives_inf() -> None:
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[0, 1] = False
    head = make_head(3, 2, transition_mask=mask)
    hidden, _ = make_batch(2, 5, H, seed=3)
    lengths = torch.tensor([5, 5])
    labels = torch.tensor([[2, 2, 1, 1, 1], [2, 0, 0, 1, 1]])  # sequence 1 uses 0 -> 1
    with pytest.raises(ValueError, match=r"sequence 1 .*transition 0 -> 1"):
        head.compute_loss(hidden, lengths, labels)
    head.validate = False
    nll = head.compute_loss(hidden, lengths, labels, reduction="none")
    assert math.isfinite(float(nll[0].detach())) and nll[1] == math.inf
    x = hidden.clone().requires_grad_()
    head.compute_loss(x, lengths, labels, reduction="none")[0].backward()
    assert torch.isfinite(x.grad).all()


def test_transition_mask_forbids_and_is_not_trained_or_penalised() -> None:
    mask = torch.tensor([[True, False], [True, True]])
    head = SemiMarkovCRFHead(2, 2, transition_mask=mask)
    assert head.transition[0, 1] == -math.inf and head.transition_raw[0, 1] == 0
    assert "transition_mask" in dict(head.named_buffers())
    assert "transition_mask" not in dict(head.named_parameters())
    with torch.no_grad():
        head.transition_raw[0, 1] = 5.0  # even if written, it is never used nor penalised
    expected = head.transition_raw[mask].pow(2).sum() + head.duration_dist.bias.pow(2).sum()
    torch.testing.assert_close(head.parameter_penalty(over="parameters"), expected)
    expected = head.transition_raw[mask].pow(2).sum() + head.duration_bias.pow(2).sum()
    torch.testing.assert_close(head.parameter_penalty(), expected)
    result = head.decode_with_traceback(torch.randn(3, 8, 2), torch.tensor([8, 8, 5]))
    for segs in result.segments:
        assert all(not (a.label == 0 and b.label == 1) for a, b in itertools.pairwise(segs))


def test_parameter_penalty_covers_learnable_crf_parameters() -> None:
    head = SemiMarkovCRFHead(
        3, 4, hidden_dim=H, duration_distribution=GeometricDuration(4, 3, learn_rate=False),
        use_boundary_projections=True, use_sequence_boundaries=True, duration_dependent_transitions=True,
    )  # fmt: skip
    with torch.no_grad():
        head.pi_start.fill_(0.5)
        head.pi_end.fill_(-2.0)
    p = 3.0
    expected = (
        head.transition_raw.abs().pow(p).sum()
        + head.proj_start_layer.weight.abs().pow(p).sum()
        + head.proj_end_layer.weight.abs().pow(p).sum()
        + 3 * 0.5**p
        + 3 * 2.0**p
    )  # the fixed geometric rate and the emission projection are not penalised
    torch.testing.assert_close(head.parameter_penalty(p, over="parameters"), expected)
    learned = SemiMarkovCRFHead(
        3, 4, duration_distribution=NegativeBinomialDuration(4, 3, init_log_r=0.5)
    )
    expected = learned.transition_raw.pow(2).sum() + 3 * 0.5**2
    torch.testing.assert_close(learned.parameter_penalty(over="parameters"), expected)
    learned.parameter_penalty(over="parameters").backward()
    assert learned.transition_raw.grad is not None and learned.duration_dist.log_r.grad is not None
    with pytest.raises(ValueError, match="p must be"):
        head.parameter_penalty(0)
    with pytest.raises(ValueError, match="over must be"):
        head.parameter_penalty(over="weights")


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5])
def test_parameter_penalty_default_is_the_scores_norms(p: float) -> None:
    # The API contract: ||transition||_p^p + ||duration_bias||_p^p over allowed transitions and
    # finite duration biases, written out element by element.
    K, C = 5, 3
    torch.manual_seed(1)
    mask = torch.tensor([[True, False, True], [True, True, True], [False, True, True]])

    def prior(K_, C_, device):
        bias = torch.linspace(-2.0, 1.0, K_ * C_, device=device).reshape(K_, C_)
        bias[3, 1] = -math.inf  # a forbidden duration: left out, not +inf
        return bias

    for dist in (
        "geometric",
        NegativeBinomialDuration(K, C, init_log_r=0.3),
        CallableDuration(K, C, prior),
    ):
        head = SemiMarkovCRFHead(C, K, duration_distribution=dist, transition_mask=mask, duration_dependent_transitions=True)  # fmt: skip
        with torch.no_grad():
            head.transition_raw.normal_()
        trans, bias = head.transition.detach(), head.duration_bias.detach()
        expected = 0.0
        for k in range(K):
            for i in range(C):
                for j in range(C):
                    if mask[i, j]:
                        expected += abs(float(trans[k, i, j])) ** p
                if math.isfinite(float(bias[k, i])):
                    expected += abs(float(bias[k, i])) ** p
        got = head.parameter_penalty(p)
        assert math.isfinite(float(got.detach()))
        torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=torch.float64))
        got.backward()
        assert head.transition_raw.grad is not None
        assert torch.isfinite(head.transition_raw.grad).all()
        assert (head.transition_raw.grad[:, ~mask] == 0).all()


def test_exposed_parameters_and_repr() -> None:
    head = SemiMarkovCRFHead(
        3, 4, duration_distribution=UniformDuration(4, 3), duration_dependent_transitions=True
    )
    assert head.transition.shape == (4, 3, 3)
    torch.testing.assert_close(head.duration_bias, torch.full((4, 3), -math.log(4)))
    assert "duration_dependent_transitions=True" in repr(head)
    calls = SemiMarkovCRFHead(
        2,
        2,
        duration_distribution=CallableDuration(2, 2, lambda K, C, d: torch.zeros(K, C, device=d)),
    )
    assert calls.duration_bias.shape == (2, 2)
    assert isinstance(
        SemiMarkovCRFHead(2, 3, duration_distribution="poisson").duration_dist, PoissonDuration
    )


def test_forward_dict_feeds_the_public_gold_scorer() -> None:
    from semicrf_nn import score_gold_vectorized

    head = make_head(3, 3, use_boundary_projections=True, use_sequence_boundaries=True)
    hidden, lengths = make_batch(2, 6, H, seed=12)
    labels = torch.randint(0, 3, (2, 6))
    out = head(hidden, lengths)
    gold = score_gold_vectorized(
        out["cum_scores"],
        labels,
        lengths,
        out["transition"],
        out["duration_bias"],
        3,
        out["proj_start"],
        out["proj_end"],
    )
    torch.testing.assert_close(
        out["partition"] - gold, head.compute_loss(hidden, lengths, labels, reduction="none")
    )


def test_decode_with_traceback_limits_and_segments() -> None:
    head = make_head(2, 3)
    hidden, lengths = make_batch(2, 9, H, seed=5)
    with pytest.raises(ValueError, match="max_traceback_length=8"):
        head.decode_with_traceback(hidden, lengths, max_traceback_length=8)
    result = head.decode_with_traceback(hidden, lengths, max_traceback_length=9)
    for b, segs in enumerate(result.segments):
        assert all(isinstance(s, Segment) for s in segs)
        assert segs[0].start == 0 and segs[-1].end == int(lengths[b]) - 1
        assert all(a.end + 1 == b_.start for a, b_ in itertools.pairwise(segs))
        assert all(1 <= s.duration <= 3 for s in segs)


def test_no_allowed_segmentation_is_minus_inf_and_empty() -> None:
    # Label 1 is forbidden for every duration; nothing may enter label 0: no segmentation at all.
    dur = CallableDuration(
        2, 2, lambda K, C, d: torch.tensor([[0.0, -math.inf], [0.0, -math.inf]], device=d)
    )
    mask = torch.tensor([[False, True], [False, True]])
    head = SemiMarkovCRFHead(2, 2, duration_distribution=dur, transition_mask=mask).double()
    hidden = torch.randn(1, 3, 2, dtype=torch.float64)
    lengths = torch.tensor([3])
    for backend in BACKENDS:
        assert head(hidden, lengths, backend=backend)["partition"][0] == -math.inf
    assert head.decode_with_traceback(hidden, lengths).segments == [[]]


def test_edge_memory_threshold_guards_exact_backends() -> None:
    head = SemiMarkovCRFHead(3, 4, edge_memory_threshold=1000)
    hidden, lengths = torch.randn(2, 10, 3), torch.tensor([10, 10])
    for backend in ("exact", "binary_tree_sharded"):
        with pytest.raises(ValueError, match="edge_memory_threshold"):
            head(hidden, lengths, backend=backend)
    head(hidden, lengths, backend="streaming")  # O(KC): no limit


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda h: h(torch.randn(2, 5), torch.tensor([5, 5])), ValueError, "3D"),
        (lambda h: h(torch.randn(2, 5, 7), torch.tensor([5, 5])), ValueError, f"last dimension must be {H}"),
        (lambda h: h(torch.randn(2, 5, H), torch.tensor([5])), ValueError, r"lengths must have shape \(2,\)"),
        (lambda h: h(torch.randn(2, 5, H), torch.tensor([5, 6])), ValueError, r"\[1, T=5\]"),
        (lambda h: h(torch.randn(2, 5, H), torch.tensor([0, 5])), ValueError, r"\[1, T=5\]"),
        (lambda h: h(torch.randn(2, 5, H), torch.tensor([5.0, 5.0])), TypeError, "integer dtype"),
        (lambda h: h(torch.randn(2, 5, H).numpy(), torch.tensor([5, 5])), TypeError, "torch.Tensor"),
        (lambda h: h(torch.full((2, 5, H), math.nan), torch.tensor([5, 5])), ValueError, "NaN"),
        (lambda h: h(torch.randn(2, 5, H), torch.tensor([5, 5]), backend="dp"), ValueError, "backend"),
        (lambda h: h.decode(torch.randn(2, 5, H), torch.tensor([5, 5]), backend="fast"), ValueError, "backend"),
        (lambda h: h.compute_loss(torch.randn(2, 5, H), torch.tensor([5, 3]), torch.tensor([[0, 1, 2, 0, 3], [0] * 5])), ValueError, r"labels\[0, 4\] = 3"),
        (lambda h: h.compute_loss(torch.randn(2, 5, H), torch.tensor([5, 3]), torch.zeros(2, 4, dtype=torch.int64)), ValueError, r"labels must have shape \(2, 5\)"),
        (lambda h: h.compute_loss(torch.randn(2, 5, H), torch.tensor([5, 3]), torch.zeros(2, 5)), TypeError, "integer dtype"),
        (lambda h: h.compute_loss(torch.randn(2, 5, H), torch.tensor([5, 3])), ValueError, "exactly one of labels and segments"),
    ],
)  # fmt: skip
def test_bad_input_raises_clear_errors(call, error, match) -> None:
    head = SemiMarkovCRFHead(3, 3, hidden_dim=H)
    with pytest.raises(error, match=match):
        call(head)


def test_padding_labels_may_be_ignore_index() -> None:
    head = SemiMarkovCRFHead(3, 3, hidden_dim=H)
    labels = torch.tensor([[0, 1, 2, 0, 1], [1, 1, -100, -100, -100]])
    assert torch.isfinite(head.compute_loss(torch.randn(2, 5, H), torch.tensor([5, 2]), labels))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"max_duration": 0}, ValueError, "max_duration"),
        ({"max_duration": 2.0}, TypeError, "max_duration"),
        ({"use_boundary_projections": True}, ValueError, "hidden_dim"),
        (
            {"transition_mask": torch.ones(2, 2, dtype=torch.bool)},
            ValueError,
            r"\(C, C\) = \(3, 3\)",
        ),
        ({"transition_mask": torch.ones(3, 3)}, ValueError, "bool"),
        ({"duration_distribution": "zipf"}, ValueError, "Options"),
        ({"duration_distribution": GeometricDuration(5, 3)}, ValueError, r"\(3, 3\)"),
    ],
)
def test_constructor_errors(kwargs, error, match) -> None:
    args = {"num_classes": 3, "max_duration": 3} | kwargs
    with pytest.raises(error, match=match):
        SemiMarkovCRFHead(**args)


def test_value_checks_can_be_switched_off() -> None:
    head = SemiMarkovCRFHead(3, 3, validate=False)
    # Out-of-range labels at valid positions are the caller's responsibility then; the
    # shape checks still run.
    with pytest.raises(ValueError, match="3D"):
        head(torch.randn(5, 3), torch.tensor([5]))
    assert torch.isfinite(head(torch.randn(1, 5, 3), torch.tensor([5]))["partition"]).all()


@pytest.mark.parametrize("num_warps", [3, 6, 64])
def test_num_warps_must_be_a_power_of_two(num_warps: int) -> None:
    with pytest.raises(
        ValueError, match=f"num_warps must be a power of two in \\[1, 32\\], got {num_warps}"
    ):
        SemiMarkovCRFHead(3, 4, num_warps=num_warps)


def test_num_warps_power_of_two_accepted() -> None:
    assert SemiMarkovCRFHead(3, 4, num_warps=8).num_warps == 8
