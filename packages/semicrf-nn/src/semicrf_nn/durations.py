"""Duration distributions: modules whose ``forward()`` returns ``(K, C)`` log-space duration biases.

Row ``d - 1`` of the returned tensor scores a segment of duration ``d`` (``1 <= d <= K``) and
label ``c``; every row is used (conventions section 1). The parametric families are
**normalised over the durations 1..K** (a log-softmax along the duration axis), so for each
label ``exp(bias[:, c])`` is a probability distribution over ``1..K``: the truncated version
of the named distribution. ``LearnedDuration`` is a free table and ``CallableDuration`` returns
whatever its function computes.

Per-label parameters have shape ``(C,)``. ``learn_*=False`` registers them as buffers (fixed,
saved in the ``state_dict``, not returned by ``parameters()``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .validation import is_tracing

__all__ = [
    "CallableDuration",
    "DurationDistribution",
    "GeometricDuration",
    "LearnedDuration",
    "NegativeBinomialDuration",
    "PoissonDuration",
    "UniformDuration",
    "create_duration_distribution",
]

# NegBin: below this log r (r ~ 4.5e-5) the family has collapsed onto d = 1 and the gradient
# with respect to log r all but vanishes; log r is clamped at _MIN_LOG_R so that 1 / r stays
# finite in float32.
_WARN_LOG_R = -10.0
_MIN_LOG_R = -60.0


def _check_sizes(max_duration: object, num_classes: object) -> None:
    for name, value in (("max_duration", max_duration), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _per_label(value: float, num_classes: int, name: str) -> torch.Tensor:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return torch.full((num_classes,), float(value))


class DurationDistribution(nn.Module):
    """Base class. Subclasses implement ``forward() -> (K, C)`` log-biases.

    Attributes:
        max_duration: ``K``, the longest segment.
        num_classes: ``C``.
    """

    def __init__(self, max_duration: int, num_classes: int) -> None:
        super().__init__()
        _check_sizes(max_duration, num_classes)
        self.max_duration = max_duration
        self.num_classes = num_classes

    @property
    def learnable(self) -> bool:
        """True when some parameter of this distribution is trained."""
        return any(p.requires_grad for p in self.parameters())

    def _durations(self, like: torch.Tensor) -> torch.Tensor:
        """``(K, 1)`` tensor of durations ``1..K`` with ``like``'s dtype and device."""
        return torch.arange(1, self.max_duration + 1, dtype=like.dtype, device=like.device)[:, None]

    def _register(self, name: str, value: torch.Tensor, learn: bool) -> None:
        if learn:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    def extra_repr(self) -> str:
        return f"max_duration={self.max_duration}, num_classes={self.num_classes}"


class LearnedDuration(DurationDistribution):
    """A free ``(K, C)`` table of duration scores (not normalised).

    ``bias[d-1, c]`` is learned directly, initialised from ``N(0, init_std^2)``. The most
    flexible choice; with a long ``K`` and little data the tail rows are rarely seen, so a
    parametric family may generalise better.
    """

    def __init__(self, max_duration: int, num_classes: int, init_std: float = 0.1) -> None:
        super().__init__(max_duration, num_classes)
        if not (isinstance(init_std, (int, float)) and math.isfinite(init_std) and init_std >= 0):
            raise ValueError(f"init_std must be a finite float >= 0, got {init_std!r}")
        self.bias = nn.Parameter(torch.randn(max_duration, num_classes) * init_std)

    def forward(self) -> torch.Tensor:
        """Return the ``(K, C)`` table (row ``d-1`` = duration ``d``)."""
        return self.bias


class GeometricDuration(DurationDistribution):
    """Truncated geometric: ``P(d) ∝ p (1-p)^(d-1)`` on ``d = 1..K``, per label.

    ``p = sigmoid(logit_p)``, ``logit_p`` of shape ``(C,)`` initialised to ``init_logit``
    (0 gives ``p = 1/2``). Returned: ``bias[d-1, c] = (d-1) log(1-p_c) - log N_c`` with
    ``N_c = sum_{d=1..K} (1-p_c)^(d-1)``. Monotone decreasing in ``d``; ``log(1-p)`` is computed
    as ``logsigmoid(-logit_p)`` so it stays finite for any logit.
    """

    def __init__(
        self,
        max_duration: int,
        num_classes: int,
        init_logit: float = 0.0,
        learn_rate: bool = True,
    ) -> None:
        super().__init__(max_duration, num_classes)
        self._register("logit_p", _per_label(init_logit, num_classes, "init_logit"), learn_rate)

    def forward(self) -> torch.Tensor:
        """Return ``(K, C)`` normalised log-probabilities of durations ``1..K``."""
        d = self._durations(self.logit_p)
        logits = (d - 1) * F.logsigmoid(-self.logit_p)[None, :]
        return torch.log_softmax(logits, dim=0)


class NegativeBinomialDuration(DurationDistribution):
    """Truncated negative binomial on ``d = 1..K`` (``d - 1`` failures before the ``r``-th success).

    ``P(d) ∝ Γ(d-1+r) / (Γ(r) Γ(d)) p^r (1-p)^(d-1)`` with ``p = sigmoid(logit_p)`` and
    ``r = exp(log_r)``, both ``(C,)``. ``r = 1`` is the geometric; larger ``r`` moves the mode
    away from 1 (a peaked distribution with mean about ``1 + r(1-p)/p`` before truncation).
    Returned: ``log_softmax_d[lgamma(d-1+r) - lgamma(d) + (d-1) log(1-p)]`` (the factors not
    depending on ``d`` cancel in the normalisation).

    Numerics: a tiny ``r`` (``log_r < -10``) collapses the distribution onto ``d = 1`` and
    makes the gradient for ``log_r`` vanish; a ``UserWarning`` says so. ``log_r`` is clamped at
    -60 inside the formula so values stay finite; a non-finite result also warns. The ratio
    ``lgamma(d-1+r) - lgamma(r)`` is evaluated as ``sum_{j < d-1} (log_r + log1p(j / r))``, so
    ``r`` is never formed and large ``r`` (``log_r`` of 10, 100 or more) keeps full precision.
    """

    def __init__(
        self,
        max_duration: int,
        num_classes: int,
        init_logit: float = 0.0,
        init_log_r: float = 0.0,
        learn_rate: bool = True,
        learn_shape: bool = True,
    ) -> None:
        super().__init__(max_duration, num_classes)
        self._register("logit_p", _per_label(init_logit, num_classes, "init_logit"), learn_rate)
        self._register("log_r", _per_label(init_log_r, num_classes, "init_log_r"), learn_shape)

    def forward(self) -> torch.Tensor:
        """Return ``(K, C)`` normalised log-probabilities of durations ``1..K``."""
        logit_p, log_r = self.logit_p, self.log_r
        # A (K, C) table: evaluating it in float64 costs nothing and keeps the large values of
        # a big r (logits ~ (d-1) log r) exact to the output dtype (MPS has no float64).
        if logit_p.device.type != "mps":
            logit_p, log_r = logit_p.double(), log_r.double()
        d = self._durations(logit_p)
        log_r = log_r.clamp(min=_MIN_LOG_R)[None, :]
        # lgamma(d-1+r) - lgamma(r) = sum_{j < d-1} log(r + j), with log(r + j) written as
        # log_r + log1p(j / r): r itself is never formed (it overflows float32 above log_r ~ 88)
        # and no large lgamma values are subtracted (which loses the differences between
        # durations once r >~ 1e4). The dropped lgamma(r) does not depend on d.
        j = d[:-1] - 1  # (K-1, 1): 0..K-2
        corrections = torch.log1p(j * torch.exp(-log_r))
        rising = torch.cat([torch.zeros_like(log_r), torch.cumsum(corrections, dim=0)], dim=0)
        # One rounding for the (large) per-step slope, then a single multiply per duration.
        slope = log_r + F.logsigmoid(-logit_p)[None, :]
        logits = (d - 1) * slope + rising - torch.lgamma(d)
        out = torch.log_softmax(logits, dim=0).to(self.logit_p.dtype)
        if not is_tracing():
            min_log_r = float(self.log_r.detach().min())
            if min_log_r < _WARN_LOG_R:
                warnings.warn(
                    f"NegativeBinomialDuration: log_r = {min_log_r:.3g} (r = {math.exp(min_log_r):.2e}) "
                    "collapses the distribution onto duration 1 and its gradient vanishes; use a "
                    f"larger init_log_r (>= {_WARN_LOG_R}) or GeometricDuration",
                    UserWarning,
                    stacklevel=2,
                )
            if not bool(torch.isfinite(out).all()):
                warnings.warn(
                    "NegativeBinomialDuration: non-finite duration biases "
                    f"(logit_p range [{float(self.logit_p.min()):.3g}, {float(self.logit_p.max()):.3g}], "
                    f"log_r range [{min_log_r:.3g}, {float(self.log_r.max()):.3g}])",
                    UserWarning,
                    stacklevel=2,
                )
        return out


class PoissonDuration(DurationDistribution):
    """Zero-truncated Poisson on ``d = 1..K``: ``P(d) ∝ λ^d / d!``, per label.

    ``λ = exp(log_lambda)``, ``(C,)``, initialised to ``init_log_lambda`` (1.0 gives
    ``λ ≈ 2.72``). The mode is near ``λ``: use it when segments have a characteristic length.
    Returned: ``log_softmax_d[d log_lambda - lgamma(d+1)]``; ``log_lambda`` is used directly, so
    no value overflows for any ``λ``.
    """

    def __init__(
        self,
        max_duration: int,
        num_classes: int,
        init_log_lambda: float = 1.0,
        learn_rate: bool = True,
    ) -> None:
        super().__init__(max_duration, num_classes)
        self._register(
            "log_lambda", _per_label(init_log_lambda, num_classes, "init_log_lambda"), learn_rate
        )

    def forward(self) -> torch.Tensor:
        """Return ``(K, C)`` normalised log-probabilities of durations ``1..K``."""
        d = self._durations(self.log_lambda)
        logits = d * self.log_lambda[None, :] - torch.lgamma(d + 1)
        return torch.log_softmax(logits, dim=0)


class UniformDuration(DurationDistribution):
    """Every duration ``1..K`` equally likely: ``bias = -log K`` everywhere. No parameters."""

    def __init__(self, max_duration: int, num_classes: int) -> None:
        super().__init__(max_duration, num_classes)
        self.register_buffer(
            "_bias",
            torch.full((max_duration, num_classes), -math.log(max_duration)),
            persistent=False,
        )

    def forward(self) -> torch.Tensor:
        """Return the constant ``(K, C)`` tensor ``-log K``."""
        return self._bias


class CallableDuration(DurationDistribution):
    """Duration scores computed by a user function.

    ``func(K, C, device) -> Tensor`` must return a floating ``(K, C)`` tensor on ``device``:
    row ``d-1`` scores duration ``d`` for each label. Values are used as given (not
    normalised); ``-inf`` forbids a duration. The function may close over parameters of another
    module; this module itself has none, so ``parameter_penalty`` skips it. The device is that
    of the module (it follows ``.to(...)``).
    """

    def __init__(
        self,
        max_duration: int,
        num_classes: int,
        func: Callable[[int, int, torch.device], torch.Tensor],
    ) -> None:
        super().__init__(max_duration, num_classes)
        if not callable(func):
            raise TypeError(
                f"func must be callable as func(K, C, device), got {type(func).__name__}"
            )
        self.func = func
        # A buffer only to track the module's device and dtype across .to() calls.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def forward(self) -> torch.Tensor:
        """Return ``func(K, C, device)`` after checking its type, shape and values."""
        K, C = self.max_duration, self.num_classes
        out = self.func(K, C, self._anchor.device)
        if not isinstance(out, torch.Tensor):
            raise TypeError(
                f"CallableDuration func must return a torch.Tensor, got {type(out).__name__}"
            )
        if out.shape != (K, C):
            raise ValueError(
                f"CallableDuration func must return shape (K, C) = ({K}, {C}), got {tuple(out.shape)}"
            )
        if not out.is_floating_point():
            raise TypeError(f"CallableDuration func must return a floating tensor, got {out.dtype}")
        if out.device != self._anchor.device:
            raise ValueError(
                f"CallableDuration func must return a tensor on {self._anchor.device}, got {out.device}"
            )
        if not is_tracing() and bool((torch.isnan(out) | (out == math.inf)).any()):
            raise ValueError("CallableDuration func returned NaN or +inf values (-inf is allowed)")
        return out


_FACTORIES: dict[str, type[DurationDistribution]] = {
    "learned": LearnedDuration,
    "geometric": GeometricDuration,
    "negative_binomial": NegativeBinomialDuration,
    "negbin": NegativeBinomialDuration,
    "poisson": PoissonDuration,
    "uniform": UniformDuration,
}


def create_duration_distribution(
    distribution: str | DurationDistribution | None,
    max_duration: int,
    num_classes: int,
    **kwargs: object,
) -> DurationDistribution:
    """Build a duration distribution from a name, or check and return an instance.

    Args:
        distribution: ``None`` or ``"learned"``, ``"geometric"``, ``"negative_binomial"`` (alias
            ``"negbin"``), ``"poisson"``, ``"uniform"``; or a ``DurationDistribution`` instance,
            returned as is after checking its ``max_duration``/``num_classes``.
        max_duration: ``K``.
        num_classes: ``C``.
        **kwargs: passed to the constructor (e.g. ``init_logit=-1.0`` for geometric).

    Returns:
        A module whose ``forward()`` gives ``(K, C)`` log-biases.
    """
    _check_sizes(max_duration, num_classes)
    if isinstance(distribution, DurationDistribution):
        if kwargs:
            raise ValueError(f"kwargs {sorted(kwargs)} cannot be applied to an existing instance")
        got = (distribution.max_duration, distribution.num_classes)
        if got != (max_duration, num_classes):
            raise ValueError(
                f"duration distribution has (max_duration, num_classes) = {got}, "
                f"expected ({max_duration}, {num_classes})"
            )
        return distribution
    if distribution is None:
        distribution = "learned"
    if not isinstance(distribution, str):
        raise TypeError(
            "duration_distribution must be a name or a DurationDistribution, "
            f"got {type(distribution).__name__}"
        )
    key = distribution.lower()
    if key not in _FACTORIES:
        raise ValueError(
            f"Unknown duration distribution {distribution!r}. Options: {', '.join(_FACTORIES)}"
        )
    return _FACTORIES[key](max_duration, num_classes, **kwargs)
