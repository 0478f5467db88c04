"""Bad input raises ValueError / TypeError naming the argument, the expected and the actual."""

from __future__ import annotations

import warnings

import pytest
import torch

from semicrf_kernels import semi_crf_streaming_forward
from semicrf_kernels.validation import PrecisionWarning, check_K, validate_streaming_inputs


@pytest.fixture
def good(make_inputs):
    return make_inputs(2, 5, 3, 3, proj=True, lengths=[5, 3])


def call(inp, **changes):
    args = inp._replace(**{k: v for k, v in changes.items() if k in inp._fields})
    validate_streaming_inputs(
        *args.args,
        proj_start=args.proj_start,
        proj_end=args.proj_end,
        validate=changes.get("validate", True),
    )


def test_good_inputs_pass(good) -> None:
    call(good)
    with warnings.catch_warnings():
        # bfloat16 keeps cum_scores to 1e-3 only below 0.128: the precision guard may warn.
        warnings.simplefilter("ignore", PrecisionWarning)
        call(good.to(torch.bfloat16))
    call(good._replace(lengths=good.lengths.to(torch.int32)))


@pytest.mark.parametrize(
    ("change", "error", "pattern"),
    [
        (
            lambda g: {"cum_scores": g.cum_scores[0]},
            ValueError,
            r"cum_scores: expected 3 dims .*got shape \(6, 3\)",
        ),
        (
            lambda g: {"cum_scores": g.cum_scores[:, :1]},
            ValueError,
            r"cum_scores: .*T >= 1.*\(2, 1, 3\)",
        ),
        (
            lambda g: {"cum_scores": g.cum_scores.long()},
            TypeError,
            r"cum_scores: expected a floating dtype.*int64",
        ),
        (
            lambda g: {"cum_scores": g.cum_scores.tolist()},
            TypeError,
            r"cum_scores: expected a torch.Tensor, got list",
        ),
        (
            lambda g: {"transition": g.transition[:2]},
            ValueError,
            r"transition: expected shape \(C, C\) = \(3, 3\), got \(2, 3\)",
        ),
        (
            lambda g: {"transition": torch.zeros(4, 3, 3, dtype=torch.float64)},
            ValueError,
            r"transition: expected shape \(K, C, C\) = \(3, 3, 3\), got \(4, 3, 3\)",
        ),
        (
            lambda g: {"transition": torch.zeros(3, dtype=torch.float64)},
            ValueError,
            r"transition: expected shape .*got \(3,\)",
        ),
        (
            lambda g: {"duration_bias": g.duration_bias[:2]},
            ValueError,
            r"duration_bias: expected shape \(K, C\) = \(3, 3\), got \(2, 3\)",
        ),
        (
            lambda g: {"lengths": g.lengths.bool()},
            TypeError,
            r"lengths: expected an integer dtype, got torch.bool",
        ),
        (
            lambda g: {"lengths": g.lengths.to(torch.complex64)},
            TypeError,
            r"lengths: expected an integer dtype, got torch.complex64",
        ),
        (
            lambda g: {"lengths": g.lengths[:1]},
            ValueError,
            r"lengths: expected shape \(batch,\) = \(2,\), got \(1,\)",
        ),
        (
            lambda g: {"lengths": torch.tensor([5, 0])},
            ValueError,
            r"lengths: expected values in \[1, T\] = \[1, 5\], got 0",
        ),
        (
            lambda g: {"lengths": torch.tensor([7, 1])},
            ValueError,
            r"lengths: expected values in \[1, T\] = \[1, 5\], got 7",
        ),
        (
            # T rows instead of T + 1 (the per-position scores, or no leading zero row): named
            # as a cum_scores problem with the T + 1 rule, not blamed on lengths.
            lambda g: {"lengths": torch.tensor([6, 1])},
            ValueError,
            r"cum_scores: expected T \+ 1 rows .*got 6 rows for a length of 6: pass 7 rows",
        ),
        # One rule everywhere (docs/conventions.md section 5): float lengths are a TypeError,
        # integral or not, as in the heads and SemiMarkov.
        (
            lambda g: {"lengths": torch.tensor([2.5, 1.0])},
            TypeError,
            r"lengths: expected an integer dtype, got torch.float32",
        ),
        (
            lambda g: {"lengths": g.lengths.double()},
            TypeError,
            r"lengths: expected an integer dtype, got torch.float64",
        ),
        (lambda g: {"K": 0}, ValueError, r"K: expected a positive int .*got 0"),
        (lambda g: {"K": True}, TypeError, r"K: expected a positive int .*got bool True"),
        (lambda g: {"K": 3.0}, TypeError, r"K: expected a positive int .*got float 3.0"),
        (
            lambda g: {"proj_start": g.proj_start[:, :4]},
            ValueError,
            r"proj_start: expected shape \(batch, T, C\) = \(2, 5, 3\), got \(2, 4, 3\)",
        ),
        (
            lambda g: {"proj_end": g.proj_end.int()},
            TypeError,
            r"proj_end: expected a floating dtype",
        ),
    ],
)
def test_bad_input(good, change, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        call(good, **change(good))


@pytest.mark.parametrize(
    ("name", "index", "value", "pattern"),
    [
        (
            "cum_scores",
            (1, 2, 0),
            float("nan"),
            r"cum_scores: expected finite values at valid rows, got NaN/Inf at batch 1, row 2",
        ),
        ("cum_scores", (0, 5, 1), float("inf"), r"cum_scores: .*batch 0, row 5"),
        (
            "proj_start",
            (0, 4, 0),
            float("-inf"),
            r"proj_start: expected finite values .*batch 0, position 4",
        ),
        ("proj_end", (1, 0, 2), float("nan"), r"proj_end: .*batch 1, position 0"),
        (
            "transition",
            (1, 2),
            float("nan"),
            r"transition: expected finite values or -inf \(forbidden\), got nan at index \(1, 2\)",
        ),
        ("duration_bias", (0, 1), float("inf"), r"duration_bias: .*got inf at index \(0, 1\)"),
    ],
)
def test_bad_values(good, name, index, value, pattern) -> None:
    x = getattr(good, name).clone()
    x[index] = value
    with pytest.raises(ValueError, match=pattern):
        call(good, **{name: x})
    call(good, validate=False, **{name: x})  # value checks are off


def test_padding_values_are_not_checked(good) -> None:
    # Sequence 1 has length 3: cum rows 4, 5 and projection positions 3, 4 are padding.
    cum, ps = good.cum_scores.clone(), good.proj_start.clone()
    cum[1, 4:] = float("nan")
    ps[1, 3:] = float("inf")
    call(good, cum_scores=cum, proj_start=ps)
    # Forbidden entries are valid values.
    trans = good.transition.clone()
    trans[0, 0] = -float("inf")
    call(good, transition=trans)


def test_device_mismatch(good) -> None:
    if not torch.cuda.is_available():
        # The meta device stands in for a second device.
        with pytest.raises(
            ValueError, match=r"transition: expected a tensor on cum_scores' device cpu, got meta"
        ):
            call(good, transition=good.transition.to("meta"))
        with pytest.raises(
            ValueError, match=r"lengths: expected a tensor on cum_scores' device cpu, got meta"
        ):
            call(good, lengths=good.lengths.to("meta"))
    else:
        with pytest.raises(ValueError, match="device"):
            call(good, lengths=good.lengths.cuda())


def test_value_checks_are_skipped_while_compiling(good, monkeypatch) -> None:
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    call(good, lengths=torch.tensor([9, 0]))  # would raise in eager mode


def test_check_K_accepts_numpy_ints() -> None:
    np = pytest.importorskip("numpy")
    assert check_K(np.int64(4)) == 4


def test_api_validates(good) -> None:
    with pytest.raises(ValueError, match="lengths"):
        semi_crf_streaming_forward(*good.args[:3], torch.tensor([5, 7]), 3)
