"""Block Kit for `/dhanam dr status`: pure functions of the readiness read (no I/O).

One line per fact, each with its mark: ✓ ready, ✗ a problem, ? unknown (the source could not be
read, or said nothing to judge by). A source's error is shown on its own line; the rest still are.
"""

from __future__ import annotations

from typing import Any

from commands.operations.card import slack_time
from commands.render import HEADER_TEXT_MAX, MESSAGE_MAX_BLOCKS, clip, more, pack_lines
from core.config import DrConfig
from core.sources import Reading
from core.text import duration, inert, plural
from integrations.aws.dr_models import (
    AVAILABLE,
    DrDatabase,
    DrReadiness,
    DrRecord,
    DrService,
    Mark,
    database_mark,
    record_mark,
    service_mark,
)
from integrations.aws.dr_steps import activation_steps

Block = dict[str, Any]
MARKS = {Mark.OK: "✓", Mark.BAD: "✗", Mark.UNKNOWN: "?"}
VERDICTS = {Mark.OK: "ready", Mark.BAD: "not ready", Mark.UNKNOWN: "readiness unknown"}
NOT_CONFIGURED = (
    "Disaster recovery is not configured. Add a `[dr]` table to the bot's config: `region`, "
    "`cluster`, `db_instance` (a cross-region read replica) or `automated_backup_arn`, "
    "`rpo_seconds`, `rto_seconds`, and optionally `route53_zone_id`, `record_name` and "
    "`target` for the failover record (docs/configuration.md)."
)
_SECTIONS = MESSAGE_MAX_BLOCKS - 5  # header, verdict, "…and N more", steps and context


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _code(value: str) -> str:
    return f"`{inert(value)}`"


def not_configured_blocks() -> tuple[str, list[Block]]:
    return NOT_CONFIGURED, [_section(NOT_CONFIGURED)]


def database_line(reading: Reading[DrDatabase], dr: DrConfig) -> str:
    mark = MARKS[database_mark(reading)]
    db = reading.value
    if dr.db_instance is not None:
        head = f"{mark} *Replica* {_code(dr.db_instance)} ({inert(dr.region)})"
    else:
        head = f"{mark} *Replicated backups* {_code(str(dr.automated_backup_arn))}"
    if db is None:
        return f"{head}: unavailable ({inert(reading.error or 'no answer')})"
    if not db.found:
        return f"{head}: " + (
            "no replicated backups found" if db.kind == "backups" else f"not found in {dr.region}"
        )
    if db.kind == "backups":
        newest = slack_time(db.latest_restorable) if db.latest_restorable else "unknown"
        status = f"{inert(db.status)}, " if db.status else ""
        return f"{head}: {status}newest restorable time {newest}"
    status = inert(db.status or "status unknown")
    if db.status != AVAILABLE:
        status += " (not available)"
    if db.source is None:
        return (
            f"{head}: {status}, not replicating (no source instance: promoted, or never a replica)"
        )
    return f"{head}: {status}, replicating from {_code(db.source)}"


def rpo_line(readiness: DrReadiness) -> str:
    rpo = readiness.rpo
    target = duration(rpo.target)
    if rpo.behind is None:
        return f"{MARKS[rpo.mark]} *RPO* unknown — {inert(rpo.why)}; target {target}"
    judged = f"within the {target} target" if rpo.mark is Mark.OK else f"over the {target} target"
    return f"{MARKS[rpo.mark]} *RPO* {duration(rpo.behind)} ({inert(rpo.why)}) — {judged}"


def service_line(name: str, reading: Reading[DrService], cluster: str) -> str:
    mark = MARKS[service_mark(reading)]
    service = reading.value
    if service is None:
        return f"{mark} *{inert(name)}*: unavailable ({inert(reading.error or 'no answer')})"
    head = f"{mark} *{inert(name)}* {_code(service.ecs_service)}"
    if service.dr is None:
        return f"{head}: missing from {_code(cluster)}"
    dr = service.dr
    image = _code(str(dr.image)) if dr.image else "no image"
    line = f"{head}: {dr.running}/{dr.desired} running, {_code(dr.task_definition)} runs {image}"
    prod = service.production
    if prod.value is None:
        return f"{line}; production unreadable ({inert(prod.error or 'no answer')})"
    theirs = _code(str(prod.value.image)) if prod.value.image else "no image"
    count = plural(prod.value.desired, "task")
    if service.image_matches:
        return f"{line} — the same as production ({count})"
    return f"{line} — production runs {theirs} ({count})"


def record_line(reading: Reading[DrRecord] | None, dr: DrConfig) -> str:
    if reading is None:
        return "• *Failover record*: not configured (`route53_zone_id`, `record_name`, `target`)"
    mark = MARKS[record_mark(reading)]
    head = f"{mark} *Failover record* {_code(str(dr.record_name))}"
    record = reading.value
    if record is None:
        return f"{head}: unavailable ({inert(reading.error or 'no answer')})"
    if not record.found:
        return f"{head}: not found in zone {_code(record.zone_id)}"
    points = ", ".join(_code(v) for v in record.values) or "nothing"
    if record.points_at_dr:
        return f"{head} ({inert(record.type or '')}) → {points}: the DR target (failed over)"
    return f"{head} ({inert(record.type or '')}) → {points}; DR target {_code(record.target)}"


def steps_text(readiness: DrReadiness, slash: str) -> str:
    steps = activation_steps(readiness)
    rto = duration(readiness.rto)
    if not steps:
        return f"*Activation*: nothing left to do (RTO {rto})"
    numbered = "\n".join(f"{i}. {inert(step)}" for i, step in enumerate(steps, 1))
    return (
        f"*Activation* (`{inert(slash)} dr activate`) has {plural(len(steps), 'step')} left, "
        f"against an RTO of {rto}:\n{numbered}"
    )


def summary_line(readiness: DrReadiness) -> str:
    """The readiness in one line (for the sev1 checklist's DR step): the verdict, what is not
    OK, and the steps left against the RTO."""
    mark = readiness.mark
    head = f"{MARKS[mark]} DR in {readiness.region}: {VERDICTS[mark]}"
    problems = [f"{MARKS[m]} {name}" for name, m in readiness.problems]
    steps = plural(len(activation_steps(readiness)), "step")
    tail = f"{steps} left, RTO {duration(readiness.rto)}"
    return inert(f"{head} ({', '.join(problems)}) · {tail}" if problems else f"{head} · {tail}")


def readiness_blocks(readiness: DrReadiness, dr: DrConfig, slash: str) -> tuple[str, list[Block]]:
    mark = readiness.mark
    verdict = f"{MARKS[mark]} DR in {readiness.region}: {VERDICTS[mark]}"
    lines = [database_line(readiness.database, dr), rpo_line(readiness)]
    lines += [
        service_line(name, reading, readiness.cluster)
        for name, reading in readiness.services.items()
    ]
    lines.append(record_line(readiness.record, dr))
    chunks, hidden = pack_lines(lines, max_chunks=_SECTIONS)
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": clip(f"Disaster recovery: {dr.region} · {dr.cluster}", HEADER_TEXT_MAX),
            },
        },
        _section(f"*{inert(verdict)}*"),
        *(_section(chunk) for chunk in chunks),
    ]
    if hidden:
        blocks.append(_context(more(hidden)))
    blocks.append(_section(clip(steps_text(readiness, slash), 3000)))
    blocks.append(
        _context(
            f"checked {slack_time(readiness.checked_at)} in {readiness.ms:g} ms · "
            f"RPO target {duration(readiness.rpo.target)} · RTO {duration(readiness.rto)}"
        )
    )
    text = "\n".join([verdict, *lines])
    return clip(text, 3000), blocks
