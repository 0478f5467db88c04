"""The release workflow publishes the four layers by tag, through the sessions CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def _nox_sessions() -> set[str]:
    text = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    names = set(re.findall(r"nox\.session\(name=\"([\w-]+)\"", text))
    names |= set(re.findall(r"@nox\.session\s*\ndef (\w+)", text))
    names |= {f"tests-{short}" for short in re.findall(r'^\s+"([\w-]+)": "[\w-]+",$', text, re.M)}
    return names


def test_one_tag_pattern_per_published_layer() -> None:
    text = RELEASE.read_text(encoding="utf-8")
    layers = sorted(p.name for p in (ROOT / "packages").iterdir() if p.name.startswith("semicrf-"))
    assert len(layers) == 4
    patterns = re.findall(r'^\s+- "([\w-]+)-v\*"$', text, re.M)
    # The meta-package's name is taken on PyPI: it is never published from here.
    assert sorted(patterns) == layers
    assert "id-token: write" in text and "pypa/gh-action-pypi-publish" in text


def test_release_steps_are_ci_sessions() -> None:
    text = RELEASE.read_text(encoding="utf-8")
    runs = re.findall(r"uv run nox -s ([\w -]+)", text)
    assert runs, "the release workflow runs no nox session"
    named = {name for run in runs for name in run.split()}
    known = _nox_sessions()
    assert named <= known, f"unknown sessions: {named - known}"
    assert "build" in named
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert named <= set(re.findall(r"^\s+- ([\w-]+)$", ci, re.M))
