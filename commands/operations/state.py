"""lock, unlock, approvals, audit: the commands that read or hold state but change no AWS."""

from __future__ import annotations

from datetime import datetime

from approvals.models import ApprovalRequest, State
from approvals.policy import mention
from commands.operations.card import slack_time
from commands.operations.deps import OperationsDeps
from commands.requests import ApprovalsRequest, AuditRequest, LockRequest, UnlockRequest
from commands.router import CommandRouter, Invocation
from core.text import inert, nothing_changed, plural, words


def scope(service: str, env: str) -> str:
    return f"{service}:{env}"


async def lock(inv: Invocation[OperationsDeps]) -> None:
    request = inv.request
    assert isinstance(request, LockRequest)
    existing = await inv.deps.locks.hold(
        scope(request.service, request.env), request.reason, inv.user_id
    )
    if existing is not None:
        await inv.respond(
            response_type="ephemeral",
            text=f"{request.service} in {request.env} is already locked by {mention(existing.by)} "
            f"since {slack_time(existing.at)}: {inert(existing.reason)}",
        )
        return
    await _audit(inv, "locked", request.service, request.env, request.reason)
    await inv.respond(
        response_type="in_channel",
        text=f":lock: {mention(inv.user_id)} locked *{request.service}* in *{request.env}*: "
        f"{inert(request.reason)}\nRisky commands are refused until `/dhanam unlock "
        f"{request.service} {request.env}` (or they use --break-glass).",
    )


async def unlock(inv: Invocation[OperationsDeps]) -> None:
    request = inv.request
    assert isinstance(request, UnlockRequest)
    released = await inv.deps.locks.release_hold(scope(request.service, request.env))
    if released is None:
        await inv.respond(
            response_type="ephemeral",
            text=nothing_changed(f"{request.service} in {request.env} is not locked"),
        )
        return
    await _audit(inv, "unlocked", request.service, request.env, released.reason)
    await inv.respond(
        response_type="in_channel",
        text=f":unlock: {mention(inv.user_id)} unlocked *{request.service}* in *{request.env}* "
        f"(locked by {mention(released.by)}: {inert(released.reason)}).",
    )


async def _audit(
    inv: Invocation[OperationsDeps], event: str, service: str, env: str, note: str
) -> None:
    await inv.deps.store.audit(
        {
            "event": event,
            "request_id": "",
            "kind": event,
            "title": f"{event} {service} in {env}",
            "env": env,
            "service": service,
            "user": inv.user_id,
            "note": note,
            "at": inv.deps.clock.now().isoformat(),
        }
    )


async def approvals(inv: Invocation[OperationsDeps]) -> None:
    assert isinstance(inv.request, ApprovalsRequest)
    deps = inv.deps
    lines = []
    for request_id in await deps.store.active_ids():
        request = await deps.store.get(request_id)
        if request is None or request.state is not State.PENDING:
            continue
        if request.expired_at(deps.clock.now()):
            continue
        role = await _role(inv, request)
        if role:
            lines.append(_pending_line(request, role))
    if not lines:
        text = "Nothing is waiting for you."
    else:
        text = "*Pending requests you can act on*\n" + "\n".join(lines)
    await inv.respond(response_type="ephemeral", text=text)


async def _role(inv: Invocation[OperationsDeps], request: ApprovalRequest) -> str:
    if request.requester == inv.user_id:
        return "yours: you can cancel it"
    if inv.user_id in request.approvers:
        return ""
    environments = inv.deps.config.environments  # data: a mapping read, no one's parts
    env = environments.get(request.env)
    if env is None:
        return ""
    members = await inv.deps.members.expand(env.approvers)
    return "you can approve or deny" if inv.user_id in members else ""


def _pending_line(request: ApprovalRequest, role: str) -> str:
    where = f"<#{request.channel}>" if request.channel else "its channel"
    return (
        f"• *{request.plan.summary}* — asked by {mention(request.requester)}, "
        f"{len(request.approvals)} of {plural(request.required, 'approval')}, expires "
        f"{slack_time(request.expires_at)} — card in {where} ({role}) `{request.id}`"
    )


async def audit(inv: Invocation[OperationsDeps]) -> None:
    request = inv.request
    assert isinstance(request, AuditRequest)
    entries = await inv.deps.store.recent_audit(request.count)
    if not entries:
        await inv.respond(response_type="ephemeral", text="The audit log is empty.")
        return
    lines = [_audit_line(e) for e in entries]
    await inv.respond(
        response_type="ephemeral",
        text=f"*Last {plural(len(lines), 'audit event')}* (newest first)\n" + "\n".join(lines),
    )


# Audit events whose note is the text a user typed (the lock's reason); other notes are the
# bot's own mrkdwn (e.g. "denied by <@U…>") and are shown as written.
_TYPED_NOTES = frozenset({"locked", "unlocked"})


def _audit_line(entry: dict[str, str]) -> str:
    try:
        when = slack_time(datetime.fromisoformat(entry.get("at", "")))
    except ValueError:
        when = entry.get("at", "?")
    who = mention(entry["user"]) if entry.get("user") else "the bot"
    ref = f" `{entry['request_id']}`" if entry.get("request_id") else ""
    flag = " :rotating_light: break-glass" if entry.get("break_glass") == "1" else ""
    event = entry.get("event", "?")
    note = entry.get("note", "")
    if note and event in _TYPED_NOTES:
        note = inert(note)
    note = f" — {note}" if note else ""
    said = f" “{inert(entry['reason'])}”" if entry.get("reason") else ""
    title = inert(entry.get("title", ""))
    if event == "auto_approved":
        # As the card says it: no one approved it; the environment needs no approval. The
        # stored note ("no approval required") says the same and is not repeated.
        env = entry.get("env")
        why = f" ({inert(env)} needs none)" if env else ""
        return f"• {when} *{words(event)}*{why}: {title}{said}, requested by {who}{ref}{flag}"
    return f"• {when} *{inert(words(event))}* by {who}: {title}{said}{ref}{flag}{note}"


def register(router: CommandRouter, deps: OperationsDeps) -> None:
    router.add("lock", lock, deps)
    router.add("unlock", unlock, deps)
    router.add("approvals", approvals, deps)
    router.add("audit", audit, deps)
