"""The README's install section gives commands that work today (checked in the `build` nox
session) and says what a new user must know: not on the public index, which names to use."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
LAYERS = ("semicrf-semirings", "semicrf-core", "semicrf-kernels", "semicrf-nn", "flash-semicrf")

pytestmark = pytest.mark.skipif(not README.exists(), reason="not run from the repository")


def _install_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Install") : text.index("| package | import | holds |")]


def test_readme_says_not_on_the_public_index_and_never_installs_the_other_project() -> None:
    section = _install_section()
    assert "not on the public index" in section
    # A bare `pip install flash-semicrf` gets the earlier library of that name.
    assert not re.search(r"pip install flash-semicrf\s*(#|$)", section, re.M)
    assert "uv build --all-packages" in section and "--find-links dist" in section
    assert "download.pytorch.org/whl/cpu" in section and "--torch-backend cpu" in section


def test_vcs_url_per_layer_points_at_its_folder() -> None:
    section = _install_section()
    found = dict(re.findall(r'"([\w-]+) @ \$REPO#subdirectory=(packages/[\w-]+)"', section))
    assert set(found) == set(LAYERS)
    for name, folder in found.items():
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
        assert project["project"]["name"] == name


def test_meta_version_is_a_date_above_the_earlier_library() -> None:
    meta = tomllib.loads(
        (ROOT / "packages" / "flash-semicrf" / "pyproject.toml").read_text(encoding="utf-8")
    )
    version = meta["project"]["version"]
    year, month, _ = (int(x) for x in version.split("."))
    assert year >= 2026 and 1 <= month <= 12
    assert version in _install_section()
    import flash_semicrf

    assert flash_semicrf.__version__ == version
