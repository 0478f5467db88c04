"""Every declared lower bound is a version our tests have run (docs/changelog-policy.md).

The declared bounds were raised to what is tested instead of testing old releases in CI: torch
and triton to the GPU suite's versions (torch 2.11.0, triton 3.6.0; CI runs newer ones), the
others to the oldest version the lock resolves. A bound lowered below these fails here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]

#: Third-party distribution -> the oldest version a test run of ours has used.
TESTED = {
    "torch": (2, 11),
    "triton": (3, 6),
    "scipy": (1, 15),
    "matplotlib": (3, 10),
    "tqdm": (4, 70),
    "lightning": (2, 6),
    "numba": (0, 68),
    "numpy": (2, 2),
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def test_lower_bounds_are_tested_versions() -> None:
    found = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        requirements = list(project["dependencies"])
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for req in requirements:
            match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", req)
            if match is None or match.group(1).startswith("semicrf"):
                continue
            name, bound = match.group(1), _version(match.group(2))
            assert name in TESTED, f"{pyproject.parent.name}: no tested version known for {req!r}"
            assert bound >= TESTED[name], (
                f"{pyproject.parent.name} declares {req!r}, below the oldest tested "
                f"{name} {'.'.join(map(str, TESTED[name]))}"
            )
            found[name] = bound
    assert {"torch", "triton", "scipy"} <= set(found)
