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


def _wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of ``wheel`` that apply here without extras."""
    import zipfile

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(name).decode()
    found = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                found.append(req)
    return [str(r) for r in found]


def _install_from_wheels(session: nox.Session, dist: Path, package: str) -> Path:
    """A fresh venv holding ``package`` and its lower layers from ``dist`` only; its python.

    The third-party requirements go in first, from the registry (torch at the version this
    workspace runs, so uv links it from its cache instead of downloading it again; set
    ``SEMICRF_TORCH_INDEX=https://download.pytorch.org/whl/cpu`` to take torch from that index
    instead). Then our packages install with ``--no-index --find-links dist``: a layer missing
    from the built wheels fails here instead of coming from the workspace or the public index.
    """
    from importlib import metadata

    ours = set(PACKAGES.values())
    wheels = {p.name.split("-")[0].replace("_", "-"): p for p in dist.glob("*.whl")}
    third_party: set[str] = set()
    todo, seen = [package], set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for req in _wheel_requirements(wheels[name]):
            dep = req.split(";")[0].strip()
            base = dep.split("[")[0]
            for sep in "<>=!~ ":
                base = base.split(sep)[0]
            if base in ours:
                if base not in seen:
                    todo.append(base)
            else:
                third_party.add(req)
    try:
        torch_pin = f"torch=={metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        torch_pin = "torch"
    venv = Path(session.create_tmp()) / f"wheel-{package}"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("uv", "venv", "--quiet", "--python", sys.executable, str(venv), external=True)
    python = str(venv / "bin" / "python")
    pip = ("uv", "pip", "install", "--quiet", "--python", python)
    torch_index = os.environ.get("SEMICRF_TORCH_INDEX")
    if torch_index:
        session.run(*pip, "--index-url", torch_index, torch_pin.split("+")[0], external=True)
    session.run(*pip, torch_pin, *sorted(third_party), external=True)
    session.run(*pip, "--no-index", "--find-links", str(dist), package, external=True)
    return venv


@nox.session
def build(session: nox.Session) -> None:
    """Build the five wheels and sdists without workspace sources, then install from them.

    In fresh environments, from the built wheels only (nothing from the workspace):
    ``semicrf-semirings`` alone (imports); ``semicrf-kernels`` alone (a forward and a backward);
    ``semicrf-nn`` alone (one training step of a head); ``flash-semicrf`` (``--version``).
    """
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
    smoke = str(ROOT / "tools" / "wheel_smoke.py")
    env = {"OMP_NUM_THREADS": "1"}
    for package, check in (("semicrf-kernels", "kernels"), ("semicrf-nn", "nn")):
        venv = _install_from_wheels(session, dist, package)
        session.run(str(venv / "bin" / "python"), smoke, check, env=env, external=True)
    venv = _install_from_wheels(session, dist, "flash-semicrf")
    version = session.run(
        str(venv / "bin" / "flash-semicrf"), "--version", env=env, external=True, silent=True
    )
    session.log(version)
    built = next(dist.glob("flash_semicrf-*.whl")).name.split("-")[1]
    if f"flash-semicrf {built}" not in (version or ""):
        session.error(f"flash-semicrf --version does not name the built version {built}")


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
