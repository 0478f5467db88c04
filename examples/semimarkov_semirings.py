"""SemiMarkov over a pre-computed edge tensor, in the Log, Max, Entropy (and k-max) semirings.

Changes from the original snippet, which does not run as written:
* `edge` and `lengths` are undefined there: a random edge tensor `(batch, N-1, K, C, C)` and
  lengths stand in (lengths count fences: a sequence of L positions has length L + 1; see
  docs/conventions.md section 3, where index d of the edge tensor is the duration, 0 unused).
* `logpartition` returns a 3-tuple `(v, [edge], None)`, not a pair, and `v` is the *converted*
  value `(ssize, batch)`: `semiring.unconvert(v)` (or `SemiMarkov.sum`) gives the `(batch,)`
  result. For the entropy semiring that matters: `v[0]` is not the entropy.
* It adds the k-max semiring and checks every result against a brute-force enumeration of all
  structures (start label, segmentation, labels), written out below.
"""

import itertools
import math

import torch

from flash_semicrf import SemiMarkov
from flash_semicrf.semirings import EntropySemiring, KMaxSemiring, LogSemiring, MaxSemiring

torch.manual_seed(0)
batch, N, K, C = 2, 6, 4, 3  # N fences (N-1 positions); durations 1..K-1
edge = torch.randn(batch, N - 1, K, C, C)  # edge[b, s, d, c_dst, c_src]
lengths = torch.tensor([N, 4])  # fences: 5 and 3 positions

# Log partition function.
crf = SemiMarkov(LogSemiring)
v, _, _ = crf.logpartition(edge, lengths=lengths)
log_Z = LogSemiring.unconvert(v)  # (batch,)

# Viterbi score (max semiring).
crf_max = SemiMarkov(MaxSemiring)
best_score = MaxSemiring.unconvert(crf_max.logpartition(edge, lengths=lengths)[0])

# Entropy of the structure distribution (not available via the streaming API).
crf_ent = SemiMarkov(EntropySemiring)
entropy = EntropySemiring.unconvert(crf_ent.logpartition(edge, lengths=lengths)[0])

# The three best scores (k-max semiring): the converted value holds them, best first.
top3 = SemiMarkov(KMaxSemiring(3)).sum(edge, lengths=lengths, _raw=True)  # (3, batch)

# Posterior edge marginals: the gradient of log Z with respect to the edges.
marginals = crf.marginals(edge, lengths=lengths)  # (batch, N-1, K, C, C)
print("log Z", log_Z.tolist(), "Viterbi", best_score.tolist(), "entropy", entropy.tolist())


# ---- an independent check: enumerate every structure ----
def structures(L):
    """(start label, [(start, duration, label), ...]) for every segmentation of [0, L)."""
    for cuts in itertools.product([False, True], repeat=L - 1):
        bounds = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [L]
        durations = [e - s for s, e in itertools.pairwise(bounds)]
        if max(durations) > K - 1:
            continue
        for labels in itertools.product(range(C), repeat=len(durations)):
            for start_label in range(C):
                yield start_label, list(zip(bounds, durations, labels))


for b in range(batch):
    scores = []
    expected_marginals = torch.zeros(N - 1, K, C, C)
    for start_label, segs in structures(int(lengths[b]) - 1):
        prev, total = start_label, 0.0
        for s, d, c in segs:
            total += float(edge[b, s, d, c, prev])
            prev = c
        scores.append((total, start_label, segs))
    top = max(t for t, _, _ in scores)
    z = sum(math.exp(t - top) for t, _, _ in scores)
    probs = [math.exp(t - top) / z for t, _, _ in scores]
    for p, (_, start_label, segs) in zip(probs, scores):
        prev = start_label
        for s, d, c in segs:
            expected_marginals[s, d, c, prev] += p
            prev = c
    assert abs(top + math.log(z) - float(log_Z[b])) < 1e-4
    assert abs(top - float(best_score[b])) < 1e-4
    assert abs(-sum(p * math.log(p) for p in probs) - float(entropy[b])) < 1e-3
    best3 = sorted((t for t, _, _ in scores), reverse=True)[:3]
    assert torch.allclose(top3[:, b], torch.tensor(best3), atol=1e-4)
    assert torch.allclose(marginals[b], expected_marginals, atol=1e-5)
    print(f"sequence {b}: {len(scores)} structures agree with the enumeration")
print("ok")
