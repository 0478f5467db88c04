"""Quickstart: a SemiMarkovCRFHead on top of an encoder (the original API's first example).

Changes from the original snippet, which does not run as written:
* `encoder`, `x`, `batch` and `T` are undefined there: a small bidirectional GRU encoder over
  random inputs stands in for them.
* Sizes are small (C=6, K=8, hidden 32, T=40) so the script runs in seconds on a CPU; the
  original API design uses C=24, K=100, hidden_dim=512.
* Lengths vary across the batch (the original API design uses full-length sequences) to show padding.
* It adds checks of the documented guarantees: the NLL is >= 0, the decoded segments tile each
  sequence, and their scores add up to the Viterbi score.
"""

import itertools

import torch
from torch import nn

from flash_semicrf import SemiMarkovCRFHead

torch.manual_seed(0)
batch, T, features, hidden_dim = 3, 40, 10, 32
C, K = 6, 8  # labels, longest segment


class Encoder(nn.Module):
    """Any module producing (batch, T, hidden_dim) features will do."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(features, hidden_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


encoder = Encoder()
crf = SemiMarkovCRFHead(
    num_classes=C,
    max_duration=K,
    hidden_dim=hidden_dim,
    duration_distribution="geometric",  # or "learned", "poisson", "negative_binomial", "uniform"
)

x = torch.randn(batch, T, features)
lengths = torch.tensor([T, 31, 17])  # valid positions per sequence; the rest is padding
hidden = encoder(x)  # (batch, T, hidden_dim)

# Forward pass: log partition function of each sequence.
result = crf(hidden, lengths)
partition = result["partition"]  # (batch,), differentiable
print("log Z:", partition.detach().tolist())

# Training with per-position labels: the loss is a true negative log-likelihood.
labels = torch.randint(0, C, (batch, T))
nll = crf.compute_loss(hidden, lengths, labels, reduction="none")  # (batch,)
assert bool((nll >= -1e-4).all()), nll
loss = nll.mean()
reg_loss = loss + 0.01 * crf.parameter_penalty()  # regularisation of transitions and durations
reg_loss.backward()
print(
    f"loss {loss.item():.3f}; encoder gets gradients: {encoder.rnn.weight_ih_l0.grad is not None}"
)

# Viterbi decoding with traceback.
with torch.no_grad():
    decoded = crf.decode_with_traceback(hidden, lengths)
for seg in decoded.segments[0][:5]:
    print(f"[{seg.start}, {seg.end}] label={seg.label} score={seg.score:.3f}")

for b in range(batch):
    segs = decoded.segments[b]
    # Segments tile [0, L) with `end` inclusive and durations in [1, K].
    assert segs[0].start == 0 and segs[-1].end == int(lengths[b]) - 1
    assert all(prev.end + 1 == nxt.start for prev, nxt in itertools.pairwise(segs))
    assert all(1 <= s.end - s.start + 1 <= K for s in segs)
    # The segment scores add up to the Viterbi score, which never exceeds log Z.
    total = sum(s.score for s in segs)
    assert abs(total - float(decoded.scores[b])) < 1e-3, (total, decoded.scores[b])
    assert float(decoded.scores[b]) <= float(partition[b].detach()) + 1e-4

# `decode` gives the Viterbi scores alone.
with torch.no_grad():
    best = crf.decode(hidden, lengths)
assert torch.allclose(best, decoded.scores, atol=1e-4)
print("ok")
