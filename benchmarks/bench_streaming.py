"""Benchmark the streaming semi-CRF kernels on a GPU (Triton vs the PyTorch path).

    python benchmarks/bench_streaming.py                 # the target configurations
    python benchmarks/bench_streaming.py --quick         # a small smoke run
    python benchmarks/bench_streaming.py --sweep         # also try num_warps / tile variants
    python benchmarks/bench_streaming.py --out DIR       # where the markdown table goes
    python benchmarks/bench_streaming.py --distribution  # sample(100) and topk(10) vs a forward

For every configuration ``B x T x K x C`` it times, with ``triton.testing.do_bench`` (median):
the forward (log Z), the Viterbi score (max forward), the Viterbi decode with device
traceback, and forward + backward; and it measures the peak memory of forward + backward
(``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, inputs included). The
PyTorch path is timed where it finishes in reasonable time. The table is printed and written to
``<out>/streaming_<card>_<date>_<commit>.md`` (commit from ``git rev-parse --short HEAD`` or
the ``GIT_COMMIT`` environment variable).

Run from the repository root with the packages importable (``uv run`` or ``PYTHONPATH``, as
``benchmarks/gpu_check.sh`` does). Inputs, timing, card name and commit come from
``flash_semicrf.bench``, shared with ``flash-semicrf bench`` (which draws its transition and
duration bias at scale 0.1, this script at 0.5).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from flash_semicrf.bench import card_name, git_commit, make_inputs, time_cuda

#: Inputs of every configuration: float32, transition and duration bias of scale 0.5.
DTYPE = torch.float32
SCALE = 0.5


@dataclass(frozen=True)
class Config:
    B: int
    T: int
    K: int
    C: int
    targets: dict  # what -> milliseconds
    torch_path: str = ""  # empty: time the PyTorch path; else why not
    constrained: bool = False  # proj_start / proj_end, and -inf transitions and durations

    @property
    def name(self) -> str:
        return f"{self.B}x{self.T}x{self.K}x{self.C}" + ("+proj,-inf" if self.constrained else "")


#: The targets of issue #12 (genome-scale speed), in milliseconds.
CONFIGS = [
    Config(32, 1000, 32, 24, {"fwd": 1.0, "fwd+bwd": 1.8, "viterbi+tb": 1.2}),
    Config(8, 10000, 100, 24, {"fwd": 12.0, "fwd+bwd": 20.0, "viterbi+tb": 15.0}),
    Config(8, 10000, 100, 24, {}, constrained=True),
    Config(64, 512, 16, 8, {"fwd+bwd": 1.0, "viterbi+tb": 0.8}),
    Config(4, 2048, 64, 128, {"fwd": 12.0, "fwd+bwd": 15.0, "viterbi+tb": 10.0}),
    Config(
        1,
        100000,
        200,
        24,
        {"fwd": 100.0, "fwd+bwd": 200.0, "viterbi+tb": 150.0},
        "a Python step per position: about a minute",
    ),
    Config(
        1,
        400000,
        3000,
        24,
        {"fwd": 1000.0, "fwd+bwd": 2000.0, "viterbi+tb": 1500.0},
        "a Python step per position: many minutes",
    ),
    Config(1, 1000000, 1000, 16, {"fwd+bwd": 4000.0}, "a Python step per position: many minutes"),
]
QUICK = [
    Config(4, 200, 16, 8, {}),
    Config(2, 500, 40, 24, {}),
    Config(2, 300, 8, 130, {}),
]


def peak_memory(fn) -> float:
    """Peak allocated MiB while ``fn`` runs (inputs already allocated count too)."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def bench_config(cfg: Config, num_warps: int, torch_too: bool) -> dict:
    from semicrf_kernels import semi_crf_streaming_forward, semi_crf_streaming_viterbi

    K = cfg.K
    cum, trans, db, lengths = make_inputs(cfg.B, cfg.T, K, cfg.C, "cuda", dtype=DTYPE, scale=SCALE)
    proj = {}
    if cfg.constrained:
        gen = torch.Generator(device="cpu").manual_seed(1)
        shape = (cfg.B, cfg.T, cfg.C)
        proj = {
            "proj_start": (0.5 * torch.randn(shape, generator=gen)).cuda(),
            "proj_end": (0.5 * torch.randn(shape, generator=gen)).cuda(),
        }
        # forbid a fifth of the label changes and the shortest durations of half the labels
        forbid = torch.rand(cfg.C, cfg.C, generator=gen) < 0.2
        trans = torch.where(forbid.cuda() & ~torch.eye(cfg.C, dtype=torch.bool, device="cuda"),
                            torch.full_like(trans, -torch.inf), trans)  # fmt: skip
        db = db.clone()
        db[:2, ::2] = -torch.inf
    leaves = [x.clone().requires_grad_(True) for x in (cum, trans, db)]

    def fwd(use_triton=True):
        with torch.no_grad():
            return semi_crf_streaming_forward(
                cum, trans, db, lengths, K, "log", use_triton, num_warps, validate=False, **proj
            )

    def vit_score(use_triton=True):
        with torch.no_grad():
            return semi_crf_streaming_forward(
                cum, trans, db, lengths, K, "max", use_triton, num_warps, validate=False, **proj
            )

    def vit_tb(use_triton=True):
        return semi_crf_streaming_viterbi(
            cum, trans, db, lengths, K, use_triton, num_warps, validate=False, **proj
        )

    def fwd_bwd(use_triton=True):
        for x in leaves:
            x.grad = None
        z = semi_crf_streaming_forward(
            leaves[0],
            leaves[1],
            leaves[2],
            lengths,
            K,
            "log",
            use_triton,
            num_warps,
            validate=False,
            **proj,
        )
        z.sum().backward()

    long_run = cfg.T * cfg.K * cfg.C * cfg.B > 1e9
    row = {"config": cfg.name}
    t0 = time.time()
    fwd()  # compile
    fwd_bwd()
    vit_tb()
    torch.cuda.synchronize()
    row["first_call_s"] = time.time() - t0
    row["fwd"] = time_cuda(fwd, long_run)
    row["viterbi"] = time_cuda(vit_score, long_run)
    row["viterbi+tb"] = time_cuda(vit_tb, long_run)
    row["fwd+bwd"] = time_cuda(fwd_bwd, long_run)
    row["peak_mib"] = peak_memory(fwd_bwd)
    inputs_mib = sum(x.numel() * x.element_size() for x in (cum, trans, db)) * 2 / 2**20
    row["inputs_mib"] = inputs_mib
    if torch_too and not cfg.torch_path:
        row["torch_fwd"] = time_cuda(lambda: fwd(False), long=True)
        row["torch_fwd+bwd"] = time_cuda(lambda: fwd_bwd(False), long=True)
        row["torch_viterbi+tb"] = time_cuda(lambda: vit_tb(False), long=True)
    else:
        row["torch_note"] = cfg.torch_path or "skipped (--no-torch)"
    return row


#: Configurations of the segmentation-distribution rows and their targets, in forward passes.
DISTRIBUTION_CONFIGS = [Config(1, 100000, 200, 24, {}), Config(32, 1000, 32, 24, {})]
DISTRIBUTION_TARGETS = {"sample(100)": 3.0, "topk(10)": 15.0}


def bench_distribution(cfg: Config) -> str:
    """One table row: forward, ``sample(100)`` and ``topk(10)`` times (ms), their ratios to
    the forward against the targets, and the peak MiB of each (inputs included)."""
    from semicrf_kernels import (
        semi_crf_streaming_forward,
        semi_crf_streaming_sample,
        semi_crf_streaming_topk,
    )

    K = cfg.K
    cum, trans, db, lengths = make_inputs(cfg.B, cfg.T, K, cfg.C, "cuda", dtype=DTYPE, scale=SCALE)
    generator = torch.Generator(device="cuda").manual_seed(0)

    def fwd():
        with torch.no_grad():
            return semi_crf_streaming_forward(cum, trans, db, lengths, K, validate=False)

    def sample():
        return semi_crf_streaming_sample(
            cum, trans, db, lengths, K, 100, generator=generator, validate=False
        )

    def topk():
        return semi_crf_streaming_topk(cum, trans, db, lengths, K, 10, validate=False)

    cells = [f"{cfg.B}x{cfg.T}x{cfg.K}x{cfg.C}"]
    # One method for the three columns: do_bench's median, one timed call only at T > 10,000
    # (a single call from an idle GPU also times the host's launches, which do_bench overlaps
    # with the previous call's kernels, as a training loop does).
    long = cfg.T > 10000
    base = time_cuda(fwd, long=long)
    cells.append(fmt(base))
    for name, fn in (("sample(100)", sample), ("topk(10)", topk)):
        ms = time_cuda(fn, long=long)
        ratio = ms / base
        verdict = "ok" if ratio <= DISTRIBUTION_TARGETS[name] else "MISSED"
        cells.append(f"{fmt(ms)} ({ratio:.1f}x, target {DISTRIBUTION_TARGETS[name]:g}x: {verdict})")
    for fn in (fwd, sample, topk):
        cells.append(fmt(peak_memory(fn)))
    return "| " + " | ".join(cells) + " |"


def distribution_table(configs: list[Config]) -> list[str]:
    lines = [
        "",
        "## Segmentation distribution: sampling and top-k against one forward pass",
        "",
        "| B x T x K x C | fwd ms | sample(100) ms | topk(10) ms | peak MiB fwd | peak MiB "
        "sample | peak MiB topk |",
        "|---|---|---|---|---|---|---|",
    ]
    for cfg in configs:
        try:
            line = bench_distribution(cfg)
        except torch.cuda.OutOfMemoryError as exc:
            line = f"| {cfg.B}x{cfg.T}x{cfg.K}x{cfg.C} | out of memory: {exc} |"
        lines.append(line)
        print(line, flush=True)
    return lines


def check_targets(cfg: Config, row: dict) -> str:
    notes = []
    for what, limit in cfg.targets.items():
        got = row.get(what)
        if got is not None:
            notes.append(f"{what} {'ok' if got <= limit else 'MISSED'} (<= {limit:g})")
    if cfg.T == 400000:
        notes.append(f"memory {'ok' if row['peak_mib'] <= 1024 else 'MISSED'} (<= 1 GiB)")
    return "; ".join(notes)


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:.3f}" if x < 100 else f"{x:.1f}"


def sweep(cfg: Config) -> list[str]:
    """Time forward and forward+backward for a few tile / warp choices."""
    from semicrf_kernels._shared import scan_launch as triton_forward

    lines = [
        f"### sweep {cfg.B}x{cfg.T}x{cfg.K}x{cfg.C}",
        "",
        "| override | num_warps | fwd ms | fwd+bwd ms |",
        "|---|---|---|---|",
    ]
    variants = [{}]
    for p in (4, 8, 16):
        for s in (4, 8, 16, 32):
            variants.append({"block_p": p, "block_s": s})
    for override in variants:
        for warps in (2, 4, 8):
            triton_forward.CONFIG_OVERRIDE.clear()
            triton_forward.CONFIG_OVERRIDE.update(override)
            try:
                row = bench_config(cfg, warps, torch_too=False)
            except Exception as exc:  # a variant that does not compile is reported, not fatal
                lines.append(f"| {override} | {warps} | failed: {type(exc).__name__} | |")
                continue
            lines.append(f"| {override} | {warps} | {fmt(row['fwd'])} | {fmt(row['fwd+bwd'])} |")
            print(lines[-1], flush=True)
    triton_forward.CONFIG_OVERRIDE.clear()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke configurations only")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the markdown table")
    parser.add_argument("--num-warps", type=int, default=4, help="num_warps passed to the API")
    parser.add_argument("--no-torch", action="store_true", help="do not time the PyTorch path")
    parser.add_argument("--sweep", action="store_true", help="also sweep tiles and warps")
    parser.add_argument(
        "--distribution",
        action="store_true",
        help="also time sample(100) and topk(10) against one forward (1x100000x200x24, 32x1000x32x24)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="run only configs whose BxTxKxC contains one of these (comma-separated)",
    )
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_streaming: needs a CUDA GPU", file=sys.stderr)
        return 1
    import triton

    configs = QUICK if args.quick else CONFIGS
    wanted = args.only.split(",")
    configs = [c for c in configs if any(w in c.name for w in wanted)]
    card = card_name()
    date = datetime.date.today().isoformat()
    sha = git_commit()
    dtype = str(DTYPE).removeprefix("torch.")
    header = (
        f"# Streaming semi-CRF benchmark\n\n{torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"triton {triton.__version__}, commit {sha}, {date}; {dtype}, zero-centred random "
        f"emissions, all sequences full length, num_warps={args.num_warps}. Times are medians "
        f"(ms) of `triton.testing.do_bench`; memory is the peak allocated during forward + "
        f"backward, inputs included.\n"
    )
    lines = [
        header,
        "| B x T x K x C | fwd | viterbi score | viterbi + traceback | fwd+bwd | peak MiB (inputs) "
        "| PyTorch fwd | PyTorch fwd+bwd | PyTorch viterbi+tb | first calls s | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print(header)
    for cfg in configs:
        try:
            row = bench_config(cfg, args.num_warps, torch_too=not args.no_torch)
        except torch.cuda.OutOfMemoryError as exc:
            lines.append(f"| {cfg.name} | out of memory: {exc} |")
            continue
        note = row.get("torch_note", "")
        line = (
            f"| {row['config']} | {fmt(row['fwd'])} | {fmt(row['viterbi'])} | {fmt(row['viterbi+tb'])} "
            f"| {fmt(row['fwd+bwd'])} | {fmt(row['peak_mib'])} ({fmt(row['inputs_mib'])}) "
            f"| {fmt(row.get('torch_fwd', note))} | {fmt(row.get('torch_fwd+bwd', '-'))} "
            f"| {fmt(row.get('torch_viterbi+tb', '-'))} | {fmt(row['first_call_s'])} "
            f"| {check_targets(cfg, row)} |"
        )
        lines.append(line)
        print(line, flush=True)
    if args.sweep:
        for cfg in configs:
            lines += ["", *sweep(cfg)]
    if args.distribution:
        chosen = [
            c for c in DISTRIBUTION_CONFIGS if any(w in f"{c.B}x{c.T}x{c.K}x{c.C}" for w in wanted)
        ]
        lines += distribution_table(chosen)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"streaming_{card}_{date}_{sha}{'_quick' if args.quick else ''}.md"
    (out / name).write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
