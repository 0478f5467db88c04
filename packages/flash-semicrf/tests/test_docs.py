"""The documentation runs: every ```python block of the READMEs and of ``docs/`` executes, and the
site builds with ``mkdocs build --strict``.

A page's blocks run in order in one fresh namespace, as a reader would paste them. A block is
skipped only when the line right before its fence is ``<!-- no-test -->`` (kept for GPU-only or
multi-process snippets).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
SKIP_MARK = "<!-- no-test -->"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts (1-based line of its first code line) and its code."""

    line: int
    code: str
    skipped: bool


def _is_python(info: str) -> bool:
    # Info strings look like "python", "python title=x.py", "{.python}", "py".
    words = info.strip().strip("{}").replace(".", " ").split()
    return bool(words) and words[0].lower() in {"python", "py", "python3"}


def extract_blocks(text: str) -> list[Block]:
    """Every ```python fenced block of a markdown text, dedented, with its skip flag."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, python = m.group("fence"), _is_python(m.group("info"))
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        body_start = i + 1
        j = body_start
        # The closing fence uses the same character, at least as long, and nothing after it.
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if (
                close
                and close.group("fence")[0] == fence[0]
                and len(close.group("fence")) >= len(fence)
                and not close.group("info").strip()
            ):
                break
            j += 1
        if python:
            indent = len(m.group("indent"))
            body = [ln[indent:] if ln[:indent].strip() == "" else ln for ln in lines[body_start:j]]
            code = textwrap.dedent("\n".join(body))
            blocks.append(Block(body_start + 1, code, previous == SKIP_MARK))
        i = j + 1
    return blocks


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "packages").glob("*/README.md"))]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in pages if p.is_file()]


PAGES = _pages()
PAGES_WITH_CODE = [p for p in PAGES if any(not b.skipped for b in extract_blocks(p.read_text()))]


def test_docs_are_present() -> None:
    if not (ROOT / "docs").is_dir():
        pytest.skip("no docs/ folder beside this package (not a source checkout)")
    assert PAGES_WITH_CODE, "no runnable python block found in README.md or docs/"


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=[str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE]
)
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # files a snippet writes land here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    dtype = torch.get_default_dtype()
    torch.manual_seed(0)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    try:
        for block in extract_blocks(page.read_text()):
            if block.skipped:
                continue
            where = f"{page.relative_to(ROOT)}:{block.line}"
            try:
                exec(compile(block.code, where, "exec"), namespace)
            except Exception as err:
                pytest.fail(f"the block at {where} raised {type(err).__name__}: {err}")
    finally:
        torch.set_default_dtype(dtype)


# ------------------------------------------------------------------ the extractor itself


def test_extract_blocks_reads_python_fences_only() -> None:
    text = (
        "intro\n"
        "```python\n"
        "a = 1\n"
        "```\n"
        "```bash\n"
        "echo no\n"
        "```\n"
        "<!-- no-test -->\n"
        "\n"
        "```python\n"
        "b = torch.cuda.current_device()\n"
        "```\n"
        "- a list item:\n"
        "\n"
        '    ```py title="x.py"\n'
        "    c = [\n"
        "        1,\n"
        "    ]\n"
        "    ```\n"
        "````python\n"
        "d = '''\n"
        "```\n"
        "'''\n"
        "````\n"
    )
    blocks = extract_blocks(text)
    assert [b.code for b in blocks] == [
        "a = 1",
        "b = torch.cuda.current_device()",
        "c = [\n    1,\n]",
        "d = '''\n```\n'''",
    ]
    assert [b.skipped for b in blocks] == [False, True, False, False]
    assert [b.line for b in blocks] == [3, 11, 16, 21]


def test_skip_mark_applies_only_to_the_next_block() -> None:
    text = "<!-- no-test -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    assert [b.skipped for b in extract_blocks(text)] == [True, False]


# ------------------------------------------------------------------ the site


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs / mkdocstrings not installed (uv sync --group docs --package flash-semicrf)",
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    if not (ROOT / "mkdocs.yml").is_file():
        pytest.skip("no mkdocs.yml (not a source checkout)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    for page in ("index.html", "api/flash-semicrf/index.html", "api/nn/index.html"):
        assert (tmp_path / page).is_file(), f"{page} was not built"


# ------------------------------------------------------------------ the public names are documented


@pytest.mark.parametrize("page", ["docs/api/flash-semicrf.md", "packages/flash-semicrf/README.md"])
def test_page_lists_every_public_name(page: str) -> None:
    import flash_semicrf
    import flash_semicrf.streaming

    path = ROOT / page
    if not path.is_file():
        pytest.skip(f"{page} not present (not a source checkout)")
    text = path.read_text()
    names = {*flash_semicrf.__all__, "SemiCRFStreamingTriton", "SemiCRFLightningModule"}
    names |= set(flash_semicrf.streaming._TRITON_NAMES)
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert missing == [], f"{page} does not mention {missing}"
