"""Uncertainty: boundary and position marginals, entropy, uncertainty-weighted training.

Changes from the original snippet, which does not run as written:
* `hidden`, `lengths` and `labels` are undefined there: random features, variable lengths and
  random labels stand in for them, at small sizes (C=4, K=6, hidden 16, T=30; the original API design
  uses C=24, K=100, hidden_dim=512).
* `compute_entropy_streaming` is exact in flash-semicrf (docs/conventions.md section 4), so the
  script checks that it equals `compute_entropy_exact` (the entropy semiring over the edge
  tensor), and that the marginals are probabilities.
* It adds `compute_position_marginals` and `sequence_uncertainty` (the weight the weighted loss
  uses) to the original API's calls.
"""

import torch

from flash_semicrf import UncertaintySemiMarkovCRFHead

torch.manual_seed(0)
batch, T, hidden_dim, C, K = 3, 30, 16, 4, 6
model = UncertaintySemiMarkovCRFHead(num_classes=C, max_duration=K, hidden_dim=hidden_dim)

hidden = torch.randn(batch, T, hidden_dim)
lengths = torch.tensor([T, 22, 9])
labels = torch.randint(0, C, (batch, T))

with torch.no_grad():
    # Boundary confidence for decision support: P(a segment starts at t), (batch, T).
    boundary_probs = model.compute_boundary_marginals(hidden, lengths)
    # Force the streaming backend (what genome-scale sequences use).
    boundary_streaming = model.compute_boundary_marginals(hidden, lengths, backend="streaming")
    # P(position t has label c), (batch, T, C).
    position_probs = model.compute_position_marginals(hidden, lengths)

    # Entropy of the segmentation distribution, two independent ways.
    entropy_streaming = model.compute_entropy_streaming(hidden, lengths)  # any T
    entropy_exact = model.compute_entropy_exact(hidden, lengths)  # builds the edge tensor

print("P(boundary) of sequence 2:", [round(p, 3) for p in boundary_probs[2, :9].tolist()])
print("entropy (streaming):", entropy_streaming.tolist())
print("entropy (exact):    ", entropy_exact.tolist())

valid = torch.arange(T)[None, :] < lengths[:, None]
assert torch.allclose(boundary_probs, boundary_streaming, atol=1e-5)
assert bool((boundary_probs[:, 0] > 1 - 1e-5).all())  # a segment always starts at 0
assert bool((boundary_probs[~valid] == 0).all())  # nothing starts in the padding
assert bool(((boundary_probs >= -1e-6) & (boundary_probs <= 1 + 1e-6)).all())
row_sums = position_probs.sum(-1)
assert torch.allclose(row_sums[valid], torch.ones(int(valid.sum())), atol=1e-5)
assert bool((row_sums[~valid] == 0).all())
assert torch.allclose(entropy_streaming, entropy_exact, rtol=1e-4, atol=1e-4)
assert bool((entropy_exact >= 0).all())

# Uncertainty-weighted training for active learning: (1 + w * u) * NLL, u in [0, 1].
u = model.sequence_uncertainty(hidden, lengths)
loss = model.compute_loss_uncertainty_weighted(hidden, lengths, labels)
plain = model.compute_loss(hidden, lengths, labels, reduction="none")
assert torch.allclose(loss, ((1 + u.to(plain.dtype)) * plain).mean(), rtol=1e-5)
loss.backward()
print(f"uncertainty per sequence {u.tolist()}, weighted loss {loss.item():.3f}")
print("ok")
