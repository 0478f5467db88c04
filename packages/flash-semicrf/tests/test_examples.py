"""Every script of ``examples/`` runs to the end: exit code 0 and its closing ``ok`` line.

Each script checks its own results against an independent computation (enumeration, dense
products, formulas), so a wrong answer fails here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# Listed by hand so that a script deleted by mistake fails here rather than silently vanishing.
SCRIPTS = [
    "quickstart_head.py",
    "uncertainty.py",
    "distribution_samples.py",
    "streaming_api.py",
    "semimarkov_semirings.py",
    "duration_distributions.py",
    "banded_and_block_triangular.py",
    "orderings.py",
]

pytestmark = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="no examples/ folder (not a source checkout)"
)


def test_every_script_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SCRIPTS)


def test_readme_names_every_script() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    missing = [name for name in SCRIPTS if f"`{name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs(script: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert out.stdout.strip().splitlines()[-1] == "ok", out.stdout[-3000:]
