"""Developer tasks for the flash-semicrf workspace.

`uv run nox` runs the default sessions (lint, layers, one test session per package, the optional
Lightning integration, build, docs).
Every test session gets its own environment holding only that package and the layers beneath
it, installed from the committed lock (`uv sync --locked --package ...`), so an accidental
import of a higher layer fails there.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent

# Bottom layer first: each package may depend only on those listed before it.
PACKAGES: dict[str, str] = {
    "semirings": "semicrf-semirings",
    "core": "semicrf-core",
    "kernels": "semicrf-kernels",
    "nn": "semicrf-nn",
    "flash-semicrf": "flash-semicrf",
}

nox.options.sessions = [
    "lint",
    "layers",
    *(f"tests-{short}" for short in PACKAGES),
    "tests-lightning",
    "build",
    "docs",
]


def _sync(session: nox.Session, package: str, *groups: str, extras: tuple[str, ...] = ()) -> None:
    """Install ``package`` (and only its lower layers) into the session's venv from uv.lock."""
    args = ["uv", "sync", "--locked", "--package", package, "--inexact"]
    for group in groups:
        args += ["--group", group]
    for extra in extras:
        args += ["--extra", extra]
    session.run_install(
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )


def _run_tests(session: nox.Session, short: str) -> None:
    """Run one package's tests in an environment that holds only it and its lower layers."""
    package = PACKAGES[short]
    _sync(session, package, "test")
    tests_dir = ROOT / "packages" / package / "tests"
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    if short == "kernels":
        # Everything except the Triton kernel tests, then those under the Triton interpreter
        # (TRITON_INTERPRET must be set before the kernels are defined, hence a separate run).
        session.run(
            "pytest", str(tests_dir), "--ignore-glob=*test_triton_*", *session.posargs, env=env
        )
        triton_tests = sorted(str(p) for p in tests_dir.rglob("test_triton_*.py"))
        if triton_tests:
            session.run(
                "pytest", *triton_tests, *session.posargs, env={**env, "TRITON_INTERPRET": "1"}
            )
    else:
        session.run("pytest", str(tests_dir), *session.posargs, env=env)


def _make_test_session(short: str) -> None:
    def session_func(session: nox.Session) -> None:
        _run_tests(session, short)

    session_func.__doc__ = f"Tests of {PACKAGES[short]}, alone with its lower layers."
    nox.session(name=f"tests-{short}", tags=["tests"])(session_func)


for _short in PACKAGES:
    _make_test_session(_short)


@nox.session(name="tests-lightning", tags=["tests"])
def tests_lightning(session: nox.Session) -> None:
    """The optional Lightning integration: its module and Lightning's DDP on two CPU processes."""
    _sync(session, "flash-semicrf", "test", extras=("lightning",))
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    session.run(
        "pytest",
        str(ROOT / "packages" / "semicrf-nn" / "tests" / "test_lightning.py"),
        str(ROOT / "packages" / "flash-semicrf" / "tests" / "test_distributed_examples.py"),
        "-k",
        "lightning",
        *session.posargs,
        env=env,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole workspace."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def layers(session: nox.Session) -> None:
    """Fail if any package imports (or depends on) a package above it."""
    session.install("pytest>=8", "tomli>=2; python_version < '3.11'")
    session.run("python", "tools/check_layers.py")
    session.run("pytest", "tools/tests", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the five wheels and sdists without workspace sources; install semirings alone."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run(
        "uv", "build", "--all-packages", "--no-sources", "--out-dir", str(dist), external=True
    )
    artifacts = sorted(p.name for p in dist.iterdir() if p.suffix in {".whl", ".gz"})
    session.log("built: " + ", ".join(artifacts))
    if len(artifacts) != 10:
        session.error(f"expected 10 artifacts (5 wheels + 5 sdists), got {len(artifacts)}")
    # A fresh environment with only the semirings wheel (and its registry dependencies).
    lone = Path(session.create_tmp()) / "lone-semirings"
    shutil.rmtree(lone, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(lone), external=True)
    python = lone / "bin" / "python"
    wheel = next(dist.glob("semicrf_semirings-*.whl"))
    session.run(
        "uv", "pip", "install", "--quiet", "--python", str(python), str(wheel), external=True
    )
    session.run(
        str(python),
        "-c",
        "import importlib.util, semicrf_semirings as s; "
        "assert importlib.util.find_spec('semicrf_core') is None; "
        "print('semicrf_semirings', s.__version__, 'imports alone')",
        external=True,
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (strict: broken links and bad references fail)."""
    _sync(session, "flash-semicrf", "docs")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(ROOT / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
