"""Everything the bot talks to, on this machine, plus the bot itself on a real HTTP port.

The sandbox console and the scenario tests both drive the bot through this: requests are signed
exactly as Slack signs them and sent to `POST /slack/events`; the bot's Web API calls land in the
Slack emulator; AWS is moto in server mode; Redis is a real redis-server when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from approvals.flow import ApprovalFlow
from bot.app import DEPS, create_app
from bot.wiring import Overrides
from core.clock import Clock, SystemClock
from core.config import Config, load_config
from core.settings import LogFormat, Settings
from examples import EXAMPLE_CONFIG
from sandbox.aws_world import (
    SANDBOX_AWS_ACCESS_KEY_ID,
    SANDBOX_AWS_SECRET_ACCESS_KEY,
    DhanamWorld,
    MotoServer,
    complete_rollouts,
    seed_dhanam_world,
    set_alarm_state,
)
from sandbox.ecs_tasks import TaskRunner
from sandbox.fake_dhanam_api import FakeDhanamApi, pointed_at
from sandbox.fake_pagerduty import SANDBOX_PD_TOKEN, FakePagerDuty
from sandbox.outage_world import OutageStandIns, start_outage
from sandbox.redis_server import FakeRedisServer, RedisServer, find_redis_server
from sandbox.signing import block_actions_body, sign, slash_command_body
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN, SlackEmulator
from sandbox.slack_emulator_models import EmuMessage
from sandbox.sns_signer import SnsSigner

SANDBOX_SIGNING_SECRET = "sandbox-signing-secret-0123456789"  # noqa: S105 - public fake

# The sandbox's people (README.md, "The sandbox"): alice may request, bob and carol approve in
# production, dave may not approve.
USERS: dict[str, str] = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE"}

# The fake PagerDuty's integration key (32 characters, as PagerDuty's are) and webhook secret.
SANDBOX_PD_ROUTING_KEY = "R0SANDBOXDHANAMROUTINGKEY0000001"
SANDBOX_PD_WEBHOOK_SECRET = "sandbox-pagerduty-webhook-secret"  # noqa: S105 - public fake

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Reply:
    """What the bot answered on the HTTP request itself (the ack)."""

    status: int
    body: Any

    @property
    def text(self) -> str:
        return str(self.body.get("text", "")) if isinstance(self.body, dict) else str(self.body)

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.body.get("blocks") if isinstance(self.body, dict) else None
        return list(blocks or [])


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    block_id: str
    value: str
    confirm: dict[str, Any] | None = None


def buttons_of(blocks: list[dict[str, Any]]) -> list[Button]:
    """Every button in a message, in reading order."""
    found: list[Button] = []
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            elements.append(accessory)
        for element in elements:
            if element.get("type") != "button":
                continue
            found.append(
                Button(
                    label=str(element.get("text", {}).get("text", "")),
                    action_id=str(element.get("action_id", "")),
                    block_id=str(block.get("block_id", "")),
                    value=str(element.get("value", "")),
                    confirm=element.get("confirm"),
                )
            )
    return found


@dataclass
class SandboxWorld:
    config_path: Path = EXAMPLE_CONFIG
    redis_url: str | None = None  # None: start a redis-server (or the in-process stand-in)
    redis_cluster: bool = False  # redis_url names a node of a Redis Cluster
    aws: bool = True  # start moto seeded with the Dhanam world
    aws_endpoint_url: str | None = None  # or use an already running moto
    clock: Clock = field(default_factory=SystemClock)
    signing_secret: str = SANDBOX_SIGNING_SECRET
    log_format: LogFormat = LogFormat.CONSOLE
    replicas: int = 1  # bot processes' worth of apps sharing Redis and the Slack emulator
    advance_rollouts_after: float | None = None  # seconds: moto never completes a rollout
    # seconds a one-off task runs (PENDING → RUNNING → STOPPED, writing its log): moto runs no
    # containers, so `tasks` (sandbox.ecs_tasks.TaskRunner) does what ECS would. None: not run.
    task_seconds: float | None = None
    # service -> task: `before_deploy` switched on for the run (the console turns api's migrate
    # on, so a deploy shows its release step; the example config leaves it off).
    before_deploy: dict[str, str] = field(default_factory=dict)
    overrides: Overrides | None = None
    slack_factory: Callable[[], SlackEmulator] = SlackEmulator.dhanam_defaults
    # Start the fake Dhanam API (health endpoints) and point every environment's api_base_url
    # at it, one prefix per environment (`/production/health`): the console does.
    dhanam_api: bool = False
    # PAGERDUTY_WEBHOOK_SECRET (comma-separated during a rotation; the fake signs with the first)
    pagerduty_webhook_secret: str = SANDBOX_PD_WEBHOOK_SECRET

    slack: SlackEmulator = field(init=False)
    config: Config = field(init=False)
    app: web.Application = field(init=False)
    apps: list[web.Application] = field(init=False, default_factory=list)
    bot_url: str = field(init=False, default="")
    bot_urls: list[str] = field(init=False, default_factory=list)
    world: DhanamWorld | None = field(init=False, default=None)
    api: FakeDhanamApi | None = field(init=False, default=None)  # when dhanam_api
    pagerduty: FakePagerDuty = field(init=False)
    redis_kind: str = field(init=False, default="external")
    tasks: TaskRunner | None = field(init=False, default=None)  # when task_seconds
    # the sev1 checklist's DNS and AWS Health stand-ins (sandbox/outage_world.py)
    outage: OutageStandIns = field(init=False, default_factory=OutageStandIns)

    def __post_init__(self) -> None:
        self._redis: RedisServer | FakeRedisServer | None = None
        self._moto: MotoServer | None = None
        self._runners: list[web.AppRunner] = []
        self._driver: asyncio.Task[None] | None = None
        self._task_driver: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tmp = Path(tempfile.mkdtemp(prefix="dhanam-sandbox-"))
        self.sns = SnsSigner(self._tmp / "sns-certs")
        self._alarm_states: dict[str, str] = {}  # the seeded alarms start OK
        self._lingering: set[asyncio.Future[Any]] = set()  # settle_within's waits past its limit

    async def start(self) -> None:
        if self.redis_url is None:
            self._redis = RedisServer() if find_redis_server() else FakeRedisServer()
            self.redis_kind = (
                "redis-server" if isinstance(self._redis, RedisServer) else "fakeredis"
            )
            await asyncio.to_thread(self._redis.start)
            self.redis_url = self._redis.url
        if self.aws and self.aws_endpoint_url is None:
            self._moto = MotoServer()
            await asyncio.to_thread(self._moto.start)
            self.aws_endpoint_url = self._moto.endpoint_url
        if self.aws_endpoint_url is not None:
            # moto accepts any credentials; boto3 needs some to sign with.
            os.environ.setdefault("AWS_ACCESS_KEY_ID", SANDBOX_AWS_ACCESS_KEY_ID)
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SANDBOX_AWS_SECRET_ACCESS_KEY)
        if self._moto is not None:
            self.world = await asyncio.to_thread(seed_dhanam_world, self._moto.endpoint_url)

        self.slack = self.slack_factory()
        await self.slack.start()
        self.config = with_before_deploy(load_config(self.config_path), self.before_deploy)
        self.config, self.outage = await start_outage(self.config, self.aws_endpoint_url)
        if self.dhanam_api:
            self.api = FakeDhanamApi()
            await self.api.start()
            self.config = pointed_at(self.config, self.api)
        self.pagerduty = FakePagerDuty()
        await self.pagerduty.start()
        settings = Settings(
            slack_bot_token=SANDBOX_BOT_TOKEN,
            slack_signing_secret=self.signing_secret,
            slack_api_url=self.slack.api_url,
            redis_url=self.redis_url,
            redis_cluster=self.redis_cluster,
            dhanam_config=self.config_path,
            aws_region="us-east-1",
            aws_endpoint_url=self.aws_endpoint_url,
            sns_cert_cache_dir=self.sns.cert_path.parent,
            log_format=self.log_format,
            pagerduty_routing_key=SANDBOX_PD_ROUTING_KEY,
            pagerduty_events_url=self.pagerduty.url,
            pagerduty_api_url=self.pagerduty.url,
            pagerduty_api_token=SANDBOX_PD_TOKEN,
            pagerduty_from_email="dhanam-bot@dhanam.dev",
            pagerduty_webhook_secret=self.pagerduty_webhook_secret,
        )
        overrides = self.overrides or Overrides(clock=self.clock)
        for _ in range(self.replicas):
            app = create_app(settings, self.config, overrides)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self._runners.append(runner)
            self.apps.append(app)
            self.bot_urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        self.app, self.bot_url = self.apps[0], self.bot_urls[0]
        self.outage.install(self.apps)  # AWS Health, which moto lacks
        self._session = aiohttp.ClientSession()
        if self.advance_rollouts_after is not None and self._moto is not None:
            self._driver = asyncio.create_task(self._advance_rollouts(self.advance_rollouts_after))
        if self.task_seconds is not None and self.aws_endpoint_url is not None:
            # moto of this process only (the runner edits its backend), in the bot's region.
            self.tasks = TaskRunner(
                self.aws_endpoint_url, "us-east-1", run_seconds=self.task_seconds
            )
            self._task_driver = asyncio.create_task(self._run_tasks(self.tasks))

    async def _run_tasks(self, runner: TaskRunner) -> None:
        """What ECS would do with the bot's one-off tasks (sandbox.ecs_tasks)."""
        while True:
            await asyncio.sleep(0.2)
            try:
                await asyncio.to_thread(runner.step)
            except Exception:  # a moto hiccup; the next step tries again
                log.warning("sandbox.task_runner_failed", exc_info=True)

    async def _advance_rollouts(self, after: float) -> None:
        """What ECS would do: a rollout in progress completes ``after`` seconds later. moto
        keeps every deployment IN_PROGRESS forever, so the sandbox moves it along in moto's
        in-process backend (sandbox.aws_world.complete_rollouts)."""
        if self.world is None or self.aws_endpoint_url is None:
            return
        endpoint, region = self.aws_endpoint_url, self.world.region
        seen: dict[tuple[str, str], float] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.5)
            for cluster in self.world.cluster_names:
                for service in self.world.service_names:
                    key = (cluster, service)
                    rolling = await asyncio.to_thread(_rolling, endpoint, region, cluster, service)
                    if not rolling:
                        seen.pop(key, None)
                        continue
                    first = seen.setdefault(key, loop.time())
                    if loop.time() - first >= after:
                        await asyncio.to_thread(
                            complete_rollouts, endpoint, region, cluster, service
                        )
                        seen.pop(key, None)

    async def stop(self) -> None:
        for driver in (self._driver, self._task_driver):
            if driver is not None:
                driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driver
        if self._session is not None:
            await self._session.close()
        for runner in self._runners:
            await runner.cleanup()
        await self.slack.stop()
        if self.api is not None:
            await self.api.stop()
        await self.pagerduty.stop()
        await self.outage.stop()
        if self._moto is not None:
            await asyncio.to_thread(self._moto.stop)
        if self._redis is not None:
            await asyncio.to_thread(self._redis.stop)
        shutil.rmtree(self._tmp, ignore_errors=True)

    async def __aenter__(self) -> SandboxWorld:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- talking to the bot as Slack does ------------------------------------------------------
    def user_id(self, name: str) -> str:
        return USERS.get(name, name)

    def channel_name(self, channel_id: str) -> str:
        channel = self.slack.world.channels.get(channel_id)
        return channel.name if channel is not None else channel_id

    def flow(self, replica: int = 0) -> ApprovalFlow:
        return self.apps[replica][DEPS].flow

    async def post(
        self, path: str, body: str, headers: dict[str, str], *, replica: int = 0
    ) -> Reply:
        assert self._session is not None, "start() first"
        url = self.bot_urls[replica] + path
        async with self._session.post(url, data=body, headers=headers) as resp:
            raw = await resp.text()
            try:
                parsed: Any = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                parsed = raw
            return Reply(resp.status, parsed)

    async def slash(
        self, text: str, *, user: str = "alice", channel: str = "C0OPS", replica: int = 0
    ) -> Reply:
        user_id = self.user_id(user)
        name = next((n for n, uid in USERS.items() if uid == user_id), user)
        body = slash_command_body(
            text=text,
            user_id=user_id,
            user_name=name,
            channel_id=channel,
            channel_name=self.channel_name(channel),
            response_url=self.slack.new_response_url(channel, user_id),
            command=self.config.slack.command,
        )
        headers = sign(self.signing_secret, body)
        return await self.post("/slack/events", body, headers, replica=replica)

    async def click(
        self, message: EmuMessage, button: Button, *, user: str = "alice", replica: int = 0
    ) -> Reply:
        user_id = self.user_id(user)
        name = next((n for n, uid in USERS.items() if uid == user_id), user)
        body = block_actions_body(
            user_id=user_id,
            user_name=name,
            channel_id=message.channel,
            channel_name=self.channel_name(message.channel),
            message=message.to_slack(self.slack.team_id),
            action_id=button.action_id,
            block_id=button.block_id,
            value=button.value,
            button_text=button.label,
            response_url=self.slack.new_response_url(message.channel, user_id, message.ts),
            is_ephemeral=message.ephemeral_to is not None,
        )
        headers = sign(self.signing_secret, body)
        return await self.post("/slack/events", body, headers, replica=replica)

    async def alarm(self, name: str, state: str) -> Reply:
        """CloudWatch moves alarm ``name`` to ``state`` and notifies through SNS, signed."""
        if self.aws_endpoint_url is None or self.world is None:
            raise RuntimeError("the sandbox was started without AWS")
        world = self.world
        after = await asyncio.to_thread(
            set_alarm_state,
            self.aws_endpoint_url,
            world.region,
            name,
            state,
            f"Sandbox: alarm set to {state} from the console",
        )
        notification = self.sns.cloudwatch_alarm_notification(
            world.topic_arn,
            after,
            new_state=state,
            old_state=self._alarm_states.get(name, "OK"),
            reason=str(after.get("StateReason", "")),
            region=world.region,
            account_id=world.account_id,
        )
        self._alarm_states[name] = state
        body = json.dumps(notification)
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": str(notification["Type"]),
            "x-amz-sns-topic-arn": world.topic_arn,
        }
        return await self.post("/webhooks/sns", body, headers)

    async def pagerduty_webhook(self, event_type: str, incident_id: str, replica: int = 0) -> int:
        """The fake PagerDuty sends a signed v3 webhook about ``incident_id`` to the bot."""
        return await self.pagerduty.send_webhook(
            self.bot_urls[replica] + "/webhooks/pagerduty",
            event_type,
            incident_id,
            self.pagerduty_webhook_secret.split(",")[0].strip(),
        )

    async def settle_alarms(self, limit: float = 60.0) -> None:
        """Wait until every replica's alarm outbox is drained (writes are paced ~1/s)."""
        for app in self.apps:
            await app[DEPS].outbox.idle(limit)
        await self.settle()

    def newest_with_buttons(self, user: str) -> EmuMessage | None:
        """The newest message ``user`` can see that has a button (channels, threads, ephemerals)."""
        user_id = self.user_id(user)
        state = self.slack.world
        candidates = [m for history in state.history.values() for m in history if not m.deleted]
        candidates += [m for m in state.ephemeral if m.ephemeral_to == user_id and not m.deleted]
        with_buttons = [m for m in candidates if buttons_of(m.blocks or [])]
        return max(with_buttons, key=lambda m: float(m.ts), default=None)

    def names(self) -> dict[str, str]:
        """Slack IDs to the names a person reads: users and channels."""
        state = self.slack.world
        names = {uid: u.name for uid, u in state.users.items()}
        names.update({cid: c.name for cid, c in state.channels.items()})
        names.update({gid: gid.removeprefix("S0").lower() for gid in state.usergroups})
        return names

    async def settle(self, quiet: float = 0.15, limit: float = 10.0) -> None:
        """Wait until background work is done: executions and outbox drains finished and no
        Slack call for ``quiet`` seconds (Bolt finishes listeners after the ack, so a reply
        can come later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while loop.time() < deadline:
            for app in self.apps:
                await app[DEPS].inflight.idle()
                await app[DEPS].flow.drain()
                # Outbox writes (PagerDuty updates, alarms) that are under way: bounded.
                await app[DEPS].outbox.idle(max(deadline - loop.time(), 0.01))
            if len(self.slack.calls) == seen:
                return
            seen = len(self.slack.calls)
            await asyncio.sleep(quiet)

    async def settle_within(self, limit: float, quiet: float = 0.15) -> bool:
        """What a console line caused, settled within ``limit`` seconds: requests in flight
        answered, executions and outbox writes finished, then no Slack call for ``quiet``
        seconds (Bolt finishes listeners after the ack). False when ``limit`` came first; the
        work goes on and is not cancelled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while True:
            for app in self.apps:
                deps = app[DEPS]
                waits = (deps.inflight.idle, deps.flow.drain, lambda d=deps: d.outbox.idle(limit))
                for wait in waits:
                    task = asyncio.ensure_future(wait())
                    remaining = deadline - loop.time()
                    done, _ = await asyncio.wait({task}, timeout=max(remaining, 0))
                    if not done:
                        self._lingering.add(task)  # never cancelled: that would cancel the work
                        task.add_done_callback(self._lingering.discard)
                        return False
            if len(self.slack.calls) == seen:
                return True
            if loop.time() + quiet > deadline:
                return False
            seen = len(self.slack.calls)
            await asyncio.sleep(quiet)


def with_before_deploy(config: Config, steps: dict[str, str]) -> Config:
    """``config`` with each service's `before_deploy` set to the named task (validated as the
    config file's own key would be)."""
    if not steps:
        return config
    services = dict(config.services)
    for service, task in steps.items():
        data = services[service].model_dump()
        data["before_deploy"] = task
        services[service] = type(services[service]).model_validate(data)
    return config.model_copy(update={"services": services})


def _rolling(endpoint: str, region: str, cluster: str, service: str) -> bool:
    import boto3  # noqa: PLC0415 - only the sandbox's rollout driver needs a raw client

    ecs = boto3.client("ecs", region_name=region, endpoint_url=endpoint)
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    for svc in found:
        current = str(svc.get("taskDefinition", "")).rsplit("/", 1)[-1]
        for deployment in svc.get("deployments", []):
            if deployment.get("rolloutState") == "IN_PROGRESS":
                return True
            # moto leaves the old deployment in place after update-service.
            target = str(deployment.get("taskDefinition", "")).rsplit("/", 1)[-1]
            if deployment.get("status") == "PRIMARY" and target != current:
                return True
    return False
