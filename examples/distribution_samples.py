"""The segmentation distribution: exact samples, the N-best list and KL, checked by enumeration.

Builds a small streaming model, draws exact samples with ``SemiCRFDistribution.sample``, compares
sample frequencies with the enumerated probabilities, checks ``topk`` against the enumeration
and plots sampled segmentations against the Viterbi one (``distribution_samples.png`` in the
working directory, or the path given as the first argument: the docs' figure is made with
``python examples/distribution_samples.py docs/img/distribution_samples.png``).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter

import torch

from flash_semicrf import SemiCRFDistribution
from semicrf_kernels.testing.brute_force import enumerate_segmentations, score_segmentation

torch.manual_seed(0)

# A tiny model (enumerable): one sequence of 6 positions, 2 labels, segments up to 3 long.
B, T, C, K = 1, 6, 2, 3
emissions = torch.randn(B, T, C, dtype=torch.float64)
cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), emissions.cumsum(1)], dim=1)
transition = torch.randn(C, C, dtype=torch.float64)
duration_bias = torch.randn(K, C, dtype=torch.float64) * 0.5
lengths = torch.tensor([T])
dist = SemiCRFDistribution(cum, transition, duration_bias, lengths, K)

# Enumerate every segmentation with its probability (the independent computation).
probs = {}
for tiling in enumerate_segmentations(T, K):
    for labels in itertools.product(range(C), repeat=len(tiling)):
        segs = [(s, s + d - 1, c) for (s, d), c in zip(tiling, labels)]
        key = (
            tuple(c for s, e, c in segs for _ in range(e - s + 1)),
            tuple(t in {s for s, _, _ in segs} for t in range(T)),
        )
        probs[key] = score_segmentation(cum[0], transition, duration_bias, segs)
log_z = math.log(sum(math.exp(v) for v in probs.values()))
probs = {k: math.exp(v - log_z) for k, v in probs.items()}
assert abs(float(dist.log_partition[0]) - log_z) < 1e-9

# Exact samples: their frequencies match the enumerated probabilities.
n = 8000
samples = dist.sample((n,), generator=torch.Generator().manual_seed(1))
counts = Counter(
    (tuple(samples.labels[i, 0].tolist()), tuple(samples.starts[i, 0].tolist())) for i in range(n)
)
worst = max(abs(counts.get(k, 0) / n - p) for k, p in probs.items())
print(
    f"{len(probs)} segmentations; largest |frequency - probability| over {n} samples: {worst:.4f}"
)
assert worst < 0.015  # ~6 standard errors of the most likely segmentation's frequency
assert torch.allclose(dist.log_prob(samples), samples.scores - dist.log_partition)

# The N-best list is the head of the enumeration sorted by probability.
top = dist.topk(5)
expected = sorted(probs.values(), reverse=True)[:5]
got = dist.log_prob(top).exp()[:, 0].tolist()
print("5 best probabilities:", [f"{p:.4f}" for p in got])
assert all(abs(a - b) < 1e-9 for a, b in zip(got, expected))

# KL to a perturbed model, against the enumeration.
other = SemiCRFDistribution(cum * 0.8, transition, duration_bias + 0.3, lengths, K)
q = {}
for key in probs:
    labels, starts = (torch.tensor(x)[None, None] for x in key)
    q[key] = float(
        other.log_prob(samples._replace(labels=labels, starts=starts, scores=None))[0, 0]
    )
kl = sum(p * (math.log(p) - q[k]) for k, p in probs.items())
print(f"KL(p || q) = {float(dist.kl_divergence(other)[0]):.6f} (enumeration {kl:.6f})")
assert abs(float(dist.kl_divergence(other)[0]) - kl) < 1e-9

# The figure: a longer sequence with an uncertain middle, 12 samples under its Viterbi path.
try:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
except ImportError:  # the checks above are the example; the figure is optional
    print("ok")
    sys.exit(0)

T2, C2, K2 = 80, 3, 30
signal = torch.zeros(1, T2, C2, dtype=torch.float64)
signal[0, :25, 0] = 1.2
signal[0, 25:50, 1] = 0.6  # weak evidence: label 1 barely beats label 2
signal[0, 25:50, 2] = 0.4
signal[0, 50:, 2] = 1.2
noisy = signal + 0.6 * torch.randn(1, T2, C2, dtype=torch.float64)
cum2 = torch.cat([torch.zeros(1, 1, C2, dtype=torch.float64), noisy.cumsum(1)], dim=1)
trans2 = torch.full((C2, C2), -1.0, dtype=torch.float64).fill_diagonal_(0.0)
model = SemiCRFDistribution(
    cum2, trans2, torch.full((K2, C2), -3.0, dtype=torch.float64), torch.tensor([T2]), K2
)
draws = model.sample((12,), generator=torch.Generator().manual_seed(2))
rows = torch.cat([model.argmax.labels, draws.labels[:, 0]], dim=0)  # (13, T2)

fig, (ax, bx) = plt.subplots(
    2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [3.2, 1]}
)
ax.imshow(
    rows.numpy(),
    aspect="auto",
    interpolation="nearest",
    cmap=ListedColormap(["#4c72b0", "#dd8452", "#55a868"]),
)
for i, seg_starts in enumerate(torch.cat([model.argmax.starts, draws.starts[:, 0]]).tolist()):
    for t, s in enumerate(seg_starts):
        if s and t > 0:
            ax.plot([t - 0.5, t - 0.5], [i - 0.5, i + 0.5], color="black", lw=1.0)
ax.axhline(0.5, color="white", lw=3)
ax.set_yticks([0, *range(1, 13)], ["Viterbi", *[f"sample {i}" for i in range(1, 13)]], fontsize=7)
ax.set_title("Exact samples of the segmentation distribution against the Viterbi segmentation")
bx.plot(model.marginals.boundary[0].numpy(), color="black")
bx.set_ylim(0, 1.05)
bx.set_ylabel("P(start)", fontsize=8)
bx.set_xlabel("position t")
fig.tight_layout()
out = sys.argv[1] if len(sys.argv) > 1 else "distribution_samples.png"
fig.savefig(out, dpi=110)
print(f"wrote {out}")
print("ok")
