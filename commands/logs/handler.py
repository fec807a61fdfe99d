"""`/dhanam logs SERVICE ENV [--since] [--grep] [--limit]`: find the log group, read, reply.

Read-only, no approval. Where the reply goes: an ephemeral reply to whoever asked when every
line fits inline. When the full text must go up as a file, the file is posted in the channel
the command came from (a file cannot be ephemeral), with a comment saying who asked and for
what; the person still gets the inline part ephemerally, with a note pointing at the file. If
the bot may not post there (not_in_channel, a DM it is not part of…), the ephemeral reply says
so and keeps the inline part.

Every failure is an ephemeral reply naming it (AccessDenied, log group not found, throttled,
no answer in time, no awslogs configuration), within the budget of LogsDeps.budget. When Slack
refuses the reply itself (its response_url answers an error, or cannot be reached), a
text-only reply says what was found and what Slack said, so the person is never left with
nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError, SlackClientError

from commands.logs.deps import LogsDeps
from commands.logs.render import LogsReply, logs_reply
from commands.render import Block
from commands.requests import LogsRequest
from commands.router import CommandRouter, Invocation
from core.errors import ChatOpsError
from core.text import inert
from integrations.aws.cloudwatch_logs import AwsLogs, awslogs_of
from integrations.aws.errors import AwsError
from integrations.aws.models import short

log = structlog.get_logger(__name__)
_SLACK_ERROR = re.compile(r"[a-z_]{1,80}")  # `invalid_blocks`, not an HTML error page
_THROTTLED = ("Throttling", "ThrottlingException", "LimitExceededException", "TooManyRequests")


def _refused(what: str, detail: str) -> ChatOpsError:
    return ChatOpsError(f"Could not read {what}: {detail}", nothing_changed=False)


async def _where(inv: Invocation[LogsDeps], request: LogsRequest, budget: float) -> AwsLogs:
    """The service's awslogs group, from its current task definition."""
    config, aws = inv.deps.config, inv.deps.aws
    env = config.environments[request.env]
    service = config.services[request.service]
    what = f"{request.service}'s logs in {request.env}"
    try:
        state = await asyncio.wait_for(
            aws.describe_service(env.region, env.cluster, service.ecs_service), budget
        )
        definition = await asyncio.wait_for(
            aws.describe_task_definition(env.region, state.task_definition_arn), budget
        )
    except TimeoutError:
        raise _refused(what, f"ECS did not answer within {budget:g} s") from None
    except AwsError as exc:
        raise _refused(what, exc.user_message) from exc
    found = awslogs_of(definition, service.container)
    if found is None:
        revision = short(state.task_definition_arn)
        raise _refused(
            what,
            f"no CloudWatch log group is configured: container `{inert(service.container)}` "
            f"of `{inert(revision)}` does not log with the awslogs driver (its "
            "logConfiguration names no awslogs-group)",
        )
    return found


def _cloudwatch_error(exc: AwsError, logs: AwsLogs, region: str) -> str:
    group = f"`{inert(logs.group)}`"
    if exc.code == "ResourceNotFoundException":
        return (
            f"log group {group} not found in {logs.region or region} (the task definition names it)"
        )
    if exc.code.startswith("AccessDenied"):
        return f"{exc.user_message} (the bot needs logs:FilterLogEvents on {group})"
    if exc.code in _THROTTLED:
        return f"CloudWatch Logs is throttling the bot ({exc.code}); try again in a minute"
    return exc.user_message


async def logs(inv: Invocation[LogsDeps]) -> None:
    """Ack was sent by the router; find, read, render, reply (see the module doc)."""
    request = inv.request
    assert isinstance(request, LogsRequest)
    deps = inv.deps
    started = time.monotonic()
    budget = deps.budget
    end = deps.clock.now()
    start = end - request.since if isinstance(request.since, timedelta) else request.since
    if start >= end:
        raise ChatOpsError(
            f"--since {start:%Y-%m-%d %H:%M} UTC is not in the past", nothing_changed=False
        )
    region = deps.config.environments[request.env].region
    where = await _where(inv, request, deps.config.status.source_timeout_seconds)
    left = max(0.1, budget - (time.monotonic() - started))
    try:
        search = await deps.reader.newest(
            where, region, start=start, end=end, grep=request.grep, limit=request.limit, budget=left
        )
    except AwsError as exc:
        what = f"{request.service}'s logs in {request.env}"
        raise _refused(what, _cloudwatch_error(exc, where, region)) from exc
    reply = logs_reply(request, search, where, region, start=start, end=end)
    log.info(
        "logs.read",
        service=request.service,
        env=request.env,
        lines=len(search.events),
        pages=search.pages,
        complete=search.complete,
        file=reply.file is not None,
    )
    blocks = reply.blocks
    note = ""
    if reply.file is not None:
        note = await _upload(inv, reply)
        blocks = [*blocks, _context(note)]
    await _reply(inv, reply.text, blocks, note)


async def _reply(inv: Invocation[LogsDeps], text: str, blocks: list[Block], note: str) -> None:
    """The reply with its blocks; text only when Slack refuses them (see the module doc).
    `note`: what was said about the file, repeated in the text-only reply."""
    try:
        answer = await inv.respond(response_type="ephemeral", text=text, blocks=blocks)
        if answer.status_code == 200:
            return
        body = (answer.body or "").strip()
        error = body if _SLACK_ERROR.fullmatch(body) else f"HTTP {answer.status_code}"
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
        error = type(exc).__name__
    log.warning("logs.reply_refused", error=error, blocks=len(blocks))
    await inv.respond(
        response_type="ephemeral",
        text=(
            f"{text}. Slack refused the formatted reply (`{inert(error)}`), so the lines "
            "are not shown here: try a shorter --grep or a smaller --limit."
            + (f" {note}" if note else "")
        ),
    )


async def _upload(inv: Invocation[LogsDeps], reply: LogsReply) -> str:
    """Post the file in the command's channel; what the person is told about it."""
    assert reply.file is not None
    lines = reply.file.content.count("\n")
    comment = f"<@{inv.user_id}> asked for these logs: {reply.text}."
    try:
        await inv.client.files_upload_v2(
            channel=inv.channel_id,
            content=reply.file.content,
            filename=reply.file.filename,
            title=reply.file.title,
            initial_comment=comment,
        )
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        log.warning("logs.upload_refused", error=error, channel=inv.channel_id)
        return (
            f"I could not post the full text ({lines} lines) as a file in this channel "
            f"(Slack said `{inert(error)}`): invite me to the channel, or ask in one I am in. "
            "The newest lines are above."
        )
    except SlackClientError as exc:
        log.warning("logs.upload_failed", error=type(exc).__name__, channel=inv.channel_id)
        return f"I could not upload the full text ({lines} lines) as a file: {type(exc).__name__}."
    return f"The full text ({lines} lines, secrets masked) is in the file I posted in this channel."


def _context(text: str) -> dict[str, object]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def register(router: CommandRouter, deps: LogsDeps) -> None:
    router.add("logs", logs, deps)
