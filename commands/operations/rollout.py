"""The rollout follower's two sides: ECS as the source, Slack (the card's thread) as the report."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from approvals.models import ApprovalRequest, Result
from approvals.rollout import (
    ReportChannelGoneError,
    RolloutFollower,
    RolloutJob,
    Snapshot,
)
from commands.alarms.render import rollback_button
from commands.operations.task_follow import is_task_job, task_job, task_progress_text
from core.clock import Clock
from core.config import Config
from core.text import duration
from integrations.aws.gateway import AwsGateway
from integrations.aws.models import ServiceState, short
from integrations.slack.errors import CHANNEL_GONE, POST_ANEW, slack_error


def snapshot_of(job: RolloutJob, state: ServiceState) -> Snapshot:
    """Read a rollout off DescribeServices: the deployment of the target task definition."""
    events = [e.message for e in state.events[:3]]
    wanted = short(job.subject["target"])
    if short(state.task_definition_arn) != wanted:
        return Snapshot(
            state="SUPERSEDED",
            running=state.running,
            desired=state.desired,
            pending=state.pending,
            failed=0,
            reason=f"the service now runs {short(state.task_definition_arn)} (rolled back by the "
            "circuit breaker, or replaced by another deploy)",
            events=events,
            current=state.task_definition_arn,
        )
    target = next((d for d in state.deployments if short(d.task_definition) == wanted), None)
    if target is None:  # ECS has not started the new deployment yet
        return Snapshot(
            state="WAITING",
            running=0,
            desired=state.desired,
            pending=0,
            failed=0,
            events=events,
            current=state.task_definition_arn,
        )
    return Snapshot(
        state=target.rollout_state or "IN_PROGRESS",
        running=target.running,
        desired=target.desired,
        pending=target.pending,
        failed=target.failed_tasks,
        reason=target.rollout_state_reason or "",
        events=events,
        current=state.task_definition_arn,
    )


class EcsRolloutSource:
    def __init__(self, aws: AwsGateway) -> None:
        self._aws = aws

    async def snapshot(self, job: RolloutJob) -> Snapshot:
        where = job.subject
        state = await self._aws.describe_service(
            where["region"], where["cluster"], where["ecs_service"]
        )
        return snapshot_of(job, state)

    async def firing_alarms(self, job: RolloutJob) -> list[str]:
        alarms = await self._aws.alarms_in_alarm(job.subject["region"], job.alarms)
        return [a.name for a in alarms if a.state == "ALARM"]


_MARKS = {
    "COMPLETED": ":white_check_mark:",
    "FAILED": ":x:",
    "SUPERSEDED": ":x:",
    "WAITING": ":hourglass_flowing_sand:",
}


def progress_text(job: RolloutJob, snapshot: Snapshot, elapsed: timedelta) -> str:
    if is_task_job(job):
        return task_progress_text(job, snapshot, elapsed)
    mark = _MARKS.get(snapshot.state, ":arrows_counterclockwise:")
    state = snapshot.state.replace("_", " ").lower()
    line = (
        f"{mark} Rollout of {job.label}: {state} · {snapshot.running}/{snapshot.desired} "
        f"running, {snapshot.pending} pending, {snapshot.failed} failed · "
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
        f"*{job.subject['service']}* in *{job.subject['env']}* completed."
    )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    previous = job.subject.get("previous")
    if previous:
        button = rollback_button(job.subject["service"], job.subject["env"], short(previous), alarm)
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


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


def rollout_job(
    request: ApprovalRequest, result: Result, *, alarms: list[str], now: datetime
) -> RolloutJob | None:
    """The job that follows a deploy's or rollback's rollout, from its Result's details (None
    when they do not say where it runs, or the card is not posted)."""
    details = result.details
    needed = ("region", "cluster", "ecs_service", "task_definition_arn")
    if not all(details.get(k) for k in needed) or not request.channel or not request.ts:
        return None
    target = str(details["task_definition_arn"])
    subject = {
        "service": request.service or "",
        "env": request.env,
        "region": str(details["region"]),
        "cluster": str(details["cluster"]),
        "ecs_service": str(details["ecs_service"]),
        "target": target,
    }
    if details.get("previous_task_definition_arn"):
        subject["previous"] = str(details["previous_task_definition_arn"])
    return RolloutJob(
        request_id=request.id,
        subject=subject,
        label=short(target),
        alarms=alarms,
        channel=request.channel,
        card_ts=request.ts,
        started=now,
    )


class FollowRollouts:
    """The flow's `follow` hook for followed Actions (deploy, rollback, run): start the
    follower on the rollout, or on the one-off task the run started."""

    def __init__(self, follower: RolloutFollower, config: Config, clock: Clock) -> None:
        self._follower = follower
        self._config = config
        self._clock = clock

    async def __call__(self, request: ApprovalRequest, result: Result) -> None:
        service = self._config.services.get(request.service or "")
        alarms = list(service.alarms) if service else []
        if result.details.get("task_arn"):
            job = task_job(request, result, now=self._clock.now())
        else:
            job = rollout_job(request, result, alarms=alarms, now=self._clock.now())
        if job is not None:
            await self._follower.start(job)
