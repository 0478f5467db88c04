"""Float32 precision of the Triton streaming kernels at long sequences (GPU).

    python benchmarks/check_precision.py                  # T = 1e3, 1e4, 1e5
    python benchmarks/check_precision.py --long           # also T = 4e5
    python benchmarks/check_precision.py --out DIR

For zero-centred random emissions it runs the float32 kernels and the float64 kernels on the
same (float32-rounded) inputs and prints relative errors: log Z (``|dz| / |z|``, target 1e-5),
each gradient (max-norm relative, target 1e-4), and for Viterbi the score error and the fraction
of positions whose label differs. The float64 kernels are themselves checked against the
PyTorch float64 path at the smallest T. A markdown table goes to
``<out>/precision_<card>_<date>_<commit>.md``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

from flash_semicrf.bench import card_name, git_commit

NAMES = ("cum_scores", "transition", "duration_bias", "proj_start", "proj_end")


def inputs(B: int, T: int, K: int, C: int, seed: int = 0, proj: bool = True):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    emissions -= emissions.mean(dim=1, keepdim=True)
    cum = torch.zeros(B, T + 1, C, dtype=torch.float64)
    cum[:, 1:] = emissions.cumsum(dim=1)
    trans = 0.5 * torch.randn(C, C, generator=g, dtype=torch.float64)
    db = 0.5 * torch.randn(K, C, generator=g, dtype=torch.float64)
    ps = 0.3 * torch.randn(B, T, C, generator=g, dtype=torch.float64) if proj else None
    pe = 0.3 * torch.randn(B, T, C, generator=g, dtype=torch.float64) if proj else None
    lengths = torch.tensor([T - i * (T // 7) for i in range(B)], dtype=torch.int64)
    floats = [x if x is None else x.float().cuda() for x in (cum, trans, db, ps, pe)]
    return floats, lengths.cuda(), K


def run(floats, lengths, K, dtype, use_triton=True):
    from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi

    leaves = [None if x is None else x.to(dtype).clone().requires_grad_(True) for x in floats]
    z = semi_crf_streaming_forward(
        leaves[0], leaves[1], leaves[2], lengths, K, "log", use_triton,
        proj_start=leaves[3], proj_end=leaves[4], validate=False,
    )  # fmt: skip
    z.sum().backward()
    grads = [None if x is None else x.grad.double() for x in leaves]
    with torch.no_grad():
        args = [None if x is None else x.to(dtype) for x in floats]
        path = semi_crf_streaming_viterbi(
            args[0], args[1], args[2], lengths, K, use_triton,
            proj_start=args[3], proj_end=args[4], validate=False,
        )  # fmt: skip
    return z.detach().double(), grads, path


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def label_mismatch(p32, p64, lengths) -> float:
    """Fraction of valid positions whose Viterbi label differs."""

    def per_position(path):
        B, N = path.labels.shape
        T = N
        out = torch.full((B, T), -1, dtype=torch.int64, device=path.labels.device)
        for b in range(B):
            n = int(path.num_segments[b])
            dur = path.durations[b, :n]
            out[b, : int(dur.sum())] = torch.repeat_interleave(path.labels[b, :n], dur)
        return out

    a, b = per_position(p32), per_position(p64)
    valid = torch.arange(a.shape[1], device=a.device)[None, :] < lengths[:, None]
    return float(((a != b) & valid).sum() / valid.sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", action="store_true", help="also T = 400,000")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--K", type=int, default=32)
    parser.add_argument("--C", type=int, default=24)
    parser.add_argument("--B", type=int, default=2)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("check_precision: needs a CUDA GPU", file=sys.stderr)
        return 1
    Ts = [1000, 10000, 100000] + ([400000] if args.long else [])
    lines = [
        f"# Float32 precision of the Triton kernels\n\n{torch.cuda.get_device_name()}, commit "
        f"{git_commit()}, {datetime.date.today().isoformat()}; B={args.B}, K={args.K}, C={args.C}, "
        "projections on, zero-centred emissions; float32 kernels vs float64 kernels on the same "
        "inputs. Targets: log Z 1e-5, gradients 1e-4 (max-norm relative).\n",
        "| T | log Z | grad cum | grad trans | grad db | grad proj_start | grad proj_end "
        "| Viterbi score | Viterbi labels differing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print(lines[0])
    for T in Ts:
        floats, lengths, K = inputs(args.B, T, args.K, args.C)
        z32, g32, p32 = run(floats, lengths, K, torch.float32)
        z64, g64, p64 = run(floats, lengths, K, torch.float64)
        if T == Ts[0]:
            zt, gt, _ = run(floats, lengths, K, torch.float64, use_triton=False)
            print(
                f"float64 kernel vs float64 PyTorch at T={T}: log Z {rel(z64, zt):.2e}, "
                f"grads {max(rel(a, b) for a, b in zip(g64, gt) if b is not None):.2e}"
            )
        cells = [f"{rel(z32, z64):.2e}"]
        cells += [f"{rel(a, b):.2e}" if b is not None else "-" for a, b in zip(g32, g64)]
        cells.append(f"{rel(p32.scores.double(), p64.scores.double()):.2e}")
        cells.append(f"{label_mismatch(p32, p64, lengths):.2e}")
        lines.append(f"| {T} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
        del floats, g32, g64, p32, p64
        torch.cuda.empty_cache()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"precision_{card_name()}_{datetime.date.today().isoformat()}_{git_commit()}.md"
    (out / name).write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
