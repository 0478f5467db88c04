"""The streaming API: build cum_scores from projected features, then semi_crf_streaming_forward.

Changes from the original snippet, which does not run as written:
* `hidden`, `W_content`, `transition`, `duration_bias`, `lengths`, `batch`, `T`, `C` and
  `max_duration` are undefined there: random tensors of small sizes stand in for them.
* Zero-centering uses the mean over each sequence's *valid* positions (docs/conventions.md,
  section 2), not `projected.mean(dim=1)`, which would also average the padding.
* It adds the Viterbi score (`semiring="max"`), the Viterbi path (`semi_crf_streaming_viterbi`,
  our addition) and gradients, and checks log Z and the Viterbi score against a brute-force
  enumeration of every segmentation of a short sequence, written out below from the model of
  docs/conventions.md section 1.
"""

import itertools
import math

import torch

from flash_semicrf import semi_crf_streaming_forward, semi_crf_streaming_viterbi

torch.manual_seed(0)
batch, T, hidden_dim, C, max_duration = 2, 7, 16, 3, 4

hidden = torch.randn(batch, T, hidden_dim)
W_content = torch.randn(hidden_dim, C) * 0.3
transition = torch.randn(C, C) * 0.5  # transition[c_prev, c]
duration_bias = torch.randn(max_duration, C) * 0.5  # row d-1 scores duration d
lengths = torch.tensor([T, 5])

# Pre-project features (outside the kernel) and zero-center over the valid positions.
projected = hidden @ W_content  # (batch, T, C)
valid = (torch.arange(T)[None, :] < lengths[:, None]).unsqueeze(-1)  # (batch, T, 1)
mean = (projected * valid).sum(dim=1, keepdim=True) / lengths.view(-1, 1, 1)
projected = (projected - mean) * valid

# Build cumulative scores: cum_scores[:, t] is the sum of the first t per-position scores.
cum_scores = torch.zeros(batch, T + 1, C, dtype=torch.float32)
cum_scores[:, 1:] = torch.cumsum(projected.float(), dim=1)
cum_scores.requires_grad_(True)

# Streaming forward (edges computed on the fly): log Z, then the Viterbi score.
partition = semi_crf_streaming_forward(cum_scores, transition, duration_bias, lengths, max_duration)
with torch.no_grad():  # the max semiring has no gradient; the kernels refuse to fake one
    viterbi = semi_crf_streaming_forward(
        cum_scores, transition, duration_bias, lengths, max_duration, semiring="max"
    )
print("log Z:", partition.tolist(), "Viterbi:", viterbi.tolist())

# Gradients flow to cum_scores (and from there to the encoder that produced `projected`).
partition.sum().backward()
partition = partition.detach()
print("grad of cum_scores:", tuple(cum_scores.grad.shape))
# Rows past a sequence's end never matter: exactly zero gradient.
assert bool((cum_scores.grad[1, int(lengths[1]) + 1 :] == 0).all())

# The best segmentation itself, as tensors.
path = semi_crf_streaming_viterbi(
    cum_scores.detach(), transition, duration_bias, lengths, max_duration
)
for b in range(batch):
    n = int(path.num_segments[b])
    segs = [
        (int(path.starts[b, i]), int(path.durations[b, i]), int(path.labels[b, i]))
        for i in range(n)
    ]
    print(f"sequence {b}: (start, duration, label) = {segs}")


# ---- an independent check: enumerate every segmentation of each sequence ----
def segmentation_score(cum, segs):
    """Total score of [(start, duration, label), ...] under docs/conventions.md section 1."""
    total = 0.0
    prev = None
    for s, d, c in segs:
        total += float(cum[s + d, c] - cum[s, c] + duration_bias[d - 1, c])
        if prev is None:  # the start score: a virtual start label, summed out
            total += float(torch.logsumexp(transition[:, c], dim=0))
        else:
            total += float(transition[prev, c])
        prev = c
    return total


def all_segmentations(L):
    """Every list of (start, duration, label) tiling [0, L) with durations 1..max_duration."""
    for cuts in itertools.product([False, True], repeat=L - 1):
        bounds = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [L]
        durations = [e - s for s, e in itertools.pairwise(bounds)]
        if max(durations) > max_duration:
            continue
        for labels in itertools.product(range(C), repeat=len(durations)):
            yield list(zip(bounds, durations, labels))


for b in range(batch):
    cum = cum_scores[b].detach()
    scores = [segmentation_score(cum, segs) for segs in all_segmentations(int(lengths[b]))]
    top = max(scores)
    log_z = top + math.log(sum(math.exp(s - top) for s in scores))
    print(f"sequence {b}: {len(scores)} segmentations, brute-force log Z {log_z:.5f}")
    assert abs(log_z - float(partition[b])) < 1e-4
    assert abs(top - float(viterbi[b])) < 1e-4
    assert abs(top - float(path.scores[b])) < 1e-4
print("ok")
