"""``forward_and_grads``: log Z and the gradients of every float input on the test device, the
comparison the split-scan and scan-option tests make against the float64 PyTorch path."""

from __future__ import annotations

import torch
from _triton_env import DEVICE

from semicrf_kernels import semi_crf_streaming_forward


def forward_and_grads(inp, dtype: torch.dtype, use_triton: bool):
    """``(log_z (batch,), [grad of each given float input])``, float64 on the CPU.

    Args:
        inp: ``StreamingInputs`` (conftest ``make_inputs``).
        dtype: the dtype the inputs are cast to.
        use_triton: run the Triton kernels (else the PyTorch path).
    """
    leaves = [
        None if x is None else x.to(DEVICE, dtype).detach().requires_grad_()
        for x in (inp.cum_scores, inp.transition, inp.duration_bias, inp.proj_start, inp.proj_end)
    ]
    cum, trans, db, ps, pe = leaves
    z = semi_crf_streaming_forward(
        cum, trans, db, inp.lengths.to(DEVICE), inp.K, proj_start=ps, proj_end=pe,
        use_triton=use_triton,
    )  # fmt: skip
    grads = torch.autograd.grad(z.sum(), [x for x in leaves if x is not None])
    return z.detach().cpu().double(), [g.cpu().double() for g in grads]
