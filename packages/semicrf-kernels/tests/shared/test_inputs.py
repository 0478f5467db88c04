"""Conversion of user inputs to kernel inputs."""

from __future__ import annotations

import math

import torch

from semicrf_kernels._shared.inputs import compute_dtype, mask_forbidden, prepare_inputs
from semicrf_kernels.constants import NEG_INF


def test_compute_dtype() -> None:
    for given, expected in [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
    ]:
        assert compute_dtype(torch.zeros(1, dtype=given)) == expected


def test_mask_forbidden_and_its_gradient() -> None:
    x = torch.tensor(
        [0.5, NEG_INF, NEG_INF / 2, NEG_INF / 2 + 1.0, -math.inf, -3.0],
        dtype=torch.float64,
        requires_grad=True,
    )
    y = mask_forbidden(x)
    assert y.tolist() == [0.5, -math.inf, -math.inf, NEG_INF / 2 + 1.0, -math.inf, -3.0]
    torch.where(torch.isfinite(y), y, 0).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]


def test_prepare_inputs(make_inputs) -> None:
    inp = make_inputs(2, 5, 3, 2, per_duration=True, proj=True, forbid=0.3).to(torch.bfloat16)
    out = prepare_inputs(
        inp.cum_scores.transpose(1, 2).contiguous().transpose(1, 2), inp.transition, inp.duration_bias,
        inp.lengths.to(torch.int16), 2, inp.proj_start, inp.proj_end,
    )  # fmt: skip
    for x in (out.cum_scores, out.transition, out.duration_bias, out.proj_start, out.proj_end):
        assert x.dtype == torch.float32 and x.is_contiguous()
    assert out.lengths.dtype == torch.int64 and out.K == 2
    assert torch.equal(torch.isinf(out.transition), inp.transition.float() <= NEG_INF / 2)
    assert prepare_inputs(*inp.to(torch.float64).args).proj_start is None


def test_prepared_shared_parameters_are_not_masked_again(make_inputs) -> None:
    inp = make_inputs(2, 6, 3, 4)
    trans = inp.transition.clone()
    trans[0, 1] = NEG_INF
    first = prepare_inputs(inp.cum_scores, trans, inp.duration_bias, inp.lengths, 4)
    again = prepare_inputs(*first[:5])
    # the masked tensors pass through untouched (no new masking kernels, same objects)
    assert again.transition is first.transition
    assert again.duration_bias is first.duration_bias
    assert math.isinf(again.transition[0, 1].item())
    # a prepared tensor changed in place is masked again
    first.transition[1, 2] = NEG_INF
    third = prepare_inputs(*first[:5])
    assert third.transition is not first.transition
    assert math.isinf(third.transition[1, 2].item())
    # a user's tensor is never taken as prepared, even when it happens to be masked already
    user = torch.tensor([[0.0, -math.inf], [1.0, 2.0]], dtype=torch.float64)
    assert prepare_inputs(inp.cum_scores, user, inp.duration_bias, inp.lengths, 4)[1] is not user
    # under inference mode (no version counter) it still masks
    with torch.inference_mode():
        t = trans.clone()
        out = prepare_inputs(inp.cum_scores, t, inp.duration_bias, inp.lengths, 4)
        assert math.isinf(out.transition[0, 1].item())
