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
