"""Duration distributions: priors on segment length, by name or as modules.

Changes from the original snippet:
* Small sizes (K=12, C=3; the original API design uses K=100, C=24) and every distribution of the
  table, not only the geometric one.
* `CallableDuration` takes `func(K, C, device) -> (K, C) tensor`; the original API design gives no
  example, so one is written here.
* It adds checks of the formulas against values computed here with plain Python (math.lgamma):
  the parametric families return normalised log-probabilities over durations 1..K.
* It shows a distribution instance passed to `SemiMarkovCRFHead(duration_distribution=...)`.
"""

import math

import torch

from flash_semicrf import (
    CallableDuration,
    GeometricDuration,
    LearnedDuration,
    NegativeBinomialDuration,
    PoissonDuration,
    SemiMarkovCRFHead,
    UniformDuration,
    create_duration_distribution,
)

torch.manual_seed(0)
K, C = 12, 3

# Factory function: a name plus the distribution's own keyword arguments.
dur = create_duration_distribution(
    "geometric",  # or "learned", "negative_binomial", "poisson", "uniform"
    max_duration=K,
    num_classes=C,
    init_logit=-1.0,  # p = sigmoid(-1) ~ 0.27
)
bias = dur()  # (K, C): row d-1 scores duration d
assert isinstance(dur, GeometricDuration) and bias.shape == (K, C)
print("geometric bias, label 0:", [round(x, 3) for x in bias[:, 0].tolist()])


def log_normalise(values):
    """log(v / sum(v)) computed from log-values, in plain Python."""
    top = max(values)
    log_z = top + math.log(sum(math.exp(v - top) for v in values))
    return [v - log_z for v in values]


# Geometric: P(d) proportional to p (1-p)^(d-1), truncated to d <= K.
p = 1 / (1 + math.exp(1.0))
expected = log_normalise([(d - 1) * math.log(1 - p) for d in range(1, K + 1)])
assert torch.allclose(bias[:, 0].double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5)

# Poisson: P(d) proportional to lambda^d / d!, truncated to 1 <= d <= K.
poisson = PoissonDuration(K, C, init_log_lambda=math.log(4.0))
expected = log_normalise([d * math.log(4.0) - math.lgamma(d + 1) for d in range(1, K + 1)])
assert torch.allclose(
    poisson()[:, 1].double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5
)
print("poisson (lambda=4) mode at duration", int(poisson()[:, 0].argmax()) + 1)

# Negative binomial: d-1 failures before the r-th success; r = 1 is the geometric.
negbin = NegativeBinomialDuration(K, C, init_logit=-1.0, init_log_r=0.0)
assert torch.allclose(negbin(), bias, atol=1e-5)
peaked = NegativeBinomialDuration(K, C, init_logit=0.0, init_log_r=math.log(5.0))
print("negative binomial (r=5, p=1/2) mode at duration", int(peaked()[:, 0].argmax()) + 1)

# Uniform: no duration preference; Learned: a free (K, C) table.
assert torch.allclose(UniformDuration(K, C)(), torch.full((K, C), -math.log(K)))
learned = LearnedDuration(K, C)
assert learned().shape == (K, C) and learned.learnable


# Callable: any function of (K, C, device); here durations longer than 8 are forbidden.
def short_segments(K, C, device):
    d = torch.arange(1, K + 1, dtype=torch.float32, device=device)[:, None].expand(K, C)
    return torch.where(d <= 8, -0.1 * d, torch.full_like(d, float("-inf")))


custom = CallableDuration(K, C, short_segments)
assert bool(torch.isinf(custom()[8:]).all())

# Every parametric family sums to one over durations (normalised log-probabilities).
for module in (dur, poisson, negbin, peaked, UniformDuration(K, C)):
    total = module().exp().sum(0)
    assert torch.allclose(total, torch.ones(C), atol=1e-5), (type(module).__name__, total)

# A head takes a name or an instance; its duration_bias is the distribution's output.
crf = SemiMarkovCRFHead(num_classes=C, max_duration=K, duration_distribution=custom)
assert torch.equal(crf.duration_bias, custom())
hidden = torch.randn(2, 20, C)
with torch.no_grad():
    decoded = crf.decode_with_traceback(hidden, torch.tensor([20, 15]))
assert all(seg.end - seg.start + 1 <= 8 for segs in decoded.segments for seg in segs)
print("ok")
