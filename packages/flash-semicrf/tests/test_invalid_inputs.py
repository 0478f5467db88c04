"""Invalid inputs of every public function raise a clear error (conventions section 5).

One table row per (function, bad input): the call, the exception type (``ValueError``, or
``TypeError`` for a wrong type/dtype) and fragments that the message must contain: the
argument's name, the expected value or shape and the actual one. Devices are tested with
``meta`` tensors (no second device needed). A second part checks that non-contiguous and
expanded inputs give exactly the results of contiguous ones. A gap found here is first an
``xfail(strict)`` row whose reason names the owner's file, until it is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from semicrf_core import BandedMatrix, BlockTriangularMatrix, SemiMarkov, block_triang_matmul
from semicrf_kernels import (
    compute_edge_block_streaming,
    semi_crf_streaming_forward,
    semi_crf_streaming_viterbi,
)
from semicrf_nn import (
    CallableDuration,
    SemiMarkovCRFHead,
    UncertaintySemiMarkovCRFHead,
    create_duration_distribution,
)
from semicrf_semirings import EntropySemiring, LogSemiring

B, T, C, K, H = 2, 5, 3, 3, 4
_gen = torch.Generator().manual_seed(0)
CUM = torch.nn.functional.pad(torch.randn(B, T, C, generator=_gen).cumsum(1), (0, 0, 1, 0))
TRANS = torch.randn(C, C, generator=_gen)
BIAS = torch.randn(K, C, generator=_gen)
PROJ = torch.randn(B, T, C, generator=_gen)
LENGTHS = torch.tensor([5, 3])
HIDDEN = torch.randn(B, T, H, generator=_gen)
LABELS = torch.randint(0, C, (B, T), generator=_gen)
EDGE = torch.randn(B, 4, 3, C, C, generator=_gen)  # N = 5 fences, durations 1..2


class Case(NamedTuple):
    """``call()`` raises ``error`` whose message contains every one of ``fragments``."""

    id: str
    call: Callable[[], object]
    error: type[Exception]
    fragments: tuple[str, ...]


def _with(x: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    y = x.clone()
    y[index] = value
    return y


# ----------------------------------------------------------------------------- kernels
def _streaming_cases(name: str, fn: Callable) -> list[Case]:
    def call(**changes):
        args = {"cum_scores": CUM, "transition": TRANS, "duration_bias": BIAS,
                "lengths": LENGTHS, "K": K}  # fmt: skip
        args.update(changes)
        return lambda: fn(**args)

    rows = [
        ("cum_ndim", call(cum_scores=CUM[0]), ValueError, ("cum_scores", "(batch, T+1, C)", "(6, 3)")),
        ("cum_dtype", call(cum_scores=CUM.long()), TypeError, ("cum_scores", "floating", "torch.int64")),
        ("cum_type", call(cum_scores=CUM.tolist()), TypeError, ("cum_scores", "torch.Tensor", "list")),
        ("cum_T0", call(cum_scores=CUM[:, :1]), ValueError, ("cum_scores", "T >= 1", "(2, 1, 3)")),
        ("cum_nan", call(cum_scores=_with(CUM, (0, 2, 1), math.nan)), ValueError, ("cum_scores", "finite", "batch 0, row 2")),
        ("cum_inf", call(cum_scores=_with(CUM, (1, 3, 0), math.inf)), ValueError, ("cum_scores", "finite", "batch 1, row 3")),
        ("trans_size", call(transition=torch.zeros(4, 4)), ValueError, ("transition", "(3, 3)", "(4, 4)")),
        ("trans_kcc_size", call(transition=torch.zeros(2, C, C)), ValueError, ("transition", "(3, 3, 3)", "(2, 3, 3)")),
        ("trans_ndim", call(transition=torch.zeros(C)), ValueError, ("transition", "(3, 3)", "(3,)")),
        ("trans_dtype", call(transition=TRANS.int()), TypeError, ("transition", "floating", "torch.int32")),
        ("trans_nan", call(transition=_with(TRANS, (0, 1), math.nan)), ValueError, ("transition", "finite values or -inf", "nan", "(0, 1)")),
        ("trans_plus_inf", call(transition=_with(TRANS, (2, 2), math.inf)), ValueError, ("transition", "finite values or -inf", "inf")),
        ("trans_device", call(transition=TRANS.to("meta")), ValueError, ("transition", "cpu", "meta")),
        ("bias_size", call(duration_bias=BIAS[:2]), ValueError, ("duration_bias", "(3, 3)", "(2, 3)")),
        ("bias_nan", call(duration_bias=_with(BIAS, (1, 0), math.nan)), ValueError, ("duration_bias", "finite values or -inf", "nan")),
        ("bias_device", call(duration_bias=BIAS.to("meta")), ValueError, ("duration_bias", "cpu", "meta")),
        ("lengths_shape", call(lengths=torch.tensor([5, 3, 1])), ValueError, ("lengths", "(2,)", "(3,)")),
        ("lengths_zero", call(lengths=torch.tensor([5, 0])), ValueError, ("lengths", "[1, 5]", "got 0")),
        ("lengths_negative", call(lengths=torch.tensor([-1, 3])), ValueError, ("lengths", "[1, 5]", "got -1")),
        ("lengths_above_T", call(lengths=torch.tensor([7, 3])), ValueError, ("lengths", "[1, 5]", "got 7")),
        ("cum_scores_T_rows", call(lengths=torch.tensor([6, 3])), ValueError, ("cum_scores", "T + 1 rows", "got 6 rows")),
        ("lengths_fractional", call(lengths=torch.tensor([2.5, 3.0])), TypeError, ("lengths", "integer", "torch.float32")),
        ("lengths_float", call(lengths=torch.tensor([5.0, 3.0])), TypeError, ("lengths", "integer", "torch.float32")),
        ("lengths_bool", call(lengths=torch.tensor([True, True])), TypeError, ("lengths", "integer", "torch.bool")),
        ("lengths_device", call(lengths=LENGTHS.to("meta")), ValueError, ("lengths", "cpu", "meta")),
        ("K_zero", call(K=0), ValueError, ("K", "positive int", "0")),
        ("K_float", call(K=3.0), TypeError, ("K", "positive int", "float")),
        ("K_bool", call(K=True), TypeError, ("K", "positive int", "bool")),
        ("proj_start_shape", call(proj_start=PROJ[:, :4]), ValueError, ("proj_start", "(2, 5, 3)", "(2, 4, 3)")),
        ("proj_end_nan", call(proj_end=_with(PROJ, (1, 2, 2), math.nan)), ValueError, ("proj_end", "finite", "batch 1, position 2")),
        ("proj_end_device", call(proj_end=PROJ.to("meta")), ValueError, ("proj_end", "cpu", "meta")),
        ("num_warps", call(num_warps=3), ValueError, ("num_warps", "power of two", "3")),
    ]  # fmt: skip
    if name == "streaming_forward":
        rows.append(
            ("semiring", call(semiring="sum"), ValueError, ("semiring", "'log' or 'max'", "'sum'"))
        )
    return [Case(f"{name}-{r[0]}", *r[1:]) for r in rows]


def _edge_block(**changes):
    args = {"cum_scores": CUM, "transition": TRANS, "duration_bias": BIAS, "start": 1, "k": 2}
    args.update(changes)
    return lambda: compute_edge_block_streaming(**args)


EDGE_BLOCK_CASES = [
    Case("edge_block-start_negative", _edge_block(start=-1), ValueError, ("start", "[0, 3]", "-1")),
    Case("edge_block-start_past_end", _edge_block(start=4), ValueError, ("start", "[0, 3]", "4")),
    Case("edge_block-start_float", _edge_block(start=1.0), TypeError, ("start", "int", "float")),
    Case("edge_block-k_zero", _edge_block(k=0), ValueError, ("k", "[1, 3]", "0")),
    Case("edge_block-k_above_K", _edge_block(k=4), ValueError, ("k", "[1, 3]", "4")),
    Case("edge_block-cum_ndim", _edge_block(cum_scores=CUM[0]), ValueError, ("cum_scores", "(batch, T+1, C)", "(6, 3)")),
    Case("edge_block-trans_size", _edge_block(transition=torch.zeros(2, 2)), ValueError, ("transition", "(3, 3)", "(2, 2)")),
    Case("edge_block-proj_device", _edge_block(proj_start=PROJ.to("meta")), ValueError, ("proj_start", "cpu", "meta")),
]  # fmt: skip


# ----------------------------------------------------------------------------- core
def _semimarkov(method: str, edge=EDGE, lengths=None, semiring=LogSemiring, **kw):
    return lambda: getattr(SemiMarkov(semiring), method)(edge, lengths, **kw)


CORE_CASES = []
for _method in ("logpartition", "marginals"):
    CORE_CASES += [
        Case(f"{_method}-edge_ndim", _semimarkov(_method, EDGE[0]), ValueError, ("log_potentials", "5D", "(4, 3, 3, 3)")),
        Case(f"{_method}-edge_labels", _semimarkov(_method, torch.zeros(B, 4, 3, 3, 2)), ValueError, ("log_potentials", "equal label dims", "C_src=2")),
        Case(f"{_method}-edge_K1", _semimarkov(_method, EDGE[:, :, :1]), ValueError, ("log_potentials", "must be >= 2", "K=1")),
        Case(f"{_method}-edge_dtype", _semimarkov(_method, EDGE.long()), TypeError, ("log_potentials", "floating", "torch.int64")),
        Case(f"{_method}-edge_type", _semimarkov(_method, EDGE.tolist()), TypeError, ("log_potentials", "torch.Tensor", "list")),
        Case(f"{_method}-lengths_low", _semimarkov(_method, lengths=torch.tensor([1, 5])), ValueError, ("lengths", "[2, 5]", "min=1")),
        Case(f"{_method}-lengths_high", _semimarkov(_method, lengths=torch.tensor([2, 6])), ValueError, ("lengths", "[2, 5]", "max=6")),
        Case(f"{_method}-lengths_float", _semimarkov(_method, lengths=torch.tensor([2.0, 5.0])), TypeError, ("lengths", "integer", "torch.float32")),
        Case(f"{_method}-lengths_shape", _semimarkov(_method, lengths=torch.tensor([5])), ValueError, ("lengths", "(2,)", "(1,)")),
        Case(f"{_method}-banded_entropy", _semimarkov(_method, semiring=EntropySemiring, use_banded=True), ValueError, ("use_banded", "LogSemiring", "EntropySemiring")),
        Case(f"{_method}-two_algorithms", _semimarkov(_method, use_banded=True, use_vectorized=True), ValueError, ("use_banded", "use_vectorized")),
        Case(f"{_method}-shards", _semimarkov(_method, checkpoint_shards=0), ValueError, ("checkpoint_shards", ">= 1", "0")),
    ]  # fmt: skip
CORE_CASES += [
    Case("semimarkov-semiring_name", lambda: SemiMarkov("log"), TypeError, ("semiring", "Semiring class", "'log'")),
    Case("semimarkov-semiring_instance", lambda: SemiMarkov(LogSemiring()), TypeError, ("semiring", "Semiring class", "LogSemiring")),
]  # fmt: skip

_DENSE = torch.randn(1, 6, 6, generator=_gen)
_BT = BlockTriangularMatrix.from_dense(torch.randn(1, 9, 9, generator=_gen), 3, 3, 2)
SPARSE_CASES = [
    Case("banded-lu_negative", lambda: BandedMatrix.from_dense(_DENSE, -1, 1), ValueError, ("lu", ">= 0", "-1")),
    Case("banded-ld_float", lambda: BandedMatrix.from_dense(_DENSE, 1, 1.0), TypeError, ("ld", "int", "float")),
    Case("banded-dense_shape", lambda: BandedMatrix.from_dense(torch.zeros(4, 5), 1, 1), ValueError, ("dense", "(batch, n, n)", "(1, 4, 5)")),
    Case("banded-dense_type", lambda: BandedMatrix.from_dense([[0.0]], 0, 0), TypeError, ("dense", "torch.Tensor", "list")),
    Case("banded-data_ndim", lambda: BandedMatrix(torch.zeros(4, 3), 1, 1), ValueError, ("data", "3D", "(4, 3)")),
    Case("banded-data_width", lambda: BandedMatrix(torch.zeros(1, 4, 2), 1, 1), ValueError, ("data.shape[-1]", "3", "got 2")),
    Case("banded-multiply_size", lambda: BandedMatrix.from_dense(_DENSE, 1, 1).multiply_log(BandedMatrix.from_dense(torch.zeros(1, 5, 5), 1, 1)), ValueError, ("other", "n=6", "n=5")),
    Case("banded-multiply_type", lambda: BandedMatrix.from_dense(_DENSE, 1, 1).multiply_max(_DENSE), TypeError, ("other", "BandedMatrix", "Tensor")),
    Case("block-values_shape", lambda: BlockTriangularMatrix(torch.zeros(2, 3, 3), torch.tensor([[0, 1]]), 3, 3), ValueError, ("values", "(..., 1, 3, 3)", "(2, 3, 3)")),
    Case("block-K_zero", lambda: BlockTriangularMatrix.from_dense(torch.zeros(3, 3), 0, 3, 1), ValueError, ("K", ">= 1", "0")),
    Case("block-span_zero", lambda: BlockTriangularMatrix.from_dense(torch.zeros(9, 9), 3, 3, 0), ValueError, ("span", ">= 1", "0")),
    Case("block-dense_shape", lambda: BlockTriangularMatrix.from_dense(torch.zeros(8, 8), 3, 3, 2), ValueError, ("dense", "(..., 9, 9)", "(8, 8)")),
    Case("block-matmul_sizes", lambda: block_triang_matmul(_BT, BlockTriangularMatrix.from_dense(torch.zeros(1, 8, 8), 2, 4, 2), LogSemiring, 2), ValueError, ("left and right", "K=3, C=3", "K=2, C=4")),
    Case("block-matmul_type", lambda: block_triang_matmul(_BT, _DENSE, LogSemiring, 2), TypeError, ("right", "BlockTriangularMatrix", "Tensor")),
]  # fmt: skip


# ----------------------------------------------------------------------------- nn
def _head(cls=SemiMarkovCRFHead, **kw) -> SemiMarkovCRFHead:
    torch.manual_seed(0)
    return cls(C, K, hidden_dim=H, **kw)


def _head_with(parameter: str, index: tuple, value: float) -> SemiMarkovCRFHead:
    head = _head(use_sequence_boundaries=True)
    with torch.no_grad():
        head.get_parameter(parameter)[index] = value
    return head


def _head_call(method: str, head=None, **changes):
    args = {"hidden_states": HIDDEN, "lengths": LENGTHS}
    if method == "compute_loss":
        args["labels"] = LABELS
    args.update(changes)
    return lambda: getattr(head or _head(), method)(**args)


HEAD_CASES = []
for _method in ("forward", "compute_loss", "decode", "decode_with_traceback"):
    HEAD_CASES += [
        Case(f"head.{_method}-hidden_ndim", _head_call(_method, hidden_states=HIDDEN[0]), ValueError, ("hidden_states", "3D", "(5, 4)")),
        Case(f"head.{_method}-hidden_features", _head_call(_method, hidden_states=torch.zeros(B, T, 5)), ValueError, ("hidden_states", "must be 4", "(2, 5, 5)")),
        Case(f"head.{_method}-hidden_dtype", _head_call(_method, hidden_states=HIDDEN.long()), TypeError, ("hidden_states", "floating", "torch.int64")),
        Case(f"head.{_method}-hidden_type", _head_call(_method, hidden_states=HIDDEN.numpy()), TypeError, ("hidden_states", "torch.Tensor", "ndarray")),
        Case(f"head.{_method}-hidden_nan", _head_call(_method, hidden_states=_with(HIDDEN, (0, 1, 2), math.nan)), ValueError, ("hidden_states", "finite", "1 NaN")),
        Case(f"head.{_method}-hidden_device", _head_call(_method, hidden_states=HIDDEN.to("meta")), ValueError, ("hidden_states", "meta", "cpu")),
        Case(f"head.{_method}-lengths_zero", _head_call(_method, lengths=torch.tensor([0, 3])), ValueError, ("lengths", "[1, T=5]", "[0, 3]")),
        Case(f"head.{_method}-lengths_negative", _head_call(_method, lengths=torch.tensor([5, -2])), ValueError, ("lengths", "[1, T=5]", "[-2, 5]")),
        Case(f"head.{_method}-lengths_above_T", _head_call(_method, lengths=torch.tensor([6, 3])), ValueError, ("lengths", "[1, T=5]", "[3, 6]")),
        Case(f"head.{_method}-lengths_float", _head_call(_method, lengths=torch.tensor([5.0, 3.0])), TypeError, ("lengths", "integer", "torch.float32")),
        Case(f"head.{_method}-lengths_shape", _head_call(_method, lengths=torch.tensor([5])), ValueError, ("lengths", "(2,)", "(1,)")),
        Case(f"head.{_method}-lengths_device", _head_call(_method, lengths=LENGTHS.to("meta")), ValueError, ("lengths", "cpu", "meta")),
        Case(f"head.{_method}-transition_nan", _head_call(_method, _head_with("transition_raw", (1, 2), math.nan)), ValueError, ("transition", "finite values or -inf", "nan")),
        Case(f"head.{_method}-duration_nan", _head_call(_method, _head_with("duration_dist.bias", (0, 1), math.nan)), ValueError, ("duration_bias", "finite values or -inf", "nan")),
        Case(f"head.{_method}-pi_start_inf", _head_call(_method, _head_with("pi_start", (0,), math.inf)), ValueError, ("proj_start", "finite", "position 0")),
        Case(f"head.{_method}-projection_inf", _head_call(_method, _head_with("projection.weight", (0, 0), math.inf)), ValueError, ("emission scores", "finite", "NaN")),
    ]  # fmt: skip
for _method in ("forward", "compute_loss", "decode"):
    HEAD_CASES.append(
        Case(f"head.{_method}-backend", _head_call(_method, backend="fast"), ValueError, ("backend", "'streaming'", "'fast'"))
    )  # fmt: skip
HEAD_CASES += [
    # Caught when the head is built, not at its first (GPU) call.
    Case("head.init-num_warps", lambda: _head(num_warps=3), ValueError, ("num_warps", "power of two", "3")),
    Case("head.compute_loss-labels_range", _head_call("compute_loss", labels=_with(LABELS, (0, 1), 5).long()), ValueError, ("labels", "[0, 3)", "labels[0, 1] = 5")),
    Case("head.compute_loss-labels_negative", _head_call("compute_loss", labels=_with(LABELS, (1, 2), -1).long()), ValueError, ("labels", "[0, 3)", "labels[1, 2] = -1")),
    Case("head.compute_loss-labels_shape", _head_call("compute_loss", labels=LABELS[:, :4]), ValueError, ("labels", "(2, 5)", "(2, 4)")),
    Case("head.compute_loss-labels_dtype", _head_call("compute_loss", labels=LABELS.float()), TypeError, ("labels", "integer", "torch.float32")),
    Case("head.compute_loss-labels_device", _head_call("compute_loss", labels=LABELS.to("meta")), ValueError, ("labels", "cpu", "meta")),
    Case("head.compute_loss-reduction", _head_call("compute_loss", reduction="avg"), ValueError, ("reduction", "'mean'", "'avg'")),
    Case("head.compute_loss-labels_and_segments", _head_call("compute_loss", segments=[[(0, 4, 1)], [(0, 2, 0)]]), ValueError, ("labels", "segments")),
    Case("head.compute_loss-segments_tiling", _head_call("compute_loss", labels=None, segments=[[(0, 3, 1)], [(0, 2, 0)]]), ValueError, ("segments[0]", "[0, 5)", "end=3")),
    Case("head.compute_loss-segments_label", _head_call("compute_loss", labels=None, segments=[[(0, 4, 7)], [(0, 2, 0)]]), ValueError, ("segments[0]", "[0, 3)", "label=7")),
    Case("head.forward-edge_memory", _head_call("forward", _head(edge_memory_threshold=10), backend="exact"), ValueError, ("edge_memory_threshold", "10", "bytes")),
    Case("head.decode_with_traceback-too_long", _head_call("decode_with_traceback", max_traceback_length=3), ValueError, ("max_traceback_length", "=3", "length 5")),
    Case("head.decode_with_traceback-limit_zero", _head_call("decode_with_traceback", max_traceback_length=0), ValueError, ("max_traceback_length", ">= 1", "0")),
    Case("head.decode_with_traceback-limit_float", _head_call("decode_with_traceback", max_traceback_length=10.0), TypeError, ("max_traceback_length", "int", "float")),
]  # fmt: skip

_U = UncertaintySemiMarkovCRFHead
UNCERTAINTY_CASES = []
for _method in (
    "compute_boundary_marginals",
    "compute_position_marginals",
    "compute_entropy_streaming",
    "compute_entropy_exact",
    "sequence_uncertainty",
):
    UNCERTAINTY_CASES += [
        Case(f"{_method}-lengths_above_T", _head_call(_method, _head(_U), lengths=torch.tensor([6, 3])), ValueError, ("lengths", "[1, T=5]", "[3, 6]")),
        Case(f"{_method}-hidden_nan", _head_call(_method, _head(_U), hidden_states=_with(HIDDEN, (1, 0, 0), math.inf)), ValueError, ("hidden_states", "finite", "1 infinite")),
        Case(f"{_method}-hidden_features", _head_call(_method, _head(_U), hidden_states=torch.zeros(B, T, 2)), ValueError, ("hidden_states", "must be 4", "(2, 5, 2)")),
    ]  # fmt: skip
UNCERTAINTY_CASES += [
    Case("compute_boundary_marginals-backend", _head_call("compute_boundary_marginals", _head(_U), backend="x"), ValueError, ("backend", "'exact'", "'x'")),
    Case("compute_position_marginals-backend", _head_call("compute_position_marginals", _head(_U), backend="x"), ValueError, ("backend", "'exact'", "'x'")),
    Case("sequence_uncertainty-focus_mode", _head_call("sequence_uncertainty", _head(_U), focus_mode="x"), ValueError, ("focus_mode", "'high_uncertainty'", "'x'")),
    Case("weighted_loss-focus_mode", _head_call("compute_loss_uncertainty_weighted", _head(_U), labels=LABELS, focus_mode="x"), ValueError, ("focus_mode", "'boundary_regions'", "'x'")),
    Case("weighted_loss-weight", _head_call("compute_loss_uncertainty_weighted", _head(_U), labels=LABELS, uncertainty_weight=-1.0), ValueError, ("uncertainty_weight", ">= 0", "-1.0")),
    Case("weighted_loss-reduction", _head_call("compute_loss_uncertainty_weighted", _head(_U), labels=LABELS, reduction="max"), ValueError, ("reduction", "'sum'", "'max'")),
    Case("weighted_loss-labels_range", _head_call("compute_loss_uncertainty_weighted", _head(_U), labels=_with(LABELS, (0, 0), 3).long()), ValueError, ("labels", "[0, 3)", "= 3")),
]  # fmt: skip

DURATION_CASES = [
    Case("duration-unknown_name", lambda: create_duration_distribution("weibull", K, C), ValueError, ("duration distribution", "geometric", "'weibull'")),
    Case("duration-wrong_type", lambda: create_duration_distribution(3, K, C), TypeError, ("duration_distribution", "DurationDistribution", "int")),
    Case("duration-K_zero", lambda: create_duration_distribution("poisson", 0, C), ValueError, ("max_duration", ">= 1", "0")),
    Case("duration-C_str", lambda: create_duration_distribution("poisson", K, "3"), TypeError, ("num_classes", "int", "str")),
    Case("duration-init_nan", lambda: create_duration_distribution("geometric", K, C, init_logit=math.nan), ValueError, ("init_logit", "finite", "nan")),
    Case("duration-instance_sizes", lambda: create_duration_distribution(create_duration_distribution("poisson", K + 1, C), K, C), ValueError, ("max_duration", "(3, 3)", "(4, 3)")),
    Case("duration-callable_shape", lambda: CallableDuration(K, C, lambda k, c, d: torch.zeros(k + 1, c))(), ValueError, ("func", "(3, 3)", "(4, 3)")),
    Case("duration-callable_dtype", lambda: CallableDuration(K, C, lambda k, c, d: torch.zeros(k, c, dtype=torch.long))(), TypeError, ("func", "floating", "torch.int64")),
    Case("duration-callable_nan", lambda: CallableDuration(K, C, lambda k, c, d: torch.full((k, c), math.nan))(), ValueError, ("func", "NaN")),
    Case("duration-callable_not_callable", lambda: CallableDuration(K, C, 3), TypeError, ("func", "callable", "int")),
    Case("head-unknown_duration", lambda: SemiMarkovCRFHead(C, K, duration_distribution="weibull"), ValueError, ("duration distribution", "poisson", "'weibull'")),
    Case("head-num_classes", lambda: SemiMarkovCRFHead(0, K), ValueError, ("num_classes", ">= 1", "0")),
    Case("head-max_duration_bool", lambda: SemiMarkovCRFHead(C, True), TypeError, ("max_duration", "int", "bool")),
    Case("head-init_scale", lambda: SemiMarkovCRFHead(C, K, init_scale=-1.0), ValueError, ("init_scale", ">= 0", "-1.0")),
    Case("head-mask_shape", lambda: SemiMarkovCRFHead(C, K, transition_mask=torch.ones(2, 2, dtype=torch.bool)), ValueError, ("transition_mask", "(3, 3)", "(2, 2)")),
    Case("head-mask_type", lambda: SemiMarkovCRFHead(C, K, transition_mask=[[True]]), TypeError, ("transition_mask", "bool tensor", "list")),
    Case("head-projections_need_hidden_dim", lambda: SemiMarkovCRFHead(C, K, use_boundary_projections=True), ValueError, ("use_boundary_projections", "hidden_dim")),
    Case("head-edge_memory", lambda: SemiMarkovCRFHead(C, K, edge_memory_threshold=0), ValueError, ("edge_memory_threshold", "positive", "0")),
]  # fmt: skip

CASES = (
    _streaming_cases("streaming_forward", semi_crf_streaming_forward)
    + _streaming_cases("streaming_viterbi", semi_crf_streaming_viterbi)
    + EDGE_BLOCK_CASES
    + CORE_CASES
    + SPARSE_CASES
    + HEAD_CASES
    + UNCERTAINTY_CASES
    + DURATION_CASES
)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_input_raises_a_clear_error(case: Case) -> None:
    with pytest.raises(case.error) as info:
        case.call()
    message = str(info.value)
    missing = [f for f in case.fragments if f not in message]
    assert not missing, f"message {message!r} lacks {missing}"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------- known gaps
@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "plus_inf"])
def test_semimarkov_rejects_nan_and_plus_inf_potentials(value: float) -> None:
    with pytest.raises(ValueError, match="log_potentials"):
        SemiMarkov().logpartition(_with(EDGE, (0, 1, 1, 0, 2), value))


def test_edge_block_rejects_nan_scores() -> None:
    with pytest.raises(ValueError, match="cum_scores"):
        compute_edge_block_streaming(_with(CUM, (0, 2, 1), math.nan), TRANS, BIAS, 1, 2)


@pytest.mark.parametrize("backend", ["exact", "binary_tree_sharded"])
@pytest.mark.parametrize("parameter", ["transition_raw", "duration_dist.bias"])
def test_exact_backends_reject_nan_parameters(backend: str, parameter: str) -> None:
    head = _head_with(parameter, (0, 0), math.nan)
    with pytest.raises(ValueError, match="finite"):
        head(HIDDEN, LENGTHS, backend=backend)


def test_block_indices_error_names_the_actual_value() -> None:
    with pytest.raises(ValueError, match="got 5"):
        BlockTriangularMatrix(torch.zeros(1, C, C), torch.tensor([[0, 5]]), 3, C)


def test_banded_matrix_rejects_integer_data() -> None:
    with pytest.raises(TypeError, match="data"):
        BandedMatrix(torch.zeros(1, 4, 3, dtype=torch.long), 1, 1)


@pytest.mark.parametrize("validate", [True, False])
def test_nan_hidden_states_at_padding_change_nothing(validate: bool) -> None:
    head = _head(validate=validate)
    padding = torch.arange(T)[None, :, None] >= LENGTHS[:, None, None]
    clean = HIDDEN.clone()
    dirty = torch.where(padding, torch.full_like(HIDDEN, math.nan), HIDDEN)
    expected = head.compute_loss(clean, LENGTHS, LABELS)
    expected_grads = torch.autograd.grad(expected, list(head.parameters()))
    loss = head.compute_loss(dirty, LENGTHS, LABELS)
    grads = torch.autograd.grad(loss, list(head.parameters()))
    assert torch.equal(loss, expected)
    for g, e in zip(grads, expected_grads):
        assert torch.equal(g, e)


# ----------------------------------------------------------------------------- layouts
def test_head_non_contiguous_and_expanded_inputs_equal_contiguous_ones() -> None:
    head = _head(use_boundary_projections=True, use_sequence_boundaries=True)
    hidden_t = HIDDEN.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    lengths_strided = torch.stack([LENGTHS, LENGTHS + 7], dim=1)[:, 0]
    labels_strided = torch.stack([LABELS, LABELS * 0], dim=2)[..., 0]
    assert not hidden_t.is_contiguous() and not lengths_strided.is_contiguous()
    assert not labels_strided.is_contiguous()

    def run(hidden, lengths, labels):
        leaf = hidden.detach().requires_grad_()
        loss = head.compute_loss(leaf, lengths, labels)
        grads = torch.autograd.grad(loss, [leaf, *head.parameters()])
        path = head.decode_with_traceback(hidden, lengths)
        return loss, grads, path

    a = run(hidden_t, lengths_strided, labels_strided)
    b = run(HIDDEN, LENGTHS, LABELS)
    assert torch.equal(a[0], b[0])
    for x, y in zip(a[1], b[1]):
        assert torch.equal(x, y)
    assert torch.equal(a[2].scores, b[2].scores) and a[2].segments == b[2].segments

    # A batch expanded from one sequence (stride 0) gives that sequence's loss per row.
    one = HIDDEN[:1].expand(3, -1, -1)
    lengths = LENGTHS[:1].expand(3)
    labels = LABELS[:1].expand(3, -1)
    per_row = head.compute_loss(one, lengths, labels, reduction="none")
    single = head.compute_loss(HIDDEN[:1], LENGTHS[:1], LABELS[:1], reduction="none")
    assert torch.equal(per_row, single.expand(3))


def test_padding_labels_are_ignored() -> None:
    head = _head()
    ignore = LABELS.clone()
    ignore[1, 3:] = -100  # padding of sequence 1 (length 3): an ignore index is fine there
    assert torch.equal(
        head.compute_loss(HIDDEN, LENGTHS, ignore), head.compute_loss(HIDDEN, LENGTHS, LABELS)
    )
