"""The runtime wheel (issue 13, Packaging): it holds bot, commands, approvals, integrations and
core only, and it runs without the sandbox and its stand-ins.

The wheel is built from a copy of the checkout (so the build never writes build/ or an egg-info
into the working tree, and no stale build/lib of an earlier build can leak into it), then
installed with requirements-runtime.lock into a fresh virtualenv that does not see the dev
venv, the checkout or its .pth. Both are made once per session; under pytest-xdist the first
worker makes them and the others wait for it and reuse them (a file lock in the session's
shared temporary folder).

The build and the install need the package index (or pip's cache). The build backend comes
from pip's build isolation: the dev venv has no `wheel` and its setuptools (65) cannot read
pyproject.toml's SPDX `license` string, which needs setuptools >= 77. When pip cannot get a
package, the test fails and says so; it never skips.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = frozenset({"bot", "commands", "approvals", "integrations", "core"})
STAND_INS = ("moto", "fakeredis")
# Never imported by the runtime packages (the one lazy, guarded exception is below).
FORBIDDEN_IMPORTS = frozenset({*STAND_INS, "sandbox", "examples", "tests"})
ALLOWED_IMPORTS = frozenset({("bot/cli.py", "sandbox.console")})  # `dhanam-bot sandbox`, lazily
# Measured at 232 KB (106 files) when this test was written; 1 MB leaves room to grow and still
# catches a data directory or a vendored package slipping in.
MAX_WHEEL_BYTES = 1_000_000
EXAMPLE_CONFIG = ROOT / "examples" / "dhanam.example.toml"
# Copying the checkout: what is never part of a build.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
)
PIP_TIMEOUT = 420  # seconds, for one pip command


@dataclass(frozen=True)
class Runtime:
    """The fresh virtualenv with the runtime lock and the wheel installed."""

    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def cwd(self) -> Path:
        return self.venv.parent  # outside the checkout: '' on sys.path must not find it

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=self.cwd,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _clean_env() -> dict[str, str]:
    """The test's environment without what would let a child see the dev venv or the checkout.
    The PIP_* settings (index, find-links, cache) stay."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pip(python: Path | str, *args: str | Path, what: str) -> None:
    command = [str(python), "-m", "pip", *[str(arg) for arg in args]]
    try:
        done = subprocess.run(
            command,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"{what}: pip did not finish in {PIP_TIMEOUT} s — is the package index reachable?"
            f"\n$ {' '.join(command)}",
            pytrace=False,
        )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        pytest.fail(
            f"{what} failed (pip exit {done.returncode}). This test needs the package index (or"
            f" pip's cache) for the build backend and the runtime lock; if the index is"
            f" unreachable, that is the cause.\n$ {' '.join(command)}\n{tail}",
            pytrace=False,
        )


def _made_once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder `make` fills once per test session, shared by the xdist workers: the first one
    makes it under a file lock, the others wait and reuse it. A failed attempt is recorded so
    that the other workers fail with its message instead of trying again."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = factory.getbasetemp().parent / "packaging"  # pytest-N/, this session's
    else:
        shared = factory.getbasetemp() / "packaging"
    shared.mkdir(parents=True, exist_ok=True)
    folder, done, failed = shared / name, shared / f"{name}.done", shared / f"{name}.failed"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(failed.read_text(encoding="utf-8"), pytrace=False)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                make(folder)
            except BaseException as exc:
                failed.write_text(f"{name} (made by another worker): {exc}", encoding="utf-8")
                raise
            done.touch()
    return folder


def _build_wheel(out: Path) -> None:
    source = out / "src"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE, symlinks=True)
    _pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--quiet",
        "--wheel-dir",
        out / "dist",
        source,
        what="building the runtime wheel",
    )
    shutil.rmtree(source)


def _make_runtime(wheel: Path) -> Callable[[Path], None]:
    def make(out: Path) -> None:
        venv = out / "venv"
        # From the dev venv's interpreter, venv still makes a venv on the base Python, and
        # without --system-site-packages it sees neither the dev venv nor the checkout's .pth.
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, env=_clean_env(), timeout=120
        )
        python = venv / "bin" / "python"
        lock = ROOT / "requirements-runtime.lock"
        _pip(python, "install", "--quiet", "-r", lock, what="installing requirements-runtime.lock")
        _pip(python, "install", "--quiet", "--no-deps", wheel, what="installing the wheel")

    return make


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = sorted((_made_once(tmp_path_factory, "wheel", _build_wheel) / "dist").glob("*.whl"))
    assert len(wheels) == 1, f"one wheel expected, built {[w.name for w in wheels]}"
    return wheels[0]


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Runtime:
    return Runtime(_made_once(tmp_path_factory, "runtime", _make_runtime(wheel)) / "venv")


@pytest.fixture(scope="module")
def wheel_files(wheel: Path) -> Iterator[dict[str, bytes]]:
    with zipfile.ZipFile(wheel) as archive:
        yield {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def _project_version() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version: str = pyproject["project"]["version"]
    return version


# ---- what the wheel holds ------------------------------------------------------------------


def test_wheel_holds_the_five_runtime_packages_only(
    wheel: Path, wheel_files: dict[str, bytes]
) -> None:
    size = wheel.stat().st_size
    unpacked = sum(len(data) for data in wheel_files.values())
    tops: dict[str, int] = {}
    for name in wheel_files:
        top = name.split("/", 1)[0]
        tops[top] = tops.get(top, 0) + 1
    print(
        f"\n{wheel.name}: {size / 1024:.0f} KiB, {len(wheel_files)} files"
        f" ({unpacked / 1024:.0f} KiB unpacked): "
        + ", ".join(f"{top} {count}" for top, count in sorted(tops.items()))
    )
    dist_info = f"dhanam_chatops-{_project_version()}.dist-info"
    assert set(tops) == RUNTIME_PACKAGES | {dist_info}
    strays = [
        name
        for name in wheel_files
        if {"sandbox", "examples", "tests"} & set(name.split("/")[:-1])
        or (not name.endswith((".py", "py.typed")) and not name.startswith(dist_info + "/"))
    ]
    assert not strays, f"not runtime code: {strays}"
    assert size < MAX_WHEEL_BYTES, f"the wheel is {size} bytes; it was 232 KB in issue 13"


def test_wheel_has_every_py_typed_marker(wheel_files: dict[str, bytes]) -> None:
    markers = sorted(
        path.relative_to(ROOT).as_posix()
        for package in RUNTIME_PACKAGES
        for path in (ROOT / package).rglob("py.typed")
    )
    assert markers, "the runtime packages are typed (PEP 561)"
    missing = [marker for marker in markers if marker not in wheel_files]
    assert not missing, f"py.typed missing from the wheel: {missing}"


def _imported_modules(source: str) -> Iterator[str]:
    """Every module an `import`, a `from … import` (absolute) or an `import_module("…")` /
    `__import__("…")` with a literal name names, wherever it is (lazy imports included)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                yield str(first.value)


def test_wheel_imports_no_stand_in_nor_the_sandbox(wheel_files: dict[str, bytes]) -> None:
    found = {
        (name, module)
        for name, data in wheel_files.items()
        if name.endswith(".py")
        for module in _imported_modules(data.decode("utf-8"))
        if module.split(".", 1)[0] in FORBIDDEN_IMPORTS
    }
    assert not found - ALLOWED_IMPORTS, f"runtime code imports test stand-ins: {found}"
    # The scan sees lazy imports inside functions: it finds the CLI's guarded one.
    assert found == ALLOWED_IMPORTS


# ---- the wheel installed alone, with the runtime lock --------------------------------------

_IMPORT_ALL = """
import importlib, importlib.util, json, pkgutil, sys
packages = sys.argv[1].split(",")
imported, skipped, outside = [], [], []
for package in packages:
    for info in [None, *pkgutil.walk_packages(importlib.import_module(package).__path__,
                                              package + ".", onerror=lambda name: 1 / 0)]:
        name = package if info is None else info.name
        if name.rsplit(".", 1)[-1] == "__main__":
            skipped.append(name)  # runs the CLI when imported; checked with `python -m bot`
            continue
        module = importlib.import_module(name)
        imported.append(name)
        if not module.__file__.startswith(sys.prefix):
            outside.append(module.__file__)
absent = {name: importlib.util.find_spec(name) is None for name in sys.argv[2].split(",")}
print(json.dumps({"imported": imported, "skipped": skipped, "outside": outside,
                  "absent": absent}))
"""


def test_every_runtime_module_imports_without_the_stand_ins(runtime: Runtime) -> None:
    started = time.monotonic()
    done = runtime.run(
        runtime.python,
        "-I",  # no cwd, no PYTHON* variables, no user site on sys.path
        "-c",
        _IMPORT_ALL,
        ",".join(sorted(RUNTIME_PACKAGES)),
        ",".join([*STAND_INS, "sandbox", "examples", "tests"]),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\nimported {len(report['imported'])} modules from the wheel in"
        f" {time.monotonic() - started:.1f} s (not imported: {report['skipped']})"
    )
    assert {name.split(".")[0] for name in report["imported"]} == RUNTIME_PACKAGES
    assert len(report["imported"]) > 50
    assert report["skipped"] == ["bot.__main__"]
    assert not report["outside"], "modules imported from outside the fresh venv"
    not_absent = [name for name, absent in report["absent"].items() if not absent]
    assert not not_absent, f"importable in the runtime venv: {not_absent}"


def test_python_m_bot_runs(runtime: Runtime) -> None:
    done = runtime.run(runtime.python, "-I", "-m", "bot", "--help")
    assert done.returncode == 0, done.stderr
    assert "check-config" in done.stdout


def test_check_config_accepts_the_example_config(runtime: Runtime) -> None:
    done = runtime.run(runtime.venv / "bin" / "dhanam-bot", "check-config", EXAMPLE_CONFIG)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{EXAMPLE_CONFIG}: OK")


def test_sandbox_says_where_to_get_it(runtime: Runtime) -> None:
    done = runtime.run(runtime.venv / "bin" / "dhanam-bot", "sandbox")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dhanam-bot: the sandbox is not installed here")
    assert "make sandbox" in lines[0]
    assert "(missing: sandbox)" in lines[0]


# ---- the image copies the same packages -----------------------------------------------------


def _dockerfile_copies() -> list[list[str]]:
    """The arguments of each COPY (continuations joined, comments dropped)."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    return [line.split()[1:] for line in joined.splitlines() if line.split()[:1] == ["COPY"]]


def test_dockerfile_copies_only_the_runtime_packages() -> None:
    sources: set[str] = set()
    for args in _dockerfile_copies():
        if any(arg.startswith("--from=") for arg in args):
            continue  # from the builder stage, not the build context
        sources |= {arg.rstrip("/") for arg in args[:-1] if not arg.startswith("--")}
    files = {"requirements-runtime.lock", "pyproject.toml", "README.md"}
    assert sources - files == RUNTIME_PACKAGES
    assert sources >= files


def test_pyproject_finds_the_same_packages() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.removesuffix("*") for pattern in include} == RUNTIME_PACKAGES
