"""Shared fixtures: generators of random valid streaming inputs.

Every test gets its own seed (derived from its node id), so inputs are fresh per test and
parametrisation, yet a failure reproduces. Use the ``make_inputs`` fixture::

    def test_something(make_inputs):
        inp = make_inputs(B=3, T=7, C=3, K=4, per_duration=True, proj=True)
        semi_crf_streaming_forward(*inp.args, **inp.kwargs)
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from semicrf_kernels.constants import NEG_INF

# Make _triton_env.py next to the tests importable (pytest runs with --import-mode=importlib,
# which does not put test directories on sys.path).
sys.path.insert(0, os.path.dirname(__file__))


class StreamingInputs(NamedTuple):
    """Inputs of the streaming model (see ``docs/conventions.md`` section 1)."""

    cum_scores: torch.Tensor  # (B, T+1, C)
    transition: torch.Tensor  # (C, C) or (K, C, C)
    duration_bias: torch.Tensor  # (K, C)
    lengths: torch.Tensor  # (B,) int64
    K: int
    proj_start: torch.Tensor | None  # (B, T, C)
    proj_end: torch.Tensor | None  # (B, T, C)

    @property
    def args(self) -> tuple:
        """The positional arguments ``(cum_scores, transition, duration_bias, lengths, K)``."""
        return (self.cum_scores, self.transition, self.duration_bias, self.lengths, self.K)

    @property
    def kwargs(self) -> dict:
        """The keyword arguments ``proj_start``, ``proj_end``."""
        return {"proj_start": self.proj_start, "proj_end": self.proj_end}

    def to(self, dtype: torch.dtype) -> StreamingInputs:
        """The same inputs with every float tensor cast to ``dtype``."""

        def cast(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(dtype)

        return self._replace(
            cum_scores=cast(self.cum_scores),
            transition=cast(self.transition),
            duration_bias=cast(self.duration_bias),
            proj_start=cast(self.proj_start),
            proj_end=cast(self.proj_end),
        )


def random_inputs(
    generator: torch.Generator,
    B: int,
    T: int,
    C: int,
    K: int,
    *,
    dtype: torch.dtype = torch.float64,
    per_duration: bool = False,
    proj: bool = False,
    lengths: list[int] | None = None,
    forbid: float = 0.0,
    scale: float = 1.0,
) -> StreamingInputs:
    """Random valid inputs (on the CPU).

    Emissions are standard normal times ``scale``, zero-centred over time per sequence and
    label (as the head does); transitions and duration biases are normal. ``forbid`` is the
    probability that each transition entry is set to ``NEG_INF`` (half of them) or ``-inf``.
    Lengths default to random values in ``[1, T]`` with the first sequence at full length.
    """

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    emissions = normal(B, T, C) * scale
    emissions = emissions - emissions.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(dim=1)
    transition = normal(K, C, C) if per_duration else normal(C, C)
    if forbid > 0:
        u = torch.rand(transition.shape, generator=generator, dtype=torch.float64)
        transition = torch.where(u < forbid / 2, torch.full_like(transition, NEG_INF), transition)
        transition = torch.where(
            (u >= forbid / 2) & (u < forbid), torch.full_like(transition, -torch.inf), transition
        )
    duration_bias = normal(K, C) * 0.5
    if lengths is None:
        lens = torch.randint(1, T + 1, (B,), generator=generator)
        lens[0] = T
    else:
        lens = torch.tensor(lengths, dtype=torch.int64)
    ps = normal(B, T, C) * 0.5 if proj else None
    pe = normal(B, T, C) * 0.5 if proj else None
    inputs = StreamingInputs(cum, transition, duration_bias, lens, K, ps, pe)
    return inputs.to(dtype)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> torch.Generator:
    """A torch CPU generator seeded from the test's node id (fresh per test, reproducible)."""
    generator = torch.Generator()
    generator.manual_seed(zlib.crc32(request.node.nodeid.encode()))
    return generator


@pytest.fixture
def make_inputs(rng: torch.Generator) -> Callable[..., StreamingInputs]:
    """``make_inputs(B, T, C, K, **options)``: :func:`random_inputs` with this test's seed."""

    def make(B: int, T: int, C: int, K: int, **options) -> StreamingInputs:
        return random_inputs(rng, B, T, C, K, **options)

    return make


@pytest.fixture(autouse=True)
def _no_held_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    """A split scan that stalled on a busy machine turns the split off for a few seconds
    (``numba_support.STALL_HOLD_S``): no test inherits that from an earlier one."""
    from semicrf_kernels._shared import numba_support

    monkeypatch.setattr(numba_support, "_last_stall", float("-inf"))


@pytest.fixture(autouse=True)
def _no_leftover_overrides():
    """Every test leaves the kernels' tuning overrides (``scan_launch.CONFIG_OVERRIDE``,
    ``split_launch.SPLIT_OVERRIDE``) as it found them: empty."""
    yield
    from semicrf_kernels._shared import scan_launch, split_launch

    scan_launch.CONFIG_OVERRIDE.clear()
    split_launch.SPLIT_OVERRIDE.clear()


@pytest.fixture
def stall_splits(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``stall_splits(*modules)``: every scan planned by those kernel modules must split, and
    starts marked stalled (as if a part had lost its core past the stall limit): its parts
    return at their first wait and the sequence runs again on one thread."""
    from semicrf_kernels._shared import numba_support

    def plan(*args, **kwargs):
        chunks, sync, parts = numba_support.plan_tasks(*args, **kwargs)
        assert parts > 1
        sync[:, -numba_support.STRIDE] = numba_support.STALLED
        return chunks, sync, parts

    def install(*modules) -> None:
        for module in modules:
            monkeypatch.setattr(module, "plan_tasks", plan)

    return install
