"""The checklist's checks of the primary environment's services and names: DNS, ECS, and
ERROR lines in CloudWatch Logs."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import datetime, timedelta

from commands.logs.render import level_of
from commands.outage.deps import OutageSources
from commands.outage.models import Finding, Verdict
from commands.status.models import EcsView
from core.errors import ChatOpsError
from core.masking import mask, mask_lines
from core.text import inert, plural
from integrations.aws.cloudwatch_logs import AwsLogs, LogSearch, awslogs_of
from integrations.dns import Lookup, LookupKind

LOG_WINDOW = timedelta(minutes=15)
LOG_SCAN = 2000  # newest lines read per service in the window
TOP_MESSAGES = 2
MESSAGE_MAX = 80
_DIGITS = re.compile(r"\d+")


# -- DNS ----------------------------------------------------------------------------------------
def _lookup_line(found: Lookup) -> str:
    name = inert(found.hostname)
    if found.kind is LookupKind.OK:
        answers = ", ".join(inert(a) for a in found.addresses[:3])
        if len(found.addresses) > 3:
            answers += f" +{len(found.addresses) - 3}"
        via = f" via {inert(found.canonical)}" if found.canonical else ""
        return f"{name} → {answers}{via} ({found.ms:.0f} ms)"
    if found.kind is LookupKind.TIMEOUT:
        return f"{name}: no answer in {found.detail}"
    return f"{name}: {found.kind.value} ({inert(found.detail)}, {found.ms:.0f} ms)"


async def dns(src: OutageSources) -> Finding:
    hostnames = src.outage.hostnames
    if not hostnames:
        return Finding(Verdict.UNAVAILABLE, "not configured: set `[outage] hostnames`")
    # A little under the check's own limit, so a slow resolver is named on the hostname's line.
    found = await asyncio.gather(*(src.dns.resolve(h, src.limit * 0.8) for h in hostnames))
    line = "; ".join(_lookup_line(f) for f in found)
    kinds = {f.kind for f in found}
    if kinds & {LookupKind.NXDOMAIN, LookupKind.NO_ANSWER, LookupKind.FAILED}:
        return Finding(Verdict.FAIL, line)
    if LookupKind.TIMEOUT in kinds:
        return Finding(Verdict.UNKNOWN, line)
    return Finding(Verdict.PASS, line)


# -- ECS ----------------------------------------------------------------------------------------
def _service_line(name: str, view: EcsView | None, error: str | None) -> tuple[str, Verdict]:
    if view is None:
        return f"{inert(name)} unreadable ({inert(error or 'no answer')})", Verdict.UNKNOWN
    state = view.state
    primary = state.primary
    line = f"{inert(name)} {state.running}/{state.desired}"
    if primary is not None and primary.rollout_state == "FAILED":
        return f"{line} *rollout failed*", Verdict.FAIL
    verdict = Verdict.PASS if state.running >= state.desired else Verdict.FAIL
    if state.rolling_out:
        line += " rolling out"
    if state.desired == 0:
        line += " (scaled to 0)"
    return line, verdict


async def ecs(src: OutageSources) -> Finding:
    env = src.env_name
    names = src.config.service_names

    async def one(name: str) -> tuple[EcsView | None, str | None]:
        try:
            return await src.collector.ecs_view(name, env), None
        except ChatOpsError as exc:
            return None, exc.user_message

    found = await asyncio.gather(*(one(n) for n in names))
    lines = [_service_line(n, view, error) for n, (view, error) in zip(names, found, strict=True)]
    verdicts = {v for _, v in lines}
    verdict = (
        Verdict.FAIL
        if Verdict.FAIL in verdicts
        else Verdict.UNKNOWN
        if Verdict.UNKNOWN in verdicts
        else Verdict.PASS
    )
    return Finding(verdict, f"{env}: " + ", ".join(line for line, _ in lines) + " running")


# -- CloudWatch Logs -----------------------------------------------------------------------------
def _message(line: str) -> str:
    """What a line says: a JSON line's `msg`/`message`, else the line."""
    if line.startswith("{"):
        try:
            parsed = json.loads(line)
        except ValueError:
            return line
        if isinstance(parsed, dict):
            text = parsed.get("msg", parsed.get("message"))
            if isinstance(text, str) and text:
                return text
    return line


def _top(errors: list[str]) -> str:
    """The most frequent messages (digits folded, so "after 30000 ms" groups), masked.

    `errors` are masked already, but as raw lines: a JSON escape (Gson's `\\u003d` for `=`)
    hides a secret's shape from that mask and decoding the `msg` shows it, so the decoded
    message is masked again before it is shown."""
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    for line in errors:
        text = " ".join(mask(_message(line)).split())
        key = _DIGITS.sub("#", text)
        counts[key] += 1
        example.setdefault(key, text)
    shown = []
    for key, count in counts.most_common(TOP_MESSAGES):
        text = example[key]
        text = text if len(text) <= MESSAGE_MAX else text[: MESSAGE_MAX - 1] + "…"
        shown.append(f"“{inert(text)}” {plural(count, 'time')}")
    return ", ".join(shown)


LOG_PLACES_KEPT = 64  # task definition ARNs whose awslogs place is remembered


async def _newest(src: OutageSources, where: AwsLogs, end: datetime) -> LogSearch:
    return await src.logs.newest(
        where, src.env.region, start=end - LOG_WINDOW, end=end, grep=None, limit=LOG_SCAN,
        budget=src.limit,
    )  # fmt: skip


async def _place(src: OutageSources, name: str, arn: str) -> AwsLogs:
    """Where `arn`'s container logs: read once per task definition revision (immutable)."""
    if arn not in src.log_places:
        definition = await src.aws.describe_task_definition(src.env.region, arn)
        src.log_places[arn] = awslogs_of(definition, src.config.services[name].container)
        while len(src.log_places) > LOG_PLACES_KEPT:
            src.log_places.pop(next(iter(src.log_places)))
    where = src.log_places[arn]
    if where is None:
        raise ChatOpsError(f"{name} logs with no awslogs group", nothing_changed=False)
    return where


async def _search(src: OutageSources, name: str) -> LogSearch:
    """The newest lines of the service's log group in the window. The group is that of the task
    definition the service runs (DescribeServices, then DescribeTaskDefinition once per
    revision); the group the service's last-seen revision logs to is read meanwhile, and kept
    when the service still runs that revision, so a chain of calls costs one call's time."""
    env, service = src.env, src.config.services[name]
    end = src.clock.now()
    seen = src.log_arns.get(name)
    guess = src.log_places.get(seen) if seen else None
    early = asyncio.create_task(_newest(src, guess, end)) if guess is not None else None
    if early is not None:  # a guess not kept: its outcome, error or not, is not wanted
        early.add_done_callback(lambda t: t.cancelled() or t.exception())
    try:
        state = await src.aws.describe_service(env.region, env.cluster, service.ecs_service)
        arn = state.task_definition_arn
        src.log_arns[name] = arn
        if early is not None and arn == seen:
            return await early
        return await _newest(src, await _place(src, name, arn), end)
    finally:
        if early is not None and not early.done():
            early.cancel()


async def _service_errors(src: OutageSources, name: str) -> tuple[int, bool, list[str]]:
    """(ERROR lines, whether the count is complete, the masked ERROR lines) of one service."""
    search = await _search(src, name)
    masked = mask_lines(e.message for e in reversed(search.events))
    errors = [m for m in masked if level_of(m) == "ERROR"]
    complete = search.complete and len(search.events) < LOG_SCAN
    return len(errors), complete, errors


async def logs(src: OutageSources) -> Finding:
    names = src.config.service_names
    threshold = src.outage.log_error_threshold

    async def one(name: str) -> tuple[str, Verdict]:
        try:
            count, complete, errors = await _service_errors(src, name)
        except ChatOpsError as exc:
            return f"{inert(name)} unreadable ({inert(exc.user_message)})", Verdict.UNKNOWN
        counted = f"{'' if complete else '≥'}{plural(count, 'ERROR', 'ERROR')}"
        line = f"{inert(name)} {counted}" + (f": {_top(errors)}" if errors else "")
        return line, Verdict.FAIL if count > threshold else Verdict.PASS

    found = await asyncio.gather(*(one(n) for n in names))
    verdicts = {v for _, v in found}
    verdict = (
        Verdict.FAIL
        if Verdict.FAIL in verdicts
        else Verdict.UNKNOWN
        if Verdict.UNKNOWN in verdicts
        else Verdict.PASS
    )
    head = f"last 15 min, more than {threshold} ERROR fails: "
    return Finding(verdict, head + "; ".join(line for line, _ in found))
