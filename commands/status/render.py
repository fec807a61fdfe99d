"""Block Kit for `/dhanam status` and the App Home: pure functions of the gathered models.

Long: the detail, overview and App Home views share their row, section and size-limit helpers;
all pure functions with no state, split they would import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from approvals.policy import mention
from commands.operations.card import slack_time
from commands.render import (
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    MESSAGE_MAX_BLOCKS,
    SECTION_TEXT_MAX,
    VIEW_MAX_BLOCKS,
    clip,
    more,
    pack_lines,
)
from commands.status.health import MARKS, Health, assess
from core.text import inert, plural, words
from integrations.aws.images import short_digest
from integrations.aws.metrics import AlarmDetail
from integrations.dhanam_api import ApiHealth, Level, level

if TYPE_CHECKING:
    from commands.status.models import Overview, ServiceStatus, Traffic

Block = dict[str, Any]
BARS = "▁▂▃▄▅▆▇█"
EVENTS_SHOWN = 3
ROWS_PER_SECTION = 12  # and at most SECTION_TEXT_MAX characters
_STATE_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}


def _mark(status: str | None) -> str:
    """🟢 for ok, 🟡 for degraded, 🔴 for anything else (no answer included)."""
    return MARKS[_HEALTH_OF[level(status)]]


_HEALTH_OF = {Level.OK: Health.OK, Level.DEGRADED: Health.DEGRADED, Level.DOWN: Health.DOWN}


def sparkline(values: Sequence[float | None]) -> str:
    """One bar per value, scaled between the series' min and max; None (no data) is a space."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    low, high = min(present), max(present)
    span = high - low
    return "".join(
        " " if v is None else BARS[0 if span == 0 else round((v - low) / span * 7)] for v in values
    )


def _section(text: str, block_id: str | None = None) -> Block:
    block: Block = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)},
    }
    if block_id:
        block["block_id"] = block_id
    return block


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _unavailable(what: str, error: str | None) -> str:
    return f"*{what}* unavailable ({error})"


def _ecs_blocks(status: ServiceStatus) -> list[Block]:
    ecs = status.ecs.value
    if ecs is None:
        return [_section(_unavailable("ECS", status.ecs.error))]
    state = ecs.state
    image = f"`{ecs.image_tag or '?'}`" + (f" `{short_digest(ecs.digest)}`" if ecs.digest else "")
    fields = [
        f"*Task definition*\n`{ecs.revision}`",
        f"*Image*\n{image}",
        f"*Tasks*\nrunning {state.running} · pending {state.pending} · desired {state.desired}",
        f"*ECS service*\n{state.name} in {state.cluster}",
    ]
    lines = ["*Deployments*"]
    for d in state.deployments:
        revision = d.task_definition.rsplit("/", 1)[-1]
        failed = f" · {d.failed_tasks} failed tasks" if d.failed_tasks else ""
        lines.append(
            f"• {d.status.lower()} `{revision}` — "
            f"{words(d.rollout_state).lower() if d.rollout_state else 'no rollout state'} · "
            f"{d.running}/{d.desired} running{failed}"
        )
    lines.append("*Recent events*")
    events = [
        f"• {slack_time(e.at) if e.at else '—'} {e.message}" for e in state.events[:EVENTS_SHOWN]
    ]
    lines.extend(events or ["• none"])
    return [
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": clip(f, FIELD_TEXT_MAX)} for f in fields],
        },
        _section("\n".join(lines)),
    ]


def _alarm_lines(status: ServiceStatus) -> str:
    if status.alarms.value is None:
        return _unavailable("Alarms", status.alarms.error)
    if not status.alarms.value and not status.unscoped and not status.elsewhere:
        return f"*Alarms*\nnone configured (services.{status.service}.alarms)"
    lines = ["*Alarms*"]
    lines += [_alarm_line(a) for a in sorted(status.alarms.value, key=_alarm_order)]
    if not status.alarms.value:
        others = f" ({status.elsewhere} watch other environments)" if status.elsewhere else ""
        lines.append(f"none that watch {status.env}{others}")
    if status.unscoped:
        # Not counted in this environment's health: the config does not say whose they are.
        lines.append(
            "*Unscoped alarms* (no environment lists them and their dimensions do not say; "
            f"set `environments.{status.env}.alarms` to count them here)"
        )
        lines += [_alarm_line(a) for a in sorted(status.unscoped, key=_alarm_order)]
    return "\n".join(lines)


def _alarm_order(alarm: AlarmDetail) -> int:
    return _STATE_ORDER.get(alarm.state, 1)


def _alarm_line(alarm: AlarmDetail) -> str:
    mark = {"ALARM": ":red_circle:", "OK": ":large_green_circle:"}.get(
        alarm.state, ":grey_question:"
    )
    since = f" since {slack_time(alarm.updated)}" if alarm.updated else ""
    reason = f" — {alarm.reason}" if alarm.state == "ALARM" and alarm.reason else ""
    return f"• {mark} `{alarm.name}` *{words(alarm.state)}*{since}{reason}"


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _series(traffic: Traffic, values: Any, fill: float | None) -> list[float | None]:
    points: list[float | None] = [fill] * traffic.points
    if values is None:
        return points
    for at, value in zip(values.timestamps, values.values, strict=True):
        index = round((at - traffic.start).total_seconds() / traffic.period)
        if 0 <= index < traffic.points:
            points[index] = value
    return points


def _traffic_lines(status: ServiceStatus) -> str:
    source = status.traffic
    if source is None:
        return ""
    traffic = source.value
    if traffic is None:
        return _unavailable("Load balancer metrics", source.error)
    minutes = traffic.points * traffic.period // 60
    if traffic.load_balancer is None:
        return f"*Load balancer, last {minutes} min*\nno alarm of {status.service} names one"
    lines = [f"*Load balancer, last {minutes} min* (`{traffic.load_balancer}`)"]
    for label, series, fill, fmt in (
        ("5xx", traffic.errors, 0.0, lambda v: f"{v:g}"),
        ("latency", traffic.latency, None, _seconds),
    ):
        points = _series(traffic, series, fill)
        present = [p for p in points if p is not None]
        if series is None or not series.values:
            lines.append(f"{label} no datapoints")
            continue
        # The label outside the code span: only the sparkline is monospace, nothing padded.
        lines.append(
            f"{label} `{sparkline(points)}` min {fmt(min(present))} · max {fmt(max(present))}"
        )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "—"


def api_lines(api: ApiHealth | None, env: str) -> str:
    if api is None:
        return f"*API health*\nno api_base_url configured for {env}"
    lines = [f"*API health* {api.base_url}"]
    health, database, providers = api.health, api.database, api.providers
    for probe in (health, database, providers):
        if probe.body is None:
            lines.append(f"• :red_circle: `{probe.endpoint.value}` unavailable ({probe.error})")
    if health.body is not None:
        version = f" · {health.body.version}" if health.body.version else ""
        lines.append(
            f"• {_mark(health.body.status)} `/health` {health.body.status}{version} · "
            f"{_ms(health.latency_ms)}"
        )
    if database.body is not None:
        db = database.body
        of_max = f"/{db.max_connections}" if db.max_connections else ""
        conns = f" · {db.connections}{of_max} connections"
        qps = f" · {db.queries_per_second:g} queries/s" if db.queries_per_second is not None else ""
        lines.append(
            f"• {_mark(db.status)} `/health/database` {db.status}"
            f"{conns if db.connections is not None else ''}{qps} · {_ms(database.latency_ms)}"
        )
    if providers.body is not None:
        each = " · ".join(
            f"{_mark(p.status)} {name} {p.status}"
            + (f" ({_ms(p.latency_ms)})" if p.latency_ms is not None else "")
            + (f" — {p.error}" if p.error else "")
            for name, p in providers.body.providers.items()
        )
        lines.append(f"• `/health/providers` {_ms(providers.latency_ms)}: {each or 'none listed'}")
    return "\n".join(lines)


def _deploy_line(status: ServiceStatus) -> str:
    source = status.last_deploy
    if source is None:
        return ""
    if source.error is not None:
        return _unavailable("Last deploy", source.error)
    record = source.value
    if record is None:
        return "*Last deploy*\nnone recorded by the bot"
    what = record.tag or record.new_image.rsplit("/", 1)[-1]
    previous = record.previous_task_definition.rsplit("/", 1)[-1]
    new = record.new_task_definition.rsplit("/", 1)[-1]
    who = mention(record.requested_by) if record.requested_by else "someone"
    approved = ", ".join(mention(u) for u in record.approved_by) or "no one (none required)"
    return (
        f"*Last deploy*\n{record.kind} to `{what}` (`{previous}` → `{new}`) by {who}, "
        f"approved by {approved}, {slack_time(record.at)}"
    )


def _governance_lines(status: ServiceStatus) -> str:
    lines = ["*Approvals and locks*"]
    if status.pending.value is None:
        lines.append(f"• pending approvals unavailable ({status.pending.error})")
    for r in status.pending.value or []:
        lines.append(
            f"• :hourglass_flowing_sand: {r.plan.summary} — asked by {mention(r.requester)}, "
            f"{len(r.approvals)} of {plural(r.required, 'approval')}, expires "
            f"{slack_time(r.expires_at)} "
            f"`{r.id}`"
        )
    if status.hold.error is not None:
        lines.append(f"• lock unavailable ({status.hold.error})")
    elif status.hold.value is not None:
        hold = status.hold.value
        lines.append(
            f"• :lock: locked by {mention(hold.by)} since {slack_time(hold.at)}: "
            f"{inert(hold.reason)}"
        )
    return "\n".join(lines if len(lines) > 1 else [*lines, "• no pending approvals, no lock"])


def detail_blocks(status: ServiceStatus, slash: str) -> tuple[str, list[Block]]:
    health, reasons = assess(status)
    why = "; ".join(reasons) if reasons else "all clear"
    title = f"{status.service} in {status.env}"
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f"Status: {title}", HEADER_TEXT_MAX)},
        },
        _section(f"{MARKS[health]} *{health.value}* — {why}"),
        *_ecs_blocks(status),
        _section(_alarm_lines(status)),
    ]
    extra = [_traffic_lines(status), api_lines(status.api, status.env), _deploy_line(status)]
    blocks += [_section(text) for text in extra if text]
    blocks.append(_section(_governance_lines(status)))
    blocks.append(
        _context(
            f"Only you can see this · gathered in {status.ms:.0f} ms · "
            f"`{slash} status` for every service"
        )
    )
    return f"{title}: {health.value} — {why}", blocks


def row_line(status: ServiceStatus) -> str:
    health, reasons = assess(status)
    ecs = status.ecs.value
    facts = ""
    if ecs is not None:
        facts = (
            f" · `{ecs.revision}` {ecs.image_tag or ''} · "
            f"{ecs.state.running}/{ecs.state.desired} running"
        )
    if status.hold.value is not None:
        facts += " · :lock: locked"
    if status.pending.value:
        facts += f" · {plural(len(status.pending.value), 'pending approval')}"
    why = "; ".join(reasons)
    return (
        f"{MARKS[health]} *{status.service}* in *{status.env}* — {health.value}"
        f"{f' ({why})' if why else ''}{facts}"
    )


def _overview_sections(overview: Overview, max_blocks: int) -> list[Block]:
    """One line per service and environment, ROWS_PER_SECTION to a section, within the
    surface's block budget (``max_blocks`` includes a "…and N more" line when one is needed)."""
    lines = [row_line(row) for row in overview.rows] or ["no service matches"]
    texts, hidden = pack_lines(lines, max_chunks=max_blocks - 1, max_lines=ROWS_PER_SECTION)
    blocks = [_section(text) for text in texts]
    if hidden:
        blocks.append(_context(f"{more(hidden)} — `status SERVICE [ENV]` narrows it"))
    return blocks


def _counts(overview: Overview) -> str:
    marks = [assess(row)[0] for row in overview.rows]
    return ", ".join(f"{marks.count(h)} {h.value}" for h in Health if marks.count(h))


def overview_blocks(
    overview: Overview, slash: str, title: str = "every service"
) -> tuple[str, list[Block]]:
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(f"Status: {title}", HEADER_TEXT_MAX)},
        },
        *_overview_sections(overview, MESSAGE_MAX_BLOCKS - 2),
        _context(
            f"Only you can see this · gathered in {overview.ms:.0f} ms · "
            f"`{slash} status SERVICE ENV` for the details"
        ),
    ]
    return f"Status: {_counts(overview) or 'no service matches'}", blocks


def home_view(overview: Overview, slash: str, now: datetime) -> dict[str, Any]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Dhanam: every service"}},
        *_overview_sections(overview, VIEW_MAX_BLOCKS - 2),
        _context(
            f"Updated {slack_time(now)} (each time you open this tab) · "
            f"`{slash} status SERVICE ENV` for the details"
        ),
    ]
    return {"type": "home", "blocks": blocks}
