"""Bitwise regression check for refactors that must not change arithmetic.

Saves (``save``) or compares (``compare``) with ``torch.equal`` every output of the public
operations on fixed random inputs: log Z (both semirings, Triton and PyTorch paths), the Triton
forward state (alpha rows, window, shift), all gradients through ``semi_crf_streaming_forward``,
``SemiCRFStreaming`` and ``SemiCRFStreamingTriton``, the Viterbi paths (Triton and PyTorch) and
the marginals.

Usage (from the repository root)::

    PYTHONPATH=packages/semicrf-kernels/src python benchmarks/experiments/bitwise_regression.py \
        save before.pt --device cuda
    PYTHONPATH=packages/semicrf-kernels/src python benchmarks/experiments/bitwise_regression.py \
        compare before.pt --device cuda

On the CPU set ``TRITON_INTERPRET=1`` (and use ``--device cpu``) to include the Triton kernels.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

import semicrf_kernels as sk
from semicrf_kernels import HAS_TRITON

try:  # the module moved in the one-folder-per-op layout; the script runs on both sides
    from semicrf_kernels._shared.triton_support import triton_interpret_enabled
except ImportError:  # pragma: no cover - the layout before
    from semicrf_kernels._triton_support import triton_interpret_enabled

CASES = [
    # (name, B, T, C, K, per_duration, proj, dtype)
    ("c3k1", 3, 7, 3, 1, False, False, torch.float32),
    ("c5k2", 3, 9, 5, 2, False, True, torch.float32),
    ("c5k4_kcc", 2, 11, 5, 4, True, False, torch.float32),
    ("c24k4", 2, 13, 24, 4, False, True, torch.float32),
    ("c3kbig", 3, 6, 3, 9, False, False, torch.float32),
    ("c5k4_f64", 3, 10, 5, 4, False, True, torch.float64),
    ("c3k2_kcc_f64_proj", 2, 8, 3, 2, True, True, torch.float64),
    ("c24k2_kcc", 2, 7, 24, 2, True, True, torch.float32),
]


def make_inputs(B, T, C, K, per_duration, proj, dtype, device, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    cum = torch.cat([torch.zeros(B, 1, C, dtype=torch.float64), scores.cumsum(1)], 1)
    shape = (K, C, C) if per_duration else (C, C)
    trans = torch.randn(*shape, generator=g, dtype=torch.float64) * 0.5
    bias = torch.randn(K, C, generator=g, dtype=torch.float64) * 0.5
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    ps = pe = None
    if proj:
        ps = torch.randn(B, T, C, generator=g, dtype=torch.float64) * 0.3
        pe = torch.randn(B, T, C, generator=g, dtype=torch.float64) * 0.3

    def put(x):
        return None if x is None else x.to(dtype).to(device)

    return put(cum), put(trans), put(bias), lengths.to(device), K, put(ps), put(pe)


def _grads(fn, cum, trans, bias, ps, pe):
    leaves = [
        x.detach().clone().requires_grad_(True) if x is not None else None
        for x in (cum, trans, bias, ps, pe)
    ]
    out = fn(*leaves)
    g = torch.Generator().manual_seed(7)
    w = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out)
    (out * w).sum().backward()
    return [out.detach()] + [x.grad for x in leaves if x is not None]


def collect(device: str) -> dict[str, torch.Tensor]:
    results: dict[str, torch.Tensor] = {}
    triton_ok = HAS_TRITON and (device == "cuda" or triton_interpret_enabled())
    for i, (name, B, T, C, K, per_d, proj, dtype) in enumerate(CASES):
        cum, trans, bias, lengths, K, ps, pe = make_inputs(
            B, T, C, K, per_d, proj, dtype, device, 1000 + i
        )
        kw = {"proj_start": ps, "proj_end": pe}
        paths = [("pt", False)] + ([("tr", True)] if triton_ok else [])
        for tag, use_triton in paths:
            for semiring in ("log", "max"):
                with torch.no_grad():
                    results[f"{name}/{tag}/{semiring}/logz"] = sk.semi_crf_streaming_forward(
                        cum, trans, bias, lengths, K, semiring, use_triton, **kw
                    )

            def fwd(c, t, b, p, q, use_triton=use_triton, lengths=lengths, K=K):
                return sk.semi_crf_streaming_forward(
                    c, t, b, lengths, K, "log", use_triton, proj_start=p, proj_end=q
                )

            for j, x in enumerate(_grads(fwd, cum, trans, bias, ps, pe)):
                results[f"{name}/{tag}/grad{j}"] = x
            vp = sk.semi_crf_streaming_viterbi(cum, trans, bias, lengths, K, use_triton, **kw)
            for field, x in zip(vp._fields, vp):
                results[f"{name}/{tag}/viterbi/{field}"] = x

        def autograd_pt(c, t, b, p, q, lengths=lengths, K=K):
            return sk.SemiCRFStreaming.apply(c, t, b, lengths, K, p, q)

        for j, x in enumerate(_grads(autograd_pt, cum, trans, bias, ps, pe)):
            results[f"{name}/fn_pt/grad{j}"] = x
        marg = sk.streaming_marginals_pytorch(cum, trans, bias, lengths, K, ps, pe)
        for field, x in zip(marg._fields, marg):
            results[f"{name}/marginals/{field}"] = x
        if triton_ok:

            def autograd_tr(c, t, b, p, q, lengths=lengths, K=K):
                return sk.SemiCRFStreamingTriton.apply(c, t, b, lengths, K, p, q, 4)

            for j, x in enumerate(_grads(autograd_tr, cum, trans, bias, ps, pe)):
                results[f"{name}/fn_tr/grad{j}"] = x
            for semiring in ("log", "max"):
                state = sk.launch_streaming_triton_kernel(
                    cum, trans, bias, lengths, K, semiring, ps, pe
                )
                for field, x in zip(state._fields, state):
                    if x is not None:
                        # rows past each length are unspecified: compare only valid ones
                        if x.dim() >= 2 and x.shape[1] == cum.shape[1]:
                            t_idx = torch.arange(x.shape[1], device=x.device)
                            keep = t_idx[None, :] <= lengths[:, None]
                            keep = keep.view(*keep.shape, *([1] * (x.dim() - 2)))
                            x = torch.where(
                                keep, x, torch.zeros((), dtype=x.dtype, device=x.device)
                            )
                        results[f"{name}/state/{semiring}/{field}"] = x
            state = sk.launch_streaming_triton_kernel(cum, trans, bias, lengths, K, "log", ps, pe)
            grads = sk.launch_streaming_triton_backward(
                cum, trans, bias, lengths, K, state, torch.ones_like(state.partition), ps, pe
            )
            for j, x in enumerate(grads):
                if x is not None:
                    results[f"{name}/launch_backward/{j}"] = x
    return {k: v.detach().cpu() for k, v in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("save", "compare"))
    parser.add_argument("file")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = collect(args.device)
    if args.mode == "save":
        torch.save(results, args.file)
        print(f"saved {len(results)} tensors to {args.file}")
        return 0
    saved = torch.load(args.file)
    bad = []
    for key in sorted(set(saved) | set(results)):
        if key not in saved or key not in results:
            bad.append(f"{key}: missing in {'saved' if key not in saved else 'current'}")
        elif not (
            saved[key].dtype == results[key].dtype
            and torch.equal(
                torch.nan_to_num(saved[key], nan=0.0)
                if saved[key].is_floating_point()
                else saved[key],
                torch.nan_to_num(results[key], nan=0.0)
                if results[key].is_floating_point()
                else results[key],
            )
        ):
            diff = (saved[key].double() - results[key].double()).abs().max().item()
            bad.append(f"{key}: differs (max abs diff {diff:.3g})")
    print(
        f"compared {len(results)} tensors: {len(bad)} mismatches "
        f"(TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')})"
    )
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
