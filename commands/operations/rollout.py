"""The rollout follower's two sides: ECS as the source, Slack (the card's thread) as the report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from approvals.rollout import ReportChannelGoneError, RolloutJob, Snapshot, duration, short
from commands.alarms.render import rollback_button
from integrations.aws.gateway import AwsGateway
from integrations.aws.models import ServiceState


def snapshot_of(job: RolloutJob, state: ServiceState) -> Snapshot:
    """Read a rollout off DescribeServices: the deployment of the target task definition."""
    events = [e.message for e in state.events[:3]]
    if short(state.task_definition_arn) != short(job.target):
        return Snapshot(
            state="SUPERSEDED",
            running=state.running,
            desired=state.desired,
            pending=state.pending,
            failed_tasks=0,
            reason=f"the service now runs {short(state.task_definition_arn)} (rolled back by the "
            "circuit breaker, or replaced by another deploy)",
            events=events,
            service_task_definition=state.task_definition_arn,
        )
    target = next(
        (d for d in state.deployments if short(d.task_definition) == short(job.target)), None
    )
    if target is None:  # ECS has not started the new deployment yet
        return Snapshot(
            state="WAITING",
            running=0,
            desired=state.desired,
            pending=0,
            failed_tasks=0,
            events=events,
            service_task_definition=state.task_definition_arn,
        )
    return Snapshot(
        state=target.rollout_state or "IN_PROGRESS",
        running=target.running,
        desired=target.desired,
        pending=target.pending,
        failed_tasks=target.failed_tasks,
        reason=target.rollout_state_reason or "",
        events=events,
        service_task_definition=state.task_definition_arn,
    )


class EcsRolloutSource:
    def __init__(self, aws: AwsGateway) -> None:
        self._aws = aws

    async def snapshot(self, job: RolloutJob) -> Snapshot:
        state = await self._aws.describe_service(job.region, job.cluster, job.ecs_service)
        return snapshot_of(job, state)

    async def firing_alarms(self, job: RolloutJob) -> list[str]:
        alarms = await self._aws.alarms_in_alarm(job.region, job.alarms)
        return [a.name for a in alarms if a.state == "ALARM"]


_MARKS = {
    "COMPLETED": ":white_check_mark:",
    "FAILED": ":x:",
    "SUPERSEDED": ":x:",
    "WAITING": ":hourglass_flowing_sand:",
}


def progress_text(job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str:
    mark = _MARKS.get(snapshot.state, ":arrows_counterclockwise:")
    state = snapshot.state.replace("_", " ").lower()
    line = (
        f"{mark} Rollout of {short(job.target)}: {state} · {snapshot.running}/{snapshot.desired} "
        f"running, {snapshot.pending} pending, {snapshot.failed_tasks} failed · "
        f"{duration(elapsed)}"
    )
    if snapshot.reason:
        line += f"\n{snapshot.reason}"
    if snapshot.events:
        line += "\n" + "\n".join(f"> {event}" for event in snapshot.events)
    return line


def rollback_blocks(job: RolloutJob, alarm: str, since: timedelta) -> list[dict[str, Any]]:
    text = (
        f":rotating_light: *{alarm}* went to ALARM {duration(since)} after this deploy of "
        f"*{job.service}* in *{job.env}* completed."
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if job.previous:
        button = rollback_button(job.service, job.env, short(job.previous), alarm)
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


# Slack refusals that mean the channel cannot be written to any more: the follow ends.
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found", "not_in_channel", "access_denied"})
# Refusals of an edit that a new message fixes: the progress message was deleted or is stale.
POST_ANEW = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def slack_error(exc: SlackApiError) -> str:
    response = exc.response
    try:
        return str(response.get("error") or "")
    except AttributeError:
        return ""


class SlackRolloutReporter:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def progress(self, job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str:
        """Edit the progress message; post it anew when it was deleted (the new ts is returned
        and remembered by the follower). ReportChannelGoneError when the channel is archived or
        gone; any other Slack error is raised as is (the follower logs it and carries on)."""
        text = progress_text(job, snapshot, elapsed)
        try:
            if job.progress_ts:
                try:
                    await self._client.chat_update(
                        channel=job.channel, ts=job.progress_ts, text=text
                    )
                except SlackApiError as exc:
                    if slack_error(exc) not in POST_ANEW:
                        raise
                else:
                    return job.progress_ts
            response = await self._client.chat_postMessage(
                channel=job.channel, thread_ts=job.card_ts, text=text, unfurl_links=False
            )
            return str(response["ts"])
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in CHANNEL_GONE:
                raise ReportChannelGoneError(error) from exc
            raise

    async def alarm_after_deploy(self, job: RolloutJob, alarm: str, since: timedelta) -> None:
        blocks = rollback_blocks(job, alarm, since)
        try:
            await self._client.chat_postMessage(
                channel=job.channel,
                thread_ts=job.card_ts,
                text=f"{alarm} went to ALARM after this deploy",
                blocks=blocks,
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in CHANNEL_GONE:
                raise ReportChannelGoneError(error) from exc
            raise
