"""The ``flash-semicrf`` command line: ``flash-semicrf demo``, ``flash-semicrf bench`` and
``flash-semicrf --version``.

Arguments are parsed before torch is imported (importing it takes seconds), so ``--help`` of
every subcommand answers at once; torch and the layers are imported only to do the work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class _UserError(Exception):
    """An invalid option: reported as one line, without a traceback."""


def _checked(convert, accept, expected: str):
    """An argparse ``type=``: ``convert`` the text, then require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_positive_float = _checked(float, lambda v: v > 0.0, "a positive number")


def version_report() -> str:
    """The text of ``--version``: the five packages' versions, torch, triton and the CUDA seen."""
    from importlib import metadata

    import torch

    import flash_semicrf

    lines = [f"{dist} {version}" for dist, version in flash_semicrf.versions().items()]
    lines.append(f"torch {torch.__version__}")
    try:
        lines.append(f"triton {metadata.version('triton')}")
    except metadata.PackageNotFoundError:
        lines.append("triton not installed (the CPU path is used)")
    if torch.version.cuda is None:
        lines.append("CUDA: none (a CPU-only torch build)")
    elif not torch.cuda.is_available():
        lines.append(f"CUDA: torch built for CUDA {torch.version.cuda}, no GPU visible")
    else:
        count = torch.cuda.device_count()
        lines.append(
            f"CUDA: torch built for CUDA {torch.version.cuda}, {count} GPU(s) visible, "
            f"cuda:0 is {torch.cuda.get_device_name(0)}"
        )
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_report` and exit (torch is imported only here)."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_report())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the command (imports neither torch nor the layers)."""
    from .demo.config import DemoConfig

    d = DemoConfig()
    parser = argparse.ArgumentParser(
        prog="flash-semicrf", description="Fast, exact semi-Markov CRFs for PyTorch."
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the versions of the five packages, torch, triton and the CUDA seen, and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="train a semi-CRF and a softmax baseline on synthetic gene structures",
        description="Train an encoder + SemiMarkovCRFHead and a per-position softmax baseline on "
        "a generated gene-structure data set (exons, introns, intergenic), then report "
        "held-out boundary precision/recall/F1 and segment accuracy, and write demo.png and "
        "metrics.json to the output folder.",
    )
    demo.add_argument(
        "--train-size",
        type=_positive_int,
        default=d.train_size,
        help="training sequences (default %(default)s)",
    )
    demo.add_argument(
        "--test-size",
        type=_positive_int,
        default=d.test_size,
        help="held-out sequences (default %(default)s)",
    )
    demo.add_argument(
        "--seq-len",
        type=_positive_int,
        default=d.seq_len,
        help="maximum sequence length T, >= 20 (default %(default)s)",
    )
    demo.add_argument(
        "--max-duration",
        "-K",
        type=_positive_int,
        default=d.max_duration,
        help="longest segment K (default %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=d.epochs,
        help="training epochs (default %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int,
        default=d.batch_size,
        help="batch size (default %(default)s)",
    )
    demo.add_argument(
        "--lr", type=_positive_float, default=d.lr, help="Adam learning rate (default %(default)s)"
    )
    demo.add_argument(
        "--noise",
        type=_fraction,
        default=d.noise,
        help="fraction of noisy bases in [0, 1) (default %(default)s)",
    )
    demo.add_argument(
        "--device", default=d.device, help="auto, cpu, cuda or cuda:N (default %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    demo.add_argument("--out", default=d.out, help="output folder (default %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    bench = sub.add_parser(
        "bench",
        help="run the benchmark suite and print its table",
        description="Time the streaming forward, forward + backward and Viterbi (with its path) "
        "of semicrf-kernels over a set of batch x T x K x C sizes, on the GPU (Triton kernels) "
        "when one is there and on the CPU (the default CPU path: compiled, numba) otherwise, and print the results as a "
        "markdown table with the machine, torch and triton versions. Speed is measured here, "
        "never asserted in tests.",
    )
    bench.add_argument("--quick", action="store_true", help="small sizes only (seconds)")
    bench.add_argument("--device", default="auto", help="auto, cpu or cuda (default %(default)s)")
    bench.add_argument("--out", default=None, help="also write the table (markdown) to this folder")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .demo.run import DemoConfig, format_report, run_demo

    if args.seq_len < 20:
        raise _UserError(f"--seq-len must be >= 20, got {args.seq_len}")
    cfg = DemoConfig(
        train_size=args.train_size,
        test_size=args.test_size,
        seq_len=args.seq_len,
        max_duration=args.max_duration,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        noise=args.noise,
        device=args.device,
        seed=args.seed,
        out=args.out,
        progress=not args.no_progress,
    )
    try:
        import torch

        torch.device(cfg.device) if cfg.device != "auto" else None
    except RuntimeError as err:
        raise _UserError(f"--device {cfg.device!r} is not a device: {err}") from None
    try:
        result = run_demo(cfg)
    except ValueError as err:
        raise _UserError(str(err)) from None
    print()
    print(format_report(result))
    print(f"\nwrote {cfg.out}/demo.png and {cfg.out}/metrics.json")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    try:
        print(run_bench(quick=args.quick, device=args.device, out=args.out))
    except ValueError as err:
        raise _UserError(str(err)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _bench(args)
    except _UserError as err:
        print(f"flash-semicrf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
