"""Bad input raises ValueError/TypeError naming the argument, through every public entry point."""

from __future__ import annotations

import pytest
import torch

from semicrf_core import SemiMarkov
from semicrf_semirings import KLDivergenceSemiring, LogSemiring

GOOD = torch.zeros(2, 4, 3, 2, 2)

VALUE_CASES = [
    (torch.zeros(2, 4, 3, 2), None, "5D"),
    (torch.zeros(2, 4, 3, 2, 3), None, "C_dst=2, C_src=3"),
    (torch.zeros(2, 4, 1, 2, 2), None, "K"),
    (torch.zeros(2, 0, 3, 2, 2), None, "N-1"),
    (GOOD, torch.tensor([5, 1]), r"\[2, 5\]"),
    (GOOD, torch.tensor([6, 5]), r"\[2, 5\]"),
    (GOOD, torch.tensor([5]), r"shape \(batch,\)"),
    (GOOD, torch.tensor([[5, 5]]), r"shape \(batch,\)"),
    # Another device (meta stands in for a GPU here): named, not a failure inside torch.
    (
        GOOD,
        torch.tensor([5, 5], device="meta"),
        r"lengths must be on the same device .*\(cpu\), got meta",
    ),
]


@pytest.mark.parametrize("method", ["logpartition", "sum", "marginals", "enumerate"])
@pytest.mark.parametrize(("edge", "lengths", "match"), VALUE_CASES)
def test_value_errors(method, edge, lengths, match):
    with pytest.raises(ValueError, match=match):
        getattr(SemiMarkov(), method)(edge, lengths)


@pytest.mark.parametrize(
    ("edge", "lengths", "match"),
    [
        (GOOD.numpy(), None, "log_potentials must be a tensor"),
        (GOOD.long(), None, "floating-point"),
        (GOOD, torch.tensor([5.0, 5.0]), "integer"),
        (GOOD, [5, 5], "lengths"),
    ],
)
def test_type_errors(edge, lengths, match):
    with pytest.raises(TypeError, match=match):
        SemiMarkov().logpartition(edge, lengths)
    with pytest.raises(TypeError, match=match):
        SemiMarkov().marginals(edge, lengths)


def test_semiring_must_be_a_class():
    with pytest.raises(TypeError, match="semiring"):
        SemiMarkov(LogSemiring())
    with pytest.raises(TypeError, match="semiring"):
        SemiMarkov("log")


def test_list_inputs_must_match():
    model = SemiMarkov(KLDivergenceSemiring)
    with pytest.raises(ValueError, match=r"log_potentials\[1\]"):
        model.sum([GOOD, torch.zeros(2, 4, 3, 3, 3)])
    with pytest.raises(ValueError, match="log_potentials\\[1\\] must be 5D"):
        model.sum([GOOD, torch.zeros(3)])
    with pytest.raises(ValueError, match="two tensors"):
        model.sum(GOOD)


def test_a_list_for_a_one_tensor_semiring_is_a_type_error():
    with pytest.raises(TypeError, match="one tensor"):
        SemiMarkov(LogSemiring).sum([GOOD, GOOD])
    with pytest.raises(TypeError, match="one tensor"):
        SemiMarkov(LogSemiring).enumerate([GOOD])


def test_flags_must_be_bools():
    with pytest.raises(TypeError, match="use_banded"):
        SemiMarkov().logpartition(GOOD, use_banded="yes")
    with pytest.raises(TypeError, match="use_linear_scan"):
        SemiMarkov().logpartition(GOOD, use_linear_scan=1)


def test_score_checks_its_arguments():
    with pytest.raises(ValueError, match="parts"):
        SemiMarkov().score(GOOD, torch.zeros(2, 4, 3, 2))
    with pytest.raises(TypeError, match="potentials"):
        SemiMarkov().score([GOOD], GOOD)


def test_empty_batch_is_fine():
    v = SemiMarkov().sum(torch.zeros(0, 4, 3, 2, 2))
    assert v.shape == (0,)
