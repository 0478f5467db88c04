"""The custom operator of ``topk/op.py``: schema, fake implementation (opcheck) and
``torch.compile(fullgraph=True)`` of :func:`semi_crf_streaming_topk` (the CPU path; the Triton
path of the same operator is ``test_triton_topk.py``)."""

from __future__ import annotations

import pytest
import torch

from semicrf_kernels import semi_crf_streaming_topk
from semicrf_kernels._shared.inputs import prepare_inputs
from semicrf_kernels._shared.op_support import uses_triton

OPS = torch.ops.semicrf_kernels
pytestmark = pytest.mark.skipif(
    uses_triton(torch.zeros(1), True),
    reason="TRITON_INTERPRET is set: the CPU runs the Triton path (test_triton_topk.py)",
)


def test_schema() -> None:
    schema = str(OPS.streaming_topk.default._schema)
    assert "SymInt k," in schema and "Tensor? proj_start" in schema
    assert schema.endswith("-> (Tensor, Tensor, Tensor)")


@pytest.mark.parametrize("per_duration", [False, True])
def test_opcheck(make_inputs, per_duration) -> None:
    inp = make_inputs(2, 6, 3, 3, per_duration=per_duration, proj=True, forbid=0.2)
    prepared = prepare_inputs(*inp.args, inp.proj_start, inp.proj_end)
    args = (*prepared[:5], 4, prepared.proj_start, prepared.proj_end, True, 4)
    torch.library.opcheck(
        OPS.streaming_topk.default, args, test_utils=("test_schema", "test_faketensor")
    )


def test_compiled_topk_equals_eager(make_inputs) -> None:
    torch._dynamo.reset()

    def best(cum, trans, bias, lengths):
        seg = semi_crf_streaming_topk(cum, trans, bias, lengths, 4, 3, validate=False)
        return seg.labels, seg.starts, seg.scores

    inp = make_inputs(3, 8, 3, 4, proj=False, forbid=0.2)
    compiled = torch.compile(best, backend="aot_eager", fullgraph=True)
    got = compiled(*inp.args[:4])
    expected = best(*inp.args[:4])
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_bad_num_warps_is_an_error(make_inputs) -> None:
    inp = make_inputs(1, 5, 2, 2)
    with pytest.raises(ValueError, match="num_warps"):
        semi_crf_streaming_topk(*inp.args[:4], 2, 3, num_warps=3)
