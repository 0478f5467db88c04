"""to_parts / from_parts / score / hsmm."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import SemiMarkov, from_parts, hsmm, to_parts
from semicrf_semirings import LogSemiring, MaxSemiring, StdSemiring


def _sequence(struct, N):
    """The marked-fence encoding of a structure given as edge indices (s, d, c, c_prev)."""
    seq = [-1] * N
    seq[0] = struct[0][3]
    for s, d, c, _ in struct:
        seq[s + d] = c
    return seq


@pytest.mark.parametrize(("N", "K", "C"), [(6, 4, 3), (5, 2, 2), (4, 6, 1)])
def test_to_parts_encodes_each_structure_and_from_parts_inverts_it(N, K, C, ref, gen):
    structs = ref.structures(N - 1, K, C)
    pick = torch.randint(0, len(structs), (8,), generator=gen).tolist()
    seqs = torch.tensor([_sequence(structs[i], N) for i in pick])
    parts = to_parts(seqs, (C, K))
    assert parts.shape == (8, N - 1, K, C, C) and parts.dtype == torch.long
    shape = (1, N - 1, K, C, C)
    for row, i in enumerate(pick):
        torch.testing.assert_close(parts[row].double(), ref.indicator(shape, [structs[i]], 0)[0])
    back, extra = from_parts(parts)
    assert extra == (C, K)
    torch.testing.assert_close(back, seqs)


def test_to_parts_with_lengths_ignores_fences_past_the_end(ref):
    seq = torch.tensor([[1, -1, 0, 2, 1, 0], [2, 0, -1, -1, -1, -1]])
    lengths = torch.tensor([4, 2])
    parts = to_parts(seq, (3, 4), lengths)
    assert int(parts[0].sum()) == 2 and int(parts[1].sum()) == 1
    assert parts[0, 0, 2, 0, 1] == 1 and parts[0, 2, 1, 2, 0] == 1
    assert parts[1, 0, 1, 0, 2] == 1
    back, _ = from_parts(parts)
    torch.testing.assert_close(back[0, :4], seq[0, :4])
    assert torch.all(back[0, 4:] == -1)


@pytest.mark.parametrize("semiring", [LogSemiring, MaxSemiring], ids=lambda s: s.__name__)
def test_score_of_an_encoding_equals_its_enumerated_score(semiring, ref, gen):
    B, N, K, C = 3, 6, 4, 3
    edge = torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64)
    seqs, expected = [], []
    for b in range(B):
        scores, structs = ref.structure_scores(edge, b, N)
        i = int(torch.randint(0, len(structs), (1,), generator=gen))
        seqs.append(_sequence(structs[i], N))
        expected.append(scores[i])
    parts = to_parts(torch.tensor(seqs), (C, K))
    got = SemiMarkov(semiring).score(edge, parts)
    torch.testing.assert_close(got, torch.stack(expected))


def test_std_score_is_the_product_of_the_selected_potentials(ref, gen):
    B, N, K, C = 2, 5, 3, 2
    edge = torch.rand((B, N - 1, K, C, C), generator=gen, dtype=torch.float64) + 0.5
    structs = ref.structures(N - 1, K, C)
    chosen = [structs[0], structs[-1]]
    parts = to_parts(torch.tensor([_sequence(s, N) for s in chosen]), (C, K))
    got = SemiMarkov(StdSemiring).score(edge, parts)
    for b, st in enumerate(chosen):
        expected = torch.prod(torch.stack([edge[b, s, d, c, p] for s, d, c, p in st]))
        torch.testing.assert_close(got[b], expected)


def test_the_best_structure_scores_the_viterbi_value(gen):
    B, N, K, C = 2, 8, 4, 3
    edge = torch.randn((B, N - 1, K, C, C), generator=gen, dtype=torch.float64)
    lengths = torch.tensor([8, 6])
    model = SemiMarkov(MaxSemiring)
    best = model.marginals(edge, lengths)
    torch.testing.assert_close(model.score(edge, best), model.sum(edge, lengths))
    seq, _ = from_parts(best)
    torch.testing.assert_close(to_parts(seq, (C, K), lengths), best.long())


@pytest.mark.parametrize(
    ("seq", "match"),
    [
        ([[-1, 0, 1]], "start label"),
        ([[0, 3, 1]], "labels in"),
        ([[0, -1, -1, -1, 1]], "longer than K-1"),
    ],
)
def test_to_parts_rejects_bad_sequences(seq, match):
    with pytest.raises(ValueError, match=match):
        to_parts(torch.tensor(seq), (3, 3))


def test_to_parts_type_errors():
    with pytest.raises(TypeError, match="sequence"):
        to_parts(torch.zeros(1, 3), (2, 3))
    with pytest.raises(ValueError, match="extra"):
        to_parts(torch.zeros(1, 3, dtype=torch.long), (2,))
    with pytest.raises(ValueError, match="K"):
        to_parts(torch.zeros(1, 3, dtype=torch.long), (2, 1))


def test_hsmm_matches_its_formula_entry_by_entry(gen):
    B, N, K, C = 2, 4, 3, 3
    init = torch.randn(C, generator=gen)
    trans_z = torch.randn(C, C, generator=gen)
    trans_l = torch.randn(C, K, generator=gen)
    emission = torch.randn(B, N, K, C, generator=gen)
    edges = hsmm(init, trans_z, trans_l, emission)
    assert edges.shape == (B, N, K, C, C)
    for b in range(B):
        for n in range(N):
            for k in range(K):
                for c2 in range(C):
                    for c1 in range(C):
                        expected = trans_z[c1, c2] + trans_l[c2, k] + emission[b, n, k, c2]
                        if n == 0:
                            expected = expected + init[c1]
                        torch.testing.assert_close(edges[b, n, k, c2, c1], expected)
    per_batch = hsmm(init.expand(B, C) * torch.tensor([[1.0], [2.0]]), trans_z, trans_l, emission)
    torch.testing.assert_close(per_batch[1, 0] - edges[1, 0], init.view(1, 1, C).expand(K, C, C))


def _hsmm_forward(init, trans_z, trans_l, emission, positions):
    """A direct HSMM forward algorithm over `positions` positions (log space, loops)."""
    K, C = trans_l.shape[1], trans_z.shape[0]
    alpha = [init.clone()]
    for t in range(1, positions + 1):
        terms = []
        for k in range(1, min(K - 1, t) + 1):
            for c1 in range(C):
                terms.append(alpha[t - k][c1] + trans_z[c1] + trans_l[:, k] + emission[t - k, k])
        alpha.append(torch.logsumexp(torch.stack(terms), 0))
    return torch.logsumexp(alpha[positions], 0)


def test_hsmm_log_partition_equals_a_direct_hsmm_forward(gen):
    B, N, K, C = 3, 9, 4, 3
    init = torch.log_softmax(torch.randn(C, generator=gen, dtype=torch.float64), 0)
    trans_z = torch.log_softmax(torch.randn(C, C, generator=gen, dtype=torch.float64), 1)
    trans_l = torch.log_softmax(torch.randn(C, K, generator=gen, dtype=torch.float64), 1)
    emission = torch.randn(B, N, K, C, generator=gen, dtype=torch.float64)
    edges = hsmm(init, trans_z, trans_l, emission)
    lengths = torch.tensor([N + 1, 6, 2])  # fences: N positions, 5 positions, 1 position
    log_z = SemiMarkov().sum(edges, lengths)
    for b in range(B):
        expected = _hsmm_forward(init, trans_z, trans_l, emission[b], int(lengths[b]) - 1)
        torch.testing.assert_close(log_z[b], expected)


def test_hsmm_rejects_inconsistent_shapes():
    C, K = 3, 4
    ok = (torch.zeros(C), torch.zeros(C, C), torch.zeros(C, K), torch.zeros(2, 5, K, C))
    hsmm(*ok)
    with pytest.raises(ValueError, match="trans_l"):
        hsmm(ok[0], ok[1], torch.zeros(K, C), ok[3])
    with pytest.raises(ValueError, match="trans_z"):
        hsmm(ok[0], torch.zeros(C, C + 1), ok[2], ok[3])
    with pytest.raises(ValueError, match="init"):
        hsmm(torch.zeros(C + 1), ok[1], ok[2], ok[3])
    with pytest.raises(ValueError, match="emission"):
        hsmm(ok[0], ok[1], ok[2], torch.zeros(5, K, C))
    with pytest.raises(TypeError, match="init"):
        hsmm([0.0] * C, ok[1], ok[2], ok[3])
