"""Check that every workspace package imports and depends only on the layers beneath it.

Layer order (bottom first): semicrf-semirings, semicrf-core, semicrf-kernels, semicrf-nn,
flash-semicrf. Each package's source files are parsed (never imported) and every ``import`` /
``from ... import`` of another workspace package is compared with that order. The declared
dependencies in each ``pyproject.toml`` are checked the same way, and must be exactly the
workspace layers the package's files (sources and tests) import: a layer declared but never
imported is an error (it drags its own dependencies into every install), and so is a lower
layer imported but not declared (the package's own test environment would lack it).

Usage: ``python tools/check_layers.py [ROOT]``; exits 1 and prints each violation.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

#: (distribution name, import name), bottom layer first.
LAYERS: list[tuple[str, str]] = [
    ("semicrf-semirings", "semicrf_semirings"),
    ("semicrf-core", "semicrf_core"),
    ("semicrf-kernels", "semicrf_kernels"),
    ("semicrf-nn", "semicrf_nn"),
    ("flash-semicrf", "flash_semicrf"),
]
RANK_BY_IMPORT = {imp: i for i, (_, imp) in enumerate(LAYERS)}
RANK_BY_DIST = {dist: i for i, (dist, _) in enumerate(LAYERS)}


def imported_packages(source: str) -> set[str]:
    """Top-level names of the workspace packages that ``source`` imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in RANK_BY_IMPORT)
    # importlib.import_module("semicrf_x") and similar string imports.
    for match in re.finditer(r"import_module\(\s*['\"]([A-Za-z_]+)", source):
        if match.group(1) in RANK_BY_IMPORT:
            found.add(match.group(1))
    return found


def check(root: Path) -> list[str]:
    """Return one message per layering violation under ``root`` (the workspace root)."""
    problems: list[str] = []
    for rank, (dist, imp) in enumerate(LAYERS):
        pkg_dir = root / "packages" / dist
        if not pkg_dir.is_dir():
            problems.append(f"{dist}: package folder {pkg_dir} is missing")
            continue
        imported: set[str] = set()
        for path in sorted(pkg_dir.rglob("*.py")):
            if any(part in {".venv", "build", "dist"} for part in path.parts):
                continue
            found = imported_packages(path.read_text(encoding="utf-8"))
            imported |= found
            for other in sorted(found):
                if RANK_BY_IMPORT[other] > rank:
                    rel = path.relative_to(root)
                    problems.append(
                        f"{rel}: {imp} (layer {rank}) imports {other} "
                        f"(layer {RANK_BY_IMPORT[other]}), a layer above it"
                    )
        problems += _check_declared(root, rank, dist, imported)
    return problems


def _check_declared(root: Path, rank: int, dist: str, imported: set[str]) -> list[str]:
    """Messages for ``dist``'s declared workspace dependencies against the layers it imports."""
    problems: list[str] = []
    pyproject = root / "packages" / dist / "pyproject.toml"
    meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    declared: set[str] = set()
    for req in meta.get("project", {}).get("dependencies", []):
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name not in RANK_BY_DIST:
            continue
        declared.add(name)
        if RANK_BY_DIST[name] >= rank:
            problems.append(
                f"packages/{dist}/pyproject.toml: depends on {name}, which is not beneath it"
            )
        elif LAYERS[RANK_BY_DIST[name]][1] not in imported:
            problems.append(
                f"packages/{dist}/pyproject.toml: depends on {name}, which none of its files "
                "imports"
            )
    for other in sorted(imported):
        below = RANK_BY_IMPORT[other] < rank
        if below and LAYERS[RANK_BY_IMPORT[other]][0] not in declared:
            problems.append(
                f"packages/{dist}/pyproject.toml: its files import {other} but it does not "
                f"declare {LAYERS[RANK_BY_IMPORT[other]][0]}"
            )
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = check(root)
    for line in problems:
        print(line)
    if problems:
        print(f"layers: {len(problems)} violation(s)")
        return 1
    print("layers: every package imports and depends only on the layers beneath it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
