"""Argument checks (conventions section 5)."""

from __future__ import annotations

import math

import pytest
import torch

from semicrf_nn import validation
from semicrf_nn.validation import (
    check_choice,
    check_finite,
    check_hidden_states,
    check_labels,
    check_lengths,
    is_tracing,
    value_checks_enabled,
)


def test_check_choice_lists_the_options() -> None:
    assert check_choice("mean", "reduction", ("mean", "sum")) == "mean"
    with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum', got 'avg'"):
        check_choice("avg", "reduction", ("mean", "sum"))
    with pytest.raises(ValueError, match="got None"):
        check_choice(None, "backend", ("auto",))


def test_check_hidden_states() -> None:
    check_hidden_states(torch.zeros(2, 3, 4), 4)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        check_hidden_states([[1.0]], 4)
    with pytest.raises(ValueError, match=r"3D \(batch, T, 4\), got shape \(2, 3\)"):
        check_hidden_states(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match=r"last dimension must be 4, got shape \(2, 3, 5\)"):
        check_hidden_states(torch.zeros(2, 3, 5), 4)
    with pytest.raises(TypeError, match="floating-point"):
        check_hidden_states(torch.zeros(2, 3, 4, dtype=torch.int64), 4)
    with pytest.raises(ValueError, match="T >= 1"):
        check_hidden_states(torch.zeros(2, 0, 4), 4)


def test_check_finite_counts() -> None:
    check_finite(torch.zeros(3), "x")
    with pytest.raises(ValueError, match="x must be finite, got 1 NaN and 2 infinite"):
        check_finite(torch.tensor([math.nan, math.inf, -math.inf, 0.0]), "x")


def test_check_lengths() -> None:
    cpu = torch.device("cpu")
    check_lengths(torch.tensor([3, 1]), 2, 3, cpu, check_values=True)
    with pytest.raises(TypeError, match="integer dtype"):
        check_lengths(torch.tensor([3.0, 1.0]), 2, 3, cpu, check_values=True)
    with pytest.raises(TypeError, match="integer dtype"):
        check_lengths(torch.tensor([True, True]), 2, 3, cpu, check_values=True)
    with pytest.raises(ValueError, match=r"shape \(2,\), got \(2, 1\)"):
        check_lengths(torch.tensor([[3], [1]]), 2, 3, cpu, check_values=True)
    with pytest.raises(ValueError, match=r"\[1, T=3\], got range \[0, 4\]"):
        check_lengths(torch.tensor([0, 4]), 2, 3, cpu, check_values=True)
    check_lengths(torch.tensor([0, 4]), 2, 3, cpu, check_values=False)  # values unchecked
    with pytest.raises(ValueError, match="same device"):
        check_lengths(torch.tensor([3, 1]), 2, 3, torch.device("meta"), check_values=False)


def test_check_labels_only_at_valid_positions() -> None:
    lengths = torch.tensor([3, 1])
    labels = torch.tensor([[0, 1, 2], [2, -100, 7]])
    check_labels(labels, lengths, 3, 2, 3, check_values=True)
    bad = torch.tensor([[0, 3, 2], [2, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 3\) at valid positions, got labels\[0, 1\] = 3"):
        check_labels(bad, lengths, 3, 2, 3, check_values=True)
    check_labels(bad, lengths, 3, 2, 3, check_values=False)
    with pytest.raises(TypeError, match="integer dtype"):
        check_labels(labels.float(), lengths, 3, 2, 3, check_values=True)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        check_labels(labels[:, :2], lengths, 3, 2, 3, check_values=True)


def test_value_checks_are_skipped_while_compiling(monkeypatch) -> None:
    assert not is_tracing()
    assert value_checks_enabled(True) and not value_checks_enabled(False)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert validation.is_tracing()
    assert not value_checks_enabled(True)
