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


def test_overflowing_scores_say_they_overflowed() -> None:
    # Finite hidden states whose cumulative scores pass float32's range: the message must not
    # blame the (finite) input, and must say what to do.
    from semicrf_nn import SemiMarkovCRFHead

    # (Not centred: centring would remove the constant offset that overflows.)
    head = SemiMarkovCRFHead(num_classes=2, max_duration=3, center_emissions=False)
    hidden = torch.full((2, 10, 2), 1e38)  # finite in float32; summed over T it is not
    assert torch.isfinite(hidden).all()
    with pytest.raises(ValueError, match=r"overflowed torch\.float32") as err:
        head(hidden, torch.tensor([10, 7]))
    message = str(err.value)
    assert "hidden_states are finite" in message and "float64" in message
    # The same values in float64 are fine.
    out = head.double()(hidden.double(), torch.tensor([10, 7]))["partition"]
    assert torch.isfinite(out).all()


def test_transposed_hidden_states_are_named() -> None:
    from semicrf_nn import SemiMarkovCRFHead

    head = SemiMarkovCRFHead(num_classes=3, max_duration=4, hidden_dim=5)
    batch, T = 2, 9
    hidden = torch.randn(T, batch, 5)  # sequence-first, as nn.GRU without batch_first gives
    lengths = torch.tensor([9, 6])
    for call in (
        lambda: head(hidden, lengths),
        lambda: head.compute_loss(hidden, lengths, torch.zeros(batch, T, dtype=torch.long)),
        lambda: head.decode(hidden, lengths),
    ):
        with pytest.raises(ValueError, match="hidden_states is probably transposed"):
            call()
    # A genuinely wrong lengths is still reported as such.
    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\)"):
        head(hidden.transpose(0, 1), torch.tensor([9, 6, 3]))


def test_float_lengths_are_a_type_error_in_every_entry_point() -> None:
    from semicrf_nn import UncertaintySemiMarkovCRFHead

    head = UncertaintySemiMarkovCRFHead(num_classes=3, max_duration=4, hidden_dim=5)
    hidden = torch.randn(2, 9, 5)
    lengths = torch.tensor([9.0, 6.0])
    for call in (
        lambda: head(hidden, lengths),
        lambda: head.decode_with_traceback(hidden, lengths),
        lambda: head.compute_boundary_marginals(hidden, lengths),
    ):
        with pytest.raises(TypeError, match="lengths must have an integer dtype"):
            call()
