"""The command line: bad options give one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flash_semicrf.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "expected a positive integer"),
        (["demo", "--noise", "1.5"], "expected a number in [0, 1)"),
        (["demo", "--lr", "abc"], "expected a positive number"),
        (["demo", "--seq-len", "10"], "--seq-len must be >= 20"),
        (["demo", "--device", "tpu9"], "--device"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_options(argv, message, capsys, tmp_path) -> None:
    argv = [*argv, "--out", str(tmp_path)] if argv[0] == "demo" else argv
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_entry_point_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flash_semicrf", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--max-duration" in out and "--device" in out and "--seed" in out


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["bench", "--help"]])
def test_help_does_not_import_torch(argv) -> None:
    # Importing torch takes seconds: --help must answer from the parser alone (under a second).
    code = (
        "import sys\n"
        "from flash_semicrf.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'semicrf_kernels', 'semicrf_nn') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: flash-semicrf" in out
    assert "HEAVY []" in out


def test_bench_help_has_a_description() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "flash_semicrf", "bench", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Time the streaming forward" in out and "--quick" in out


def test_version_names_every_package_torch_triton_and_cuda() -> None:
    import torch

    import flash_semicrf

    out = subprocess.run(
        [sys.executable, "-m", "flash_semicrf", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    for dist, version in flash_semicrf.versions().items():
        assert f"{dist} {version}" in lines
    assert f"torch {torch.__version__}" in lines
    assert any(line.startswith("triton ") for line in lines)
    assert lines[-1].startswith("CUDA: ")
