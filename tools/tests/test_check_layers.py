"""The layer check passes on the real tree and fails on an upward import, an upward dependency,
a declared layer that is never imported and an imported layer that is not declared."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "check_layers.py"

spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
check_layers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_layers)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the workspace's packages (sources and pyproject files only)."""
    for dist, _ in check_layers.LAYERS:
        src = ROOT / "packages" / dist
        dst = tmp_path / "packages" / dist
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def test_real_workspace_is_layered() -> None:
    assert check_layers.check(ROOT) == []


def test_copy_is_layered(tree: Path) -> None:
    assert check_layers.check(tree) == []


@pytest.mark.parametrize(
    ("dist", "imp", "statement"),
    [
        ("semicrf-semirings", "semicrf_semirings", "import semicrf_core\n"),
        ("semicrf-core", "semicrf_core", "from semicrf_kernels import NEG_INF\n"),
        ("semicrf-kernels", "semicrf_kernels", "from semicrf_nn.head import X\n"),
        ("semicrf-nn", "semicrf_nn", "import flash_semicrf.streaming as s\n"),
        ("semicrf-core", "semicrf_core", "importlib.import_module('semicrf_nn')\n"),
    ],
)
def test_upward_import_is_caught(tree: Path, dist: str, imp: str, statement: str) -> None:
    bad = tree / "packages" / dist / "src" / imp / "_upward.py"
    bad.write_text("import importlib\n" + statement)
    problems = check_layers.check(tree)
    assert len(problems) == 1
    assert "_upward.py" in problems[0] and "a layer above it" in problems[0]
    # The command-line entry point fails too.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tree)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "violation" in result.stdout


def test_upward_dependency_is_caught(tree: Path) -> None:
    pyproject = tree / "packages" / "semicrf-core" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"scipy>=1.15"', '"scipy>=1.15", "semicrf-nn>=0.1"'))
    problems = check_layers.check(tree)
    assert problems == [
        "packages/semicrf-core/pyproject.toml: depends on semicrf-nn, which is not beneath it"
    ]


def test_downward_import_is_allowed(tree: Path) -> None:
    ok = tree / "packages" / "semicrf-nn" / "src" / "semicrf_nn" / "_down.py"
    ok.write_text("import semicrf_semirings\nfrom semicrf_core import x\nimport semicrf_kernels\n")
    assert check_layers.check(tree) == []


def test_declared_but_never_imported_is_caught(tree: Path) -> None:
    pyproject = tree / "packages" / "semicrf-kernels" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"torch>=2.11",', '"torch>=2.11", "semicrf-core>=0.1,<0.2",'))
    problems = check_layers.check(tree)
    assert problems == [
        "packages/semicrf-kernels/pyproject.toml: depends on semicrf-core, which none of its "
        "files imports"
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tree)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1


def test_imported_but_not_declared_is_caught(tree: Path) -> None:
    extra = tree / "packages" / "semicrf-kernels" / "src" / "semicrf_kernels" / "_down.py"
    extra.write_text("import semicrf_semirings\n")
    problems = check_layers.check(tree)
    assert problems == [
        "packages/semicrf-kernels/pyproject.toml: its files import semicrf_semirings but it does "
        "not declare semicrf-semirings"
    ]
