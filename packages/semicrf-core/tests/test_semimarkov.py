"""SemiMarkov against brute-force enumeration, marginals, gradients, batching and dispatch."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import SemiMarkov
from semicrf_core.semimarkov import AUTO_TREE_MAX_KC_GPU, AUTO_TREE_MAX_STATES_CPU
from semicrf_semirings import (
    CrossEntropySemiring,
    EntropySemiring,
    KLDivergenceSemiring,
    KMaxSemiring,
    LogSemiring,
    MaxSemiring,
    StdSemiring,
)

ALGORITHMS = {
    "linear": {"use_linear_scan": True},
    "vectorized": {"use_vectorized": True},
    "tree": {"use_linear_scan": False},
    "sharded": {"checkpoint_shards": 64},
    "block_triangular": {"use_block_triangular": True},
    "banded": {"use_banded": True},
    "auto": {},
}
LOG_MAX_ONLY = {"banded"}

# (batch, N, K, C, lengths): odd C, K=2, K > N, C=1, lengths all different, N never required.
CONFIGS = [
    (3, 6, 4, 3, [6, 4, 2]),
    (3, 6, 2, 3, [5, 6, 3]),
    (2, 5, 3, 2, [3, 5]),
    (2, 4, 6, 2, [4, 3]),
    (2, 6, 4, 1, [2, 5]),
    (1, 2, 2, 1, [2]),
]
ZERO_CUT = -5e8  # values below this are the semiring zero (no structure)


def _edges(gen, B, N, K, C, dtype=torch.float64):
    return torch.randn((B, N - 1, K, C, C), generator=gen, dtype=dtype)


def _reference(semiring, scores, q_scores=None):
    """The semiring value of one sequence from its structures' plain log-scores."""
    if semiring is LogSemiring:
        return torch.logsumexp(scores, 0).view(1)
    if semiring is MaxSemiring:
        return scores.max().view(1)
    if semiring is StdSemiring:
        return scores.exp().sum().view(1)
    if semiring is EntropySemiring:
        logp = torch.log_softmax(scores, 0)
        return -(logp.exp() * logp).sum().view(1)
    if semiring in (CrossEntropySemiring, KLDivergenceSemiring):
        logp, logq = torch.log_softmax(scores, 0), torch.log_softmax(q_scores, 0)
        if semiring is CrossEntropySemiring:
            return -(logp.exp() * logq).sum().view(1)
        return (logp.exp() * (logp - logq)).sum().view(1)
    k = semiring.size()  # k-max
    top = torch.sort(scores, descending=True).values[:k]
    return torch.cat([top, torch.full((k - top.numel(),), float("-inf"), dtype=scores.dtype)])


def _pairs(semirings, algorithms):
    """(semiring, algorithm) pairs the algorithm accepts (banded: log and max only)."""
    return [
        pytest.param(s, a, id=f"{s.__name__}-{a}")
        for s in semirings
        for a in algorithms
        if a not in LOG_MAX_ONLY or s in (LogSemiring, MaxSemiring)
    ]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "B{}N{}K{}C{}".format(*c[:4]))
@pytest.mark.parametrize(
    ("semiring", "algorithm"),
    _pairs([LogSemiring, MaxSemiring, StdSemiring, KMaxSemiring(3), EntropySemiring], ALGORITHMS),
)
def test_every_algorithm_matches_enumeration(semiring, algorithm, config, gen, ref):
    B, N, K, C, lens = config
    log_edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor(lens)
    # Std works on potentials, not log-potentials: the same model in linear space.
    edge = log_edge.exp() if semiring is StdSemiring else log_edge
    v = SemiMarkov(semiring).logpartition(edge, lengths, **ALGORITHMS[algorithm])[0]
    assert v.shape == (semiring.size(), B)
    for b in range(B):
        scores, _ = ref.structure_scores(log_edge, b, lens[b])
        expected = _reference(semiring, scores)
        got = v[:, b]
        if semiring.size() > 1 and semiring is not EntropySemiring:
            real = expected > ZERO_CUT
            assert torch.all(got[~real] < ZERO_CUT)
            got, expected = got[real], expected[real]
        elif semiring is EntropySemiring:
            got = EntropySemiring.unconvert(v)[b].view(1)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("config", CONFIGS[:4], ids=lambda c: "B{}N{}K{}C{}".format(*c[:4]))
@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a not in LOG_MAX_ONLY])
@pytest.mark.parametrize(
    "semiring", [CrossEntropySemiring, KLDivergenceSemiring], ids=lambda s: s.__name__
)
def test_two_distribution_semirings_match_enumeration(semiring, algorithm, config, gen, ref):
    B, N, K, C, lens = config
    p, q = _edges(gen, B, N, K, C), _edges(gen, B, N, K, C)
    lengths = torch.tensor(lens)
    got = SemiMarkov(semiring).sum([p, q], lengths, **ALGORITHMS[algorithm])
    for b in range(B):
        sp, _ = ref.structure_scores(p, b, lens[b])
        sq, _ = ref.structure_scores(q, b, lens[b])
        torch.testing.assert_close(got[b].view(1), _reference(semiring, sp, sq))


@pytest.mark.parametrize(
    "semiring",
    [LogSemiring, MaxSemiring, KMaxSemiring(2), EntropySemiring],
    ids=lambda s: s.__name__,
)
def test_enumerate_method_matches_independent_enumeration(semiring, gen, ref):
    B, N, K, C, lens = CONFIGS[0]
    edge = _edges(gen, B, N, K, C)
    v, structs = SemiMarkov(semiring).enumerate(edge, torch.tensor(lens), _raw=True)
    for b in range(B):
        scores, mine = ref.structure_scores(edge, b, lens[b])
        assert len(structs[b]) == len(mine)
        expected = _reference(semiring, scores)
        if semiring is EntropySemiring:
            torch.testing.assert_close(v[1, b].view(1), expected)
        else:
            real = expected > ZERO_CUT
            torch.testing.assert_close(v[:, b][real], expected[real])


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_log_marginals_are_posterior_edge_probabilities(algorithm, gen, ref):
    B, N, K, C, lens = CONFIGS[0]
    edge = _edges(gen, B, N, K, C)
    marg = SemiMarkov(LogSemiring).marginals(edge, torch.tensor(lens), **ALGORITHMS[algorithm])
    assert marg.shape == edge.shape
    for b in range(B):
        scores, structs = ref.structure_scores(edge, b, lens[b])
        probs = torch.softmax(scores, 0)
        expected = torch.einsum("y,y...->...", probs, ref.indicator(edge.shape, structs, b))
        torch.testing.assert_close(marg[b], expected)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_max_marginals_indicate_the_best_structure(algorithm, gen, ref):
    B, N, K, C, lens = CONFIGS[1]
    edge = _edges(gen, B, N, K, C)
    marg = SemiMarkov(MaxSemiring).marginals(edge, torch.tensor(lens), **ALGORITHMS[algorithm])
    for b in range(B):
        scores, structs = ref.structure_scores(edge, b, lens[b])
        best = int(scores.argmax())
        torch.testing.assert_close(marg[b], ref.indicator(edge.shape, structs, b)[best])


@pytest.mark.parametrize("algorithm", ["linear", "tree", "block_triangular"])
def test_marginals_are_probabilities_and_cover_each_position_once(algorithm, gen):
    B, N, K, C = 4, 13, 5, 3
    edge = 2 * _edges(gen, B, N, K, C, dtype=torch.float32)
    lengths = torch.tensor([13, 9, 2, 6])
    marg = SemiMarkov().marginals(edge, lengths, **ALGORITHMS[algorithm])
    assert marg.min() >= 0 and marg.max() <= 1 + 1e-5
    assert torch.all(marg[:, :, 0] == 0)  # duration index 0 is unused
    s = torch.arange(N - 1).view(-1, 1)
    d = torch.arange(K).view(1, -1)
    per_sd = marg.sum((-1, -2))  # (B, N-1, K)
    for t in range(N - 1):
        covers = (s <= t) & (t < s + d)  # segment (s, d) covers position t
        coverage = (per_sd * covers).sum((1, 2))
        expected = (t < lengths - 1).float()
        torch.testing.assert_close(coverage, expected, atol=1e-4, rtol=0)


def test_marginals_equal_finite_differences_of_log_partition(gen):
    B, N, K, C = 2, 7, 4, 3
    edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor([7, 5])
    model = SemiMarkov()
    marg = model.marginals(edge, lengths)
    eps = 1e-6
    idx = torch.randint(0, edge.numel(), (25,), generator=gen)
    for i in idx.tolist():
        plus, minus = edge.clone().view(-1), edge.clone().view(-1)
        plus[i] += eps
        minus[i] -= eps
        fd = (
            model.sum(plus.view_as(edge), lengths).sum()
            - model.sum(minus.view_as(edge), lengths).sum()
        ) / (2 * eps)
        torch.testing.assert_close(marg.view(-1)[i], fd, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(
    ("semiring", "algorithm"),
    _pairs([LogSemiring, EntropySemiring], [a for a in ALGORITHMS if a != "auto"]),
)
def test_gradcheck(semiring, algorithm, gen):
    edge = _edges(gen, 2, 6, 3, 2).requires_grad_(True)
    lengths = torch.tensor([6, 4])
    model = SemiMarkov(semiring)
    assert torch.autograd.gradcheck(
        lambda x: model.sum(x, lengths, **ALGORITHMS[algorithm]), (edge,)
    )


def test_marginals_are_differentiable_when_the_input_requires_grad(gen):
    edge = _edges(gen, 2, 5, 3, 2).requires_grad_(True)
    lengths = torch.tensor([5, 3])
    weights = torch.randn(edge.shape, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: (SemiMarkov().marginals(x, lengths) * weights).sum(), (edge,)
    )


@pytest.mark.parametrize(
    "semiring",
    [LogSemiring, MaxSemiring, KMaxSemiring(4), EntropySemiring],
    ids=lambda s: s.__name__,
)
def test_algorithms_agree_on_larger_inputs(semiring, gen):
    B, N, K, C = 3, 21, 5, 3
    edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor([21, 11, 16])
    model = SemiMarkov(semiring)
    base = model.logpartition(edge, lengths, use_linear_scan=True)[0]
    for name, kw in ALGORITHMS.items():
        if name in LOG_MAX_ONLY and semiring not in (LogSemiring, MaxSemiring):
            continue
        torch.testing.assert_close(model.logpartition(edge, lengths, **kw)[0], base, msg=name)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_each_batch_element_equals_its_value_alone(algorithm, gen):
    B, N, K, C = 4, 10, 4, 3
    edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor([3, 10, 7, 2])
    together = SemiMarkov().sum(edge, lengths, **ALGORITHMS[algorithm])
    for b in range(B):
        L = int(lengths[b])
        alone = SemiMarkov().sum(edge[b : b + 1, : L - 1], **ALGORITHMS[algorithm])
        torch.testing.assert_close(together[b : b + 1], alone)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_edges_past_a_sequence_end_change_nothing_and_get_zero_gradient(algorithm, gen):
    B, N, K, C = 3, 9, 4, 2
    edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor([9, 5, 3])
    s = torch.arange(N - 1).view(1, -1, 1)
    d = torch.arange(K).view(1, 1, -1)
    unused = (s + d > (lengths - 1).view(-1, 1, 1)) | (d == 0)  # (B, N-1, K)
    noisy = torch.where(unused[..., None, None], 50 * torch.randn_like(edge), edge)
    model = SemiMarkov()
    kw = ALGORITHMS[algorithm]
    torch.testing.assert_close(model.sum(noisy, lengths, **kw), model.sum(edge, lengths, **kw))
    marg = model.marginals(noisy, lengths, **kw)
    assert torch.all(marg[unused] == 0)


def test_float32_matches_float64(gen):
    edge = _edges(gen, 2, 16, 5, 3)
    lengths = torch.tensor([16, 9])
    for kw in ALGORITHMS.values():
        v64 = SemiMarkov().sum(edge, lengths, **kw)
        v32 = SemiMarkov().sum(edge.float(), lengths, **kw)
        assert v32.dtype == torch.float32
        torch.testing.assert_close(v32.double(), v64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_accumulated_in_float32(dtype, gen):
    edge = _edges(gen, 2, 6, 3, 2, dtype=torch.float32).to(dtype)
    v = SemiMarkov().sum(edge)
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, SemiMarkov().sum(edge.float()))


def test_caller_tensor_is_never_modified(gen):
    edge = _edges(gen, 2, 6, 3, 2)
    before = edge.clone()
    model = SemiMarkov()
    _, (used,), charts = model.logpartition(edge, force_grad=True)
    assert charts is None
    assert used.requires_grad and not edge.requires_grad
    model.marginals(edge)
    assert not edge.requires_grad and edge.grad is None
    torch.testing.assert_close(edge, before, rtol=0, atol=0)


def test_force_grad_exposes_the_converted_edge_for_gradients(gen):
    edge = _edges(gen, 2, 6, 3, 2)
    v, (conv,), _ = SemiMarkov().logpartition(edge, force_grad=True)
    assert conv.shape == (1, *edge.shape)
    (grad,) = torch.autograd.grad(v.sum(), conv)
    torch.testing.assert_close(grad[0], SemiMarkov().marginals(edge))


def test_marginals_of_a_list_input_are_a_list(gen):
    p, q = _edges(gen, 2, 5, 3, 2), _edges(gen, 2, 5, 3, 2)
    marg = SemiMarkov(KLDivergenceSemiring).marginals([p, q])
    assert isinstance(marg, list) and len(marg) == 2
    assert marg[0].shape == p.shape
    # KL(P||P) is 0 with zero gradient in p's direction at q = p.
    same = SemiMarkov(KLDivergenceSemiring).marginals([p, p.clone()])
    torch.testing.assert_close(same[0] + same[1], torch.zeros_like(p), atol=1e-9, rtol=0)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_forbidden_edges_give_no_nan(algorithm, gen):
    B, N, K, C = 3, 8, 4, 3
    edge = _edges(gen, B, N, K, C, dtype=torch.float32)
    edge[:, :, :, 0, 1] = float("-inf")  # label 1 -> 0 forbidden
    edge[:, 0, :, :, 1:] = -1e9  # start scores only in slot 0, as the nn layer builds them
    edge[2] = float("-inf")  # a sequence with no allowed structure
    lengths = torch.tensor([8, 5, 4])
    model = SemiMarkov()
    v = model.sum(edge, lengths, **ALGORITHMS[algorithm])
    marg = model.marginals(edge, lengths, **ALGORITHMS[algorithm])
    assert not torch.isnan(v).any() and not torch.isnan(marg).any()
    assert v[2] < -1e8
    assert torch.all(marg[:2, :, :, 0, 1] == 0)
    ok = SemiMarkov().sum(edge[:2], lengths[:2], use_linear_scan=True)
    torch.testing.assert_close(v[:2], ok)


def test_auto_rule_picks_the_tree_only_where_it_is_faster():
    model = SemiMarkov()

    def choose(*shape, device="cpu"):
        # An expanded scalar (or a meta tensor) has the shape without the memory.
        edge = torch.zeros((), device=device).expand(*shape)
        return model._choose(LogSemiring.convert(edge), None, False, False, False, None)

    assert choose(2, 7, 3, 2, 2) == "tree"
    assert 5 * 4 > AUTO_TREE_MAX_STATES_CPU
    assert choose(1, 3, 6, 4, 4) == "linear"  # many states: the scan on the CPU ...
    assert choose(1, 3, 6, 4, 4, device="meta") == "tree"  # ... the tree on an accelerator
    assert 21 * 10 > AUTO_TREE_MAX_KC_GPU
    assert choose(1, 3, 21, 10, 10, device="meta") == "linear"
    assert choose(64, 40000, 4, 3, 3) == "linear"  # the tree would need too much memory
    assert choose(64, 40000, 4, 3, 3, device="meta") == "linear"
    assert (
        model._choose(
            LogSemiring.convert(torch.zeros(2, 7, 3, 2, 2)), True, False, False, False, None
        )
        == "linear"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"use_banded": True, "use_block_triangular": True}, "at most one"),
        ({"use_vectorized": True, "use_linear_scan": False}, "use_vectorized"),
        ({"use_banded": True, "use_linear_scan": True}, "tree algorithm"),
        ({"checkpoint_shards": 0}, "checkpoint_shards"),
        ({"checkpoint_shards": 10, "use_linear_scan": True}, "tree algorithm"),
    ],
)
def test_contradictory_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SemiMarkov().logpartition(torch.zeros(1, 3, 3, 2, 2), **kwargs)


@pytest.mark.parametrize(
    "semiring", [StdSemiring, KMaxSemiring(2), EntropySemiring], ids=lambda s: s.__name__
)
def test_banded_rejects_semirings_other_than_log_and_max(semiring):
    with pytest.raises(ValueError, match="LogSemiring and MaxSemiring"):
        SemiMarkov(semiring).logpartition(torch.zeros(1, 3, 3, 2, 2), use_banded=True)


def test_sum_raw_and_unconverted(gen):
    edge = _edges(gen, 2, 6, 3, 2)
    model = SemiMarkov(KMaxSemiring(3))
    raw = model.sum(edge, _raw=True)
    assert raw.shape == (3, 2)
    torch.testing.assert_close(model.sum(edge), raw[0])
    torch.testing.assert_close(raw[0], SemiMarkov(MaxSemiring).sum(edge))
    assert torch.all(raw[0] >= raw[1]) and torch.all(raw[1] >= raw[2])


@pytest.mark.parametrize("algorithm", ["linear", "tree", "auto"])
def test_raw_marginals_stack_one_per_channel(algorithm, gen, ref):
    B, N, K, C, lens = CONFIGS[1]
    edge = _edges(gen, B, N, K, C)
    lengths = torch.tensor(lens)
    opts = ALGORITHMS[algorithm]
    for semiring in (LogSemiring, MaxSemiring):
        raw = SemiMarkov(semiring).marginals(edge, lengths, _raw=True, **opts)
        assert raw.shape == (1, *edge.shape)
        torch.testing.assert_close(raw[0], SemiMarkov(semiring).marginals(edge, lengths, **opts))
    # k-max: channel j marks the edges of the j-th best structure (pytorch-struct's use).
    k = 3
    raw = SemiMarkov(KMaxSemiring(k)).marginals(edge, lengths, _raw=True, **opts)
    assert raw.shape == (k, *edge.shape) and raw.dtype == edge.dtype
    for b in range(B):
        scores, structs = ref.structure_scores(edge, b, lens[b])
        order = torch.sort(scores, descending=True)
        indicators = ref.indicator(edge.shape, structs, b)
        for j in range(k):
            torch.testing.assert_close(raw[j, b], indicators[int(order.indices[j])])
    # Other semirings: the shape, and the differentiable path.
    x = edge.clone().requires_grad_(True)
    raw = SemiMarkov(EntropySemiring).marginals(x, lengths, _raw=True, **opts)
    assert raw.shape == (2, *edge.shape) and raw.requires_grad
    with pytest.raises(TypeError, match="_raw"):
        SemiMarkov().marginals(edge, lengths, _raw="yes")


@pytest.mark.parametrize("scale", [1e10, 1e30])
@pytest.mark.parametrize(("semiring", "algorithm"), _pairs([LogSemiring, MaxSemiring], ALGORITHMS))
def test_every_algorithm_agrees_at_large_magnitudes(semiring, algorithm, scale, gen, ref):
    # The semiring zero must stay absorbing next to potentials of any size: a finite zero
    # (-1e9) plus a 1e10 edge looks like a real structure to the tree algorithms.
    B, N, K, C, lens = 3, 7, 3, 3, [7, 5, 2]
    edge = _edges(gen, B, N, K, C) * scale
    edge[0, 1, 1, 0, :] = float("-inf")  # some forbidden edges too
    lengths = torch.tensor(lens)
    got = SemiMarkov(semiring).sum(edge, lengths, **ALGORITHMS[algorithm])
    for b in range(B):
        scores, _ = ref.structure_scores(edge, b, lens[b])
        want = torch.logsumexp(scores, 0) if semiring is LogSemiring else scores.max()
        assert torch.isfinite(got[b])
        torch.testing.assert_close(got[b], want, rtol=1e-12, atol=0)
    if semiring is LogSemiring and algorithm in ("linear", "tree"):
        marg = SemiMarkov(semiring).marginals(edge, lengths, **ALGORITHMS[algorithm])
        assert torch.isfinite(marg).all() and marg.min() >= 0


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_impossible_input_gives_minus_infinity_and_zero_marginals(algorithm, gen):
    # Every edge forbidden: no structure, log Z = -inf exactly (docs/conventions.md section 6),
    # and the marginals of every algorithm are 0, never NaN.
    B, N, K, C, lens = 2, 6, 3, 2, [6, 4]
    edge = torch.full((B, N - 1, K, C, C), float("-inf"), dtype=torch.float64)
    lengths = torch.tensor(lens)
    opts = ALGORITHMS[algorithm]
    for semiring in (LogSemiring, MaxSemiring):
        assert (SemiMarkov(semiring).sum(edge, lengths, **opts) == float("-inf")).all()
        marg = SemiMarkov(semiring).marginals(edge, lengths, **opts)
        assert (marg == 0).all()
    if algorithm != "banded":
        entropy = SemiMarkov(EntropySemiring).sum(edge, lengths, **opts)
        assert (entropy == 0).all()
