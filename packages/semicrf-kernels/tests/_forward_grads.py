"""``forward_and_grads``: log Z and the gradients of every float input on the test device, the
comparison the split-scan and scan-option tests make against the float64 PyTorch path; and
``assert_matches_float64``, that comparison with the Viterbi path as well."""

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


def assert_matches_float64(inp) -> torch.Tensor:
    """Log Z and every gradient (float64 and float32) and the Viterbi path of the Triton kernels
    against the float64 PyTorch path, without NaN; returns the reference log Z ``(batch,)``.

    Args:
        inp: ``StreamingInputs`` (conftest ``make_inputs``), on the CPU.
    """
    from semicrf_kernels.viterbi.pytorch import streaming_viterbi_pytorch
    from semicrf_kernels.viterbi.triton import semi_crf_streaming_viterbi_triton

    z_ref, g_ref = forward_and_grads(inp, torch.float64, use_triton=False)
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 2e-5)):
        z, g = forward_and_grads(inp, dtype, use_triton=True)
        torch.testing.assert_close(z, z_ref, rtol=tol, atol=tol)
        for got, want in zip(g, g_ref):
            assert not torch.isnan(got).any()
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * 10)
    want = streaming_viterbi_pytorch(*inp)
    got = semi_crf_streaming_viterbi_triton(
        *[x.to(DEVICE) if isinstance(x, torch.Tensor) else x for x in inp]
    )
    torch.testing.assert_close(got.scores.cpu(), want.scores, rtol=1e-10, atol=1e-10)
    for field in ("num_segments", "starts", "durations", "labels"):
        assert torch.equal(getattr(got, field).cpu(), getattr(want, field)), field
    return z_ref
