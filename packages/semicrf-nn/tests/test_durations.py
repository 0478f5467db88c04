"""Duration distributions: formulas against scipy, normalisation, learnability, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from semicrf_nn import (
    CallableDuration,
    GeometricDuration,
    LearnedDuration,
    NegativeBinomialDuration,
    PoissonDuration,
    UniformDuration,
    create_duration_distribution,
)
from semicrf_nn.durations import DurationDistribution


def _truncated_log_pmf(pmf: np.ndarray) -> np.ndarray:
    """Normalise pmf values over the rows (durations 1..K) and take logs."""
    return np.log(pmf / pmf.sum(axis=0, keepdims=True))


@pytest.mark.parametrize("K", [1, 2, 7])
def test_geometric_matches_scipy(K: int) -> None:
    C = 3
    dist = GeometricDuration(K, C).double()
    with torch.no_grad():
        dist.logit_p.copy_(torch.tensor([-2.0, 0.3, 4.0], dtype=torch.float64))
    p = 1 / (1 + np.exp(-np.array([-2.0, 0.3, 4.0])))
    d = np.arange(1, K + 1)[:, None]
    expected = _truncated_log_pmf(stats.geom.pmf(d, p))
    np.testing.assert_allclose(dist().detach().numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("K", [1, 3, 9])
def test_negative_binomial_matches_scipy(K: int) -> None:
    C = 3
    logit = np.array([-1.0, 0.5, 2.0])
    log_r = np.array([-1.5, 0.0, 1.7])
    dist = NegativeBinomialDuration(K, C).double()
    with torch.no_grad():
        dist.logit_p.copy_(torch.from_numpy(logit))
        dist.log_r.copy_(torch.from_numpy(log_r))
    p = 1 / (1 + np.exp(-logit))
    d = np.arange(1, K + 1)[:, None]
    # scipy's nbinom counts failures (d - 1) before the r-th success of probability p.
    expected = _truncated_log_pmf(stats.nbinom.pmf(d - 1, np.exp(log_r), p))
    np.testing.assert_allclose(dist().detach().numpy(), expected, rtol=1e-9, atol=1e-11)


def test_negative_binomial_with_r_one_is_geometric() -> None:
    geo = GeometricDuration(6, 4, init_logit=-0.7).double()
    nb = NegativeBinomialDuration(6, 4, init_logit=-0.7, init_log_r=0.0).double()
    torch.testing.assert_close(nb(), geo(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("K", [1, 4, 12])
def test_poisson_matches_scipy(K: int) -> None:
    log_lam = np.array([-1.0, 1.0, 2.5])
    dist = PoissonDuration(K, 3).double()
    with torch.no_grad():
        dist.log_lambda.copy_(torch.from_numpy(log_lam))
    d = np.arange(1, K + 1)[:, None]
    expected = _truncated_log_pmf(stats.poisson.pmf(d, np.exp(log_lam)))
    np.testing.assert_allclose(dist().detach().numpy(), expected, rtol=1e-9, atol=1e-11)


def test_uniform_is_minus_log_k() -> None:
    dist = UniformDuration(5, 3)
    assert list(dist.parameters()) == []
    torch.testing.assert_close(dist(), torch.full((5, 3), -math.log(5)))
    assert not dist.learnable


@pytest.mark.parametrize(
    "make",
    [
        lambda: GeometricDuration(6, 3, init_logit=-1.3),
        lambda: NegativeBinomialDuration(6, 3, init_logit=0.4, init_log_r=1.1),
        lambda: PoissonDuration(6, 3, init_log_lambda=0.2),
        lambda: UniformDuration(6, 3),
    ],
)
def test_parametric_families_are_normalised(make) -> None:
    out = make()()
    assert out.shape == (6, 3)
    torch.testing.assert_close(out.exp().sum(0), torch.ones(3), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("cls", "flags", "names"),
    [
        (GeometricDuration, {"learn_rate": True}, {"logit_p"}),
        (GeometricDuration, {"learn_rate": False}, set()),
        (NegativeBinomialDuration, {"learn_rate": True, "learn_shape": False}, {"logit_p"}),
        (NegativeBinomialDuration, {"learn_rate": False, "learn_shape": True}, {"log_r"}),
        (PoissonDuration, {"learn_rate": False}, set()),
        (PoissonDuration, {"learn_rate": True}, {"log_lambda"}),
    ],
)
def test_learn_flags_choose_parameters_or_buffers(cls, flags, names) -> None:
    dist = cls(4, 2, **flags)
    assert {n for n, _ in dist.named_parameters()} == names
    all_names = {"logit_p"} | ({"log_r"} if cls is NegativeBinomialDuration else set())
    if cls is PoissonDuration:
        all_names = {"log_lambda"}
    # Fixed parameters are buffers: they move with the module and are saved.
    assert set(dist.state_dict()) == all_names
    assert dist.learnable == bool(names)


@pytest.mark.parametrize(
    "dist",
    [
        LearnedDuration(5, 3),
        GeometricDuration(5, 3),
        NegativeBinomialDuration(5, 3),
        PoissonDuration(5, 3),
    ],
)
def test_gradients_reach_every_parameter(dist: DurationDistribution) -> None:
    weights = torch.randn(5, 3)
    (dist() * weights).sum().backward()
    for name, param in dist.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_learned_duration_init_std() -> None:
    torch.manual_seed(0)
    dist = LearnedDuration(200, 50, init_std=0.3)
    assert dist().shape == (200, 50)
    assert abs(float(dist.bias.detach().std()) - 0.3) < 0.01
    assert torch.equal(LearnedDuration(3, 2, init_std=0.0)(), torch.zeros(3, 2))


def test_extreme_parameters_stay_finite() -> None:
    for logit in (-60.0, 60.0):
        assert torch.isfinite(GeometricDuration(8, 2, init_logit=logit)()).all()
    for log_lam in (-40.0, 40.0):
        assert torch.isfinite(PoissonDuration(8, 2, init_log_lambda=log_lam)()).all()
    # A huge rate puts (almost) all mass on the longest duration, a tiny one on duration 1.
    assert int(PoissonDuration(8, 1, init_log_lambda=40.0)().argmax()) == 7
    assert int(PoissonDuration(8, 1, init_log_lambda=-40.0)().argmax()) == 0


def test_negative_binomial_tiny_r_warns_and_stays_finite() -> None:
    dist = NegativeBinomialDuration(6, 2, init_log_r=-1000.0)
    with pytest.warns(UserWarning, match="log_r"):
        out = dist()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(0), torch.ones(2))
    # Ordinary values do not warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NegativeBinomialDuration(6, 2, init_log_r=-2.0)()


def test_callable_duration_calls_func_with_device_and_checks_output() -> None:
    calls = []

    def func(K: int, C: int, device: torch.device) -> torch.Tensor:
        calls.append((K, C, device))
        return -torch.arange(1.0, K + 1, device=device)[:, None].expand(K, C)

    dist = CallableDuration(4, 3, func)
    out = dist()
    assert out.shape == (4, 3) and calls == [(4, 3, torch.device("cpu"))]
    assert list(dist.parameters()) == [] and not dist.learnable

    with pytest.raises(ValueError, match=r"\(K, C\) = \(4, 3\)"):
        CallableDuration(4, 3, lambda K, C, dev: torch.zeros(C, K))()
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        CallableDuration(4, 3, lambda K, C, dev: np.zeros((K, C)))()
    with pytest.raises(ValueError, match="NaN"):
        CallableDuration(4, 3, lambda K, C, dev: torch.full((K, C), float("nan")))()
    with pytest.raises(TypeError, match="callable"):
        CallableDuration(4, 3, "not a function")
    # -inf forbids a duration and is allowed.
    forbid = CallableDuration(2, 1, lambda K, C, dev: torch.tensor([[0.0], [-math.inf]]))()
    assert forbid[1, 0] == -math.inf


def test_factory_names_kwargs_and_errors() -> None:
    assert isinstance(create_duration_distribution(None, 3, 2), LearnedDuration)
    assert isinstance(create_duration_distribution("learned", 3, 2), LearnedDuration)
    geo = create_duration_distribution("geometric", 3, 2, init_logit=-1.0)
    assert isinstance(geo, GeometricDuration)
    torch.testing.assert_close(geo.logit_p, torch.full((2,), -1.0))
    assert isinstance(create_duration_distribution("negbin", 3, 2), NegativeBinomialDuration)
    assert isinstance(
        create_duration_distribution("negative_binomial", 3, 2), NegativeBinomialDuration
    )
    assert isinstance(create_duration_distribution("poisson", 3, 2), PoissonDuration)
    assert isinstance(create_duration_distribution("uniform", 3, 2), UniformDuration)
    inst = PoissonDuration(3, 2)
    assert create_duration_distribution(inst, 3, 2) is inst

    with pytest.raises(ValueError, match="Options: learned, geometric, negative_binomial"):
        create_duration_distribution("gamma", 3, 2)
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        create_duration_distribution(inst, 4, 2)
    with pytest.raises(TypeError):
        create_duration_distribution(3.0, 3, 2)
    with pytest.raises(TypeError, match="init_logit"):
        create_duration_distribution("uniform", 3, 2, init_logit=1.0)
    with pytest.raises(ValueError, match="max_duration"):
        GeometricDuration(0, 2)
    with pytest.raises(TypeError, match="num_classes"):
        GeometricDuration(3, 2.0)
    with pytest.raises(ValueError, match="init_logit"):
        GeometricDuration(3, 2, init_logit=math.nan)


def test_distributions_follow_dtype_and_device_moves() -> None:
    for dist in (
        GeometricDuration(3, 2),
        UniformDuration(3, 2),
        PoissonDuration(3, 2, learn_rate=False),
    ):
        assert dist.double()().dtype == torch.float64
