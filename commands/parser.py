"""Text of `/dhanam …` -> a typed request, or a ParseError that names the problem and the choices.

The tokenizer is written here rather than taken from `shlex`: Slack text needs rules shlex does
not have (smart quotes from phones, HTML-escaped `&lt;`, apostrophes that are not quotes, and
offsets into the raw line so free text can be taken "as the rest of the line").

Long: the tokenizer, the flag splitting and one short method per command share the line, the
choice errors and the service and environment checks; adding a command stays one entry here.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from commands.catalog import (
    COMMANDS,
    DB_SUBCOMMANDS,
    DR_SUBCOMMANDS,
    INCIDENT_SUBCOMMANDS,
    FlagKind,
)
from commands.requests import (
    ApprovalsRequest,
    AuditRequest,
    DbRestoreRequest,
    DeployRequest,
    DrActivateRequest,
    DrStatusRequest,
    HelpRequest,
    IncidentCommanderRequest,
    IncidentDeclareRequest,
    IncidentResolveRequest,
    IncidentState,
    IncidentStatusRequest,
    IncidentUpdateRequest,
    LockRequest,
    LogsRequest,
    Request,
    RollbackRequest,
    RunRequest,
    ScaleRequest,
    Severity,
    StatusRequest,
    UnlockRequest,
)
from core.config import Config
from core.errors import ParseError

MAX_COMMAND_LENGTH = 4000
MAX_FREE_TEXT = 500
_OPEN_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201d", "\u201d": "\u201d"}
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_WINDOW = re.compile(r"^(\d{1,6})([smhd])$")
_WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LOGS_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class Token:
    value: str
    start: int
    end: int
    quoted: bool


def tokenize(text: str) -> list[Token]:
    """Split like a shell line: whitespace separates, double quotes (straight or curly) group."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        if text[i] in _OPEN_QUOTES:
            close = _OPEN_QUOTES[text[i]]
            j = i + 1
            while j < n and text[j] != close and not (close == "\u201d" and text[j] == '"'):
                j += 1
            if j >= n:
                raise ParseError(f"unclosed quote starting at “{text[start : start + 20]}”")
            tokens.append(Token(html.unescape(text[i + 1 : j]), start, j + 1, quoted=True))
            i = j + 1
            continue
        while i < n and not text[i].isspace():
            i += 1
        tokens.append(Token(html.unescape(text[start:i]), start, i, quoted=False))
    return tokens


def _choices(kind: str, value: str, known: Sequence[str]) -> ParseError:
    folded = value.lower()
    prefixed = [k for k in known if folded and k.startswith(folded)]
    close = prefixed or difflib.get_close_matches(folded, known, n=1, cutoff=0.5)
    hint = f" — did you mean {close[0]}?" if len(close) == 1 else ""
    return ParseError(f'unknown {kind} "{_clip(value)}"{hint} — known: {", ".join(known)}')


def _clip(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class _Line:
    """The tokens of one command after its name, with flags split out."""

    def __init__(self, raw: str, tokens: list[Token], command: str) -> None:
        self.raw = raw
        self.command = command
        self.spec = COMMANDS[command]
        self.positional: list[Token] = []
        self.flags: dict[str, str | bool] = {}
        self._split(tokens)

    def _split(self, tokens: list[Token]) -> None:
        known = self.spec.flags
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.quoted or not tok.value.startswith("--") or tok.value == "--":
                self.positional.append(tok)
                i += 1
                continue
            name, eq, inline = tok.value.partition("=")
            if name not in known:
                valid = ", ".join(known) or "none"
                raise ParseError(
                    f'unknown option "{_clip(name)}" for {self.command} — valid: {valid}',
                    usage=self.spec.usage,
                )
            if name in self.flags:
                raise ParseError(f"{name} given twice", usage=self.spec.usage)
            kind = known[name]
            i += 1
            if kind is FlagKind.BOOL:
                if eq:
                    raise ParseError(f"{name} takes no value", usage=self.spec.usage)
                self.flags[name] = True
                continue
            if eq:
                self.flags[name] = inline
                continue
            if i >= len(tokens) or (not tokens[i].quoted and tokens[i].value in known):
                raise ParseError(f"{name} needs a value", usage=self.spec.usage)
            if kind is FlagKind.TEXT and not tokens[i].quoted:
                j = i
                while j < len(tokens) and (tokens[j].quoted or tokens[j].value not in known):
                    j += 1
                # the rest of the line as typed: un-escape what Slack escaped, as tokens do
                self.flags[name] = html.unescape(self.raw[tokens[i].start : tokens[j - 1].end])
                i = j
            else:
                self.flags[name] = tokens[i].value
                i += 1

    def rest(self, index: int) -> str | None:
        """Free text from positional ``index`` to the end, as typed (one quoted token unwrapped)."""
        words = self.positional[index:]
        if not words:
            return None
        if len(words) == 1:
            return words[0].value
        return html.unescape(self.raw[words[0].start : words[-1].end])

    def expect(self, low: int, high: int) -> None:
        count = len(self.positional)
        if count < low:
            raise ParseError(f"{self.command}: missing arguments", usage=self.spec.usage)
        if count > high:
            extra = " ".join(t.value for t in self.positional[high:])
            raise ParseError(f'{self.command}: unexpected "{_clip(extra)}"', usage=self.spec.usage)

    def text_flag(self, name: str) -> str | None:
        value = self.flags.get(name)
        if value is None:
            return None
        return _free_text(str(value), name.lstrip("-"))

    def int_flag(self, name: str) -> int | None:
        value = self.flags.get(name)
        if value is None:
            return None
        text = str(value)
        if not re.fullmatch(r"-?\d{1,9}", text):
            raise ParseError(f'{name} must be a whole number, not "{_clip(text)}"')
        number = int(text)
        if number < 0:
            raise ParseError(f"{name} must be 0 or more, not {number}")
        return number


def _free_text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ParseError(f"{what} must not be empty")
    if len(value) > MAX_FREE_TEXT:
        raise ParseError(
            f"{what} is too long ({len(value)} characters; the limit is {MAX_FREE_TEXT})"
        )
    return value


class Parser:
    """Parses against one config: service and environment names come from it."""

    def __init__(self, config: Config) -> None:
        self.services = config.service_names
        self.environments = config.environment_names
        self.tasks = {name: sorted(svc.tasks) for name, svc in config.services.items()}
        self._handlers: dict[str, Callable[[_Line], Request]] = {
            "help": self._help,
            "deploy": self._deploy,
            "rollback": self._rollback,
            "scale": self._scale,
            "db": self._db,
            "run": self._run,
            "logs": self._logs,
            "dr": self._dr,
            "status": self._status,
            "lock": self._lock,
            "unlock": self._unlock,
            "approvals": self._approvals,
            "audit": self._audit,
            "incident": self._incident,
        }

    def parse(self, text: str) -> Request:
        if len(text) > MAX_COMMAND_LENGTH:
            raise ParseError(
                f"command is too long ({len(text)} characters; the limit is {MAX_COMMAND_LENGTH})"
            )
        tokens = tokenize(text)
        if not tokens:
            return HelpRequest()
        name = tokens[0].value.lower()
        if name in ("-h", "--help"):
            return HelpRequest()
        if name not in self._handlers:
            raise _choices("command", tokens[0].value, list(COMMANDS))
        spec = COMMANDS[name]
        try:
            line = _Line(text, tokens[1:], name)
            return self._handlers[name](line)
        except ParseError as exc:
            if exc.usage is None:
                exc.usage = spec.usage
            raise
        except ValidationError as exc:  # a bound in a request model, e.g. audit 0
            first = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ParseError(f"{name}: {field} {first['msg'].lower()}", usage=spec.usage) from None

    # -- names -------------------------------------------------------------------------------
    def _service(self, tok: Token) -> str:
        if tok.value.lower() not in self.services:
            raise _choices("service", tok.value, self.services)
        return tok.value.lower()

    def _env(self, tok: Token) -> str:
        if tok.value.lower() not in self.environments:
            raise _choices("environment", tok.value, self.environments)
        return tok.value.lower()

    # -- commands ----------------------------------------------------------------------------
    def _help(self, line: _Line) -> Request:
        line.expect(0, 2)
        if not line.positional:
            return HelpRequest()
        topic = line.positional[0].value.lower()
        if topic not in COMMANDS:
            raise _choices("command", line.positional[0].value, list(COMMANDS))
        return HelpRequest(topic=topic)

    def _deploy(self, line: _Line) -> Request:
        line.expect(3, 3)
        service, env, tag = line.positional
        if not _TAG.fullmatch(tag.value):
            raise ParseError(
                f'"{_clip(tag.value)}" is not a valid image tag '
                "(letters, digits, _ . -; at most 128; e.g. v1.4.2)",
                usage=line.spec.usage,
            )
        return DeployRequest(
            service=self._service(service),
            env=self._env(env),
            tag=tag.value,
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _rollback(self, line: _Line) -> Request:
        line.expect(2, 2)
        service, env = line.positional
        revision = line.int_flag("--to")
        if revision == 0:
            raise ParseError("--to must be a revision number of 1 or more", usage=line.spec.usage)
        return RollbackRequest(
            service=self._service(service),
            env=self._env(env),
            to_revision=revision,
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _scale(self, line: _Line) -> Request:
        line.expect(2, 2)
        service, env = line.positional
        low, high, desired = (line.int_flag(f) for f in ("--min", "--max", "--desired"))
        if low is None and high is None and desired is None:
            raise ParseError(
                "scale: give at least one of --min, --max, --desired", usage=line.spec.usage
            )
        if low is not None and high is not None and low > high:
            raise ParseError(f"--min {low} is above --max {high}", usage=line.spec.usage)
        if desired is not None and low is not None and desired < low:
            raise ParseError(f"--desired {desired} is below --min {low}", usage=line.spec.usage)
        if desired is not None and high is not None and desired > high:
            raise ParseError(f"--desired {desired} is above --max {high}", usage=line.spec.usage)
        return ScaleRequest(
            service=self._service(service),
            env=self._env(env),
            min=low,
            max=high,
            desired=desired,
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _db(self, line: _Line) -> Request:
        if not line.positional or line.positional[0].value.lower() not in DB_SUBCOMMANDS:
            given = line.positional[0].value if line.positional else ""
            raise ParseError(
                f'unknown db command "{_clip(given)}" — known: {", ".join(DB_SUBCOMMANDS)}',
                usage=line.spec.usage,
            )
        line.expect(2, 2)
        env = self._env(line.positional[1])
        raw_time = line.flags.get("--to")
        if raw_time is None:
            raise ParseError("db restore needs --to TIME or --to latest", usage=line.spec.usage)
        return DbRestoreRequest(
            env=env,
            to=_restore_time(str(raw_time)),
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _run(self, line: _Line) -> Request:
        line.expect(3, 3)
        service = self._service(line.positional[0])
        env = self._env(line.positional[1])
        task = line.positional[2].value
        known = self.tasks.get(service, [])
        if task not in known:
            if not known:
                raise ParseError(
                    f"{service} has no one-off tasks — add [services.{service}.tasks.NAME] "
                    "to the config",
                    usage=line.spec.usage,
                )
            raise _choices(f"task of {service}", task, known)
        return RunRequest(
            service=service,
            env=env,
            task=task,
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _logs(self, line: _Line) -> Request:
        line.expect(2, 2)
        service = self._service(line.positional[0])
        env = self._env(line.positional[1])
        limit = line.int_flag("--limit")
        if limit is not None and not 1 <= limit <= 500:
            raise ParseError(f"--limit must be from 1 to 500, not {limit}", usage=line.spec.usage)
        raw_since = line.flags.get("--since")
        grep = line.text_flag("--grep")
        fields: dict[str, object] = {"service": service, "env": env, "grep": grep}
        if limit is not None:
            fields["limit"] = limit
        if raw_since is not None:
            fields["since"] = _logs_since(str(raw_since).strip())
        return LogsRequest.model_validate(fields)

    def _dr(self, line: _Line) -> Request:
        sub = line.positional[0].value.lower() if line.positional else ""
        if sub not in DR_SUBCOMMANDS:
            raise ParseError(
                f'unknown dr command "{_clip(sub)}" — known: {", ".join(DR_SUBCOMMANDS)}',
                usage=line.spec.usage,
            )
        line.expect(1, 1)
        if sub == "status":
            if line.flags:
                given = ", ".join(line.flags)
                raise ParseError(f"dr status takes no options (given: {given})")
            return DrStatusRequest()
        return DrActivateRequest(
            reason=line.text_flag("--reason"),
            break_glass=bool(line.flags.get("--break-glass", False)),
        )

    def _status(self, line: _Line) -> Request:
        line.expect(0, 2)
        service: str | None = None
        env: str | None = None
        for tok in line.positional:
            if tok.value in self.services and service is None:
                service = tok.value
            elif tok.value in self.environments and env is None:
                env = tok.value
            else:
                raise ParseError(
                    f'unknown service or environment "{_clip(tok.value)}" — services: '
                    f"{', '.join(self.services)}; environments: {', '.join(self.environments)}",
                    usage=line.spec.usage,
                )
        return StatusRequest(service=service, env=env)

    def _lock(self, line: _Line) -> Request:
        line.expect(3, 10_000)
        reason = _free_text(line.rest(2) or "", "reason")
        return LockRequest(
            service=self._service(line.positional[0]),
            env=self._env(line.positional[1]),
            reason=reason,
        )

    def _unlock(self, line: _Line) -> Request:
        line.expect(2, 2)
        return UnlockRequest(
            service=self._service(line.positional[0]), env=self._env(line.positional[1])
        )

    def _approvals(self, line: _Line) -> Request:
        line.expect(0, 0)
        return ApprovalsRequest()

    def _audit(self, line: _Line) -> Request:
        line.expect(0, 1)
        if not line.positional:
            return AuditRequest()
        value = line.positional[0].value
        if not re.fullmatch(r"\d{1,6}", value) or not 1 <= int(value) <= 200:
            raise ParseError(
                f'audit: N must be a number from 1 to 200, not "{_clip(value)}"',
                usage=line.spec.usage,
            )
        return AuditRequest(count=int(value))

    def _incident(self, line: _Line) -> Request:
        sub = line.positional[0].value.lower() if line.positional else ""
        if sub not in INCIDENT_SUBCOMMANDS:
            raise ParseError(
                f'unknown incident command "{_clip(sub)}" — known: '
                f"{', '.join(INCIDENT_SUBCOMMANDS)}",
                usage=line.spec.usage,
            )
        if sub == "declare":
            line.expect(3, 10_000)
            sev = line.positional[1].value.lower()
            if sev not in {s.value for s in Severity}:
                raise _choices("severity", line.positional[1].value, [s.value for s in Severity])
            title = _free_text(line.rest(2) or "", "title")
            return IncidentDeclareRequest(severity=Severity(sev), title=title)
        if sub == "update":
            line.expect(2, 10_000)
            return IncidentUpdateRequest(text=_free_text(line.rest(1) or "", "update"))
        if sub == "status":
            line.expect(2, 2)
            state = line.positional[1].value.lower()
            known = [s.value for s in IncidentState]
            if state not in known:
                raise _choices("incident status", line.positional[1].value, known)
            return IncidentStatusRequest(state=IncidentState(state))
        if sub == "commander":
            line.expect(2, 2)
            return IncidentCommanderRequest(user_id=_user(line.positional[1].value))
        line.expect(1, 10_000)
        summary = line.rest(1)
        return IncidentResolveRequest(summary=_free_text(summary, "summary") if summary else None)


def _user(value: str) -> str:
    match = _MENTION.fullmatch(value)
    if match:
        return match.group(1)
    if _USER_ID.fullmatch(value):
        return value
    raise ParseError(
        f'"{_clip(value)}" is not a user — mention them, e.g. `incident commander @carol` '
        "picked from Slack's list"
    )


def _logs_since(value: str) -> timedelta | datetime:
    """`--since`: a window back from now (30s, 15m, 2h, 1d) or an ISO 8601 moment with a zone."""
    match = _WINDOW.fullmatch(value.lower())
    if match:
        window = timedelta(seconds=int(match.group(1)) * _WINDOW_UNITS[match.group(2)])
        if not timedelta(0) < window <= MAX_LOGS_WINDOW:
            raise ParseError(f'--since "{_clip(value)}" must be more than 0 and at most 14d')
        return window
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(
            f"--since must be a window such as 15m, 2h or 1d, or an ISO 8601 time such as "
            f'2026-11-26T09:30:00Z, not "{_clip(value)}"'
        ) from None
    if moment.tzinfo is None:
        raise ParseError(f'--since "{_clip(value)}" needs a timezone, e.g. 2026-11-26T09:30:00Z')
    return moment.astimezone(UTC)


def _restore_time(value: str) -> datetime | Literal["latest"]:
    if value.lower() == "latest":
        return "latest"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError(
            f'--to must be "latest" or an ISO 8601 time such as 2026-11-26T09:30:00Z, '
            f'not "{_clip(value)}"'
        ) from None
    if moment.tzinfo is None:
        raise ParseError(f'--to "{_clip(value)}" needs a timezone, e.g. 2026-11-26T09:30:00Z')
    return moment
