"""An alarm's Roll back button targets the environment the alarm watches (issue 11, point 6):
production and staging share us-east-1, so the newest deploy in the region says nothing."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from approvals.rollout import RolloutSettings
from bot.app import DEPS
from bot.wiring import Overrides
from integrations.deploy_history import DeployHistory, DeployRecord
from sandbox.aws_world import DhanamWorld
from sandbox.sns_signer import cloudwatch_alarm_message
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld, buttons_of
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox
from tests.scenario.alarm_support import FAST, T0, TOPIC, alarm_world, deliver, text_of, top_level

SHARED = "dhanam-api-high-error-rate"  # an ALB alarm: no ClusterName, no environment of its own
CPU = "dhanam-api-cpu-high"  # an ECS alarm: ClusterName and ServiceName dimensions
PROD_ALARMS = 'alarms = ["dhanam-api-high-error-rate", "dhanam-api-high-response-time"]'


def shared_config(tmp_path: Path) -> Path:
    """The example config with no `[environments.production] alarms`: every API alarm is
    shared by production and staging, and the CPU alarm is the API's too."""
    text = EXAMPLE_CONFIG.read_text()
    production, api = text.index(PROD_ALARMS), text.index("[services.api]")
    assert production < api
    text = text[:production] + text[production + len(PROD_ALARMS) :]
    text = text.replace(PROD_ALARMS, PROD_ALARMS.replace('"]', f'", "{CPU}"]'))
    path = tmp_path / "dhanam.toml"
    path.write_text(text)
    return path


def definition(name: str, dimensions: dict[str, str]) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmDescription": f"{name} (test)",
        "MetricName": "CPUUtilization" if name == CPU else "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ECS" if name == CPU else "AWS/ApplicationELB",
        "Statistic": "Average",
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Period": 300,
        "EvaluationPeriods": 2,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 80.0,
    }


async def fire(
    world: SandboxWorld, name: str, state: str = "ALARM", seconds: float = 0, **dimensions: str
) -> None:
    old = "ALARM" if state == "OK" else "OK"
    message = cloudwatch_alarm_message(
        definition(name, dimensions),
        state,
        old,
        f"Threshold Crossed: test moved {name} to {state}",
        "us-east-1",
        "123456789012",
        now=T0 + timedelta(seconds=seconds),
    )
    body = world.sns.notification(TOPIC, message, f'{state}: "{name}" in US East (N. Virginia)')
    assert (await deliver(world, body)).status == 200
    await world.settle_alarms()


async def deployed(world: SandboxWorld, env: str, before: int, after: int, ago: float) -> None:
    deps = world.app[DEPS]
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/dhanam-api:{}"
    await DeployHistory(deps.redis, deps.clock).record(
        DeployRecord(
            service="api",
            env=env,
            previous_task_definition=arn.format(before),
            new_task_definition=arn.format(after),
            previous_image="dhanam-api:v1.2.0",
            new_image="dhanam-api:v1.3.0",
            at=datetime.now(UTC) - timedelta(seconds=ago),
        )
    )


def root_of(world: SandboxWorld, name: str) -> Any:
    return next(m for m in top_level(world, "C0DEPLOYS") if name in m.text)


def labels(message: Any) -> list[str]:
    return [b.label for b in buttons_of(message.blocks or [])]


async def test_a_production_alarm_rolls_back_production_though_staging_deployed_last(
    redis_url: str, tmp_path: Path
) -> None:
    async with alarm_world(redis_url, FAST, config_path=shared_config(tmp_path)) as world:
        await deployed(world, "production", before=3, after=4, ago=300)
        await deployed(world, "staging", before=7, after=8, ago=60)  # the newest in us-east-1
        await fire(world, CPU, ClusterName="dhanam-production", ServiceName="dhanam-api")

        root = root_of(world, CPU)
        assert labels(root) == ["Roll back api in production", "Declare incident"]
        rollback = buttons_of(root.blocks or [])[0]
        assert json.loads(rollback.value) == {
            "service": "api",
            "env": "production",
            "to": "dhanam-api:3",
            "alarm": CPU,
        }

        # The same alarm in staging's cluster (a later transition) targets staging instead.
        await fire(world, CPU, "OK", seconds=60, ClusterName="dhanam-production")
        await fire(world, CPU, seconds=120, ClusterName="dhanam-staging", ServiceName="dhanam-api")
        root = root_of(world, CPU)
        assert labels(root) == ["Roll back api in staging", "Declare incident"]
        thread = world.slack.thread("C0DEPLOYS", root.ts)
        assert "A deploy of api to staging finished lately." in thread[-1].text


async def test_no_button_when_the_alarms_environment_had_no_recent_deploy(
    redis_url: str, tmp_path: Path
) -> None:
    async with alarm_world(redis_url, FAST, config_path=shared_config(tmp_path)) as world:
        await deployed(world, "staging", before=7, after=8, ago=60)  # only staging deployed
        await fire(world, CPU, ClusterName="dhanam-production", ServiceName="dhanam-api")
        root = root_of(world, CPU)
        assert labels(root) == ["Declare incident"]
        assert "staging" not in text_of(root)
        await fire(world, CPU, "OK", seconds=60, ClusterName="dhanam-production")
        await fire(world, CPU, seconds=120, ClusterName="dhanam-production")
        root = root_of(world, CPU)
        assert labels(root) == ["Declare incident"]
        replies = [m.text for m in world.slack.thread("C0DEPLOYS", root.ts) if m.is_reply]
        assert len(replies) == 2
        assert not any("finished lately" in reply for reply in replies)


async def test_an_alarm_shared_by_production_and_staging_gets_no_button(
    redis_url: str, tmp_path: Path
) -> None:
    async with alarm_world(redis_url, FAST, config_path=shared_config(tmp_path)) as world:
        await deployed(world, "production", before=3, after=4, ago=60)
        await deployed(world, "staging", before=7, after=8, ago=30)
        await fire(world, SHARED, LoadBalancer="app/dhanam-alb/abc")
        root = root_of(world, SHARED)
        assert labels(root) == ["Declare incident"]  # a guess could roll back the wrong one
        assert "finished lately" not in text_of(root)
        # A cluster that is no configured environment's (the DR cluster) is no target either.
        await fire(world, CPU, ClusterName="dhanam-dr", ServiceName="dhanam-api")
        assert labels(root_of(world, CPU)) == ["Declare incident"]


async def test_the_alarms_button_opens_a_rollback_of_its_own_environment(
    redis_url: str, aws_world: DhanamWorld
) -> None:
    """The example config lists the API alarms under production; staging deploys last; the
    click asks to roll back production, to the revision production ran before."""
    # moto never completes a rollout: a short follower timeout keeps the test from waiting
    # out FAST_ROLLOUTS' 30 s (the rollout is not what this test is about).
    rollouts = RolloutSettings(
        poll=FAST_ROLLOUTS.poll,
        timeout=timedelta(seconds=1),
        bake=FAST_ROLLOUTS.bake,
        lease=FAST_ROLLOUTS.lease,
    )
    overrides = Overrides(sweeper=False, rollouts=rollouts, alarms=FAST)
    async with aws_sandbox(redis_url, aws_world, overrides) as world:
        await world.slash("deploy api production v1.3.0", user="alice")
        await world.settle()
        card = next(m for m in top_level(world, "C0DEPLOYS") if "Approve" in labels(m))
        approve = next(b for b in buttons_of(card.blocks or []) if b.label == "Approve")
        await world.click(card.snapshot(), approve, user="bob")
        await world.settle()
        await world.slash("deploy api staging v1.3.0", user="alice")
        await world.settle()
        deps = world.app[DEPS]
        history = DeployHistory(deps.redis, deps.clock)
        production, staging = (
            await history.last("api", "production"),
            await history.last("api", "staging"),
        )
        assert production is not None
        assert staging is not None
        assert staging.at > production.at

        await fire(world, SHARED, LoadBalancer="app/dhanam-production/abc")
        root = root_of(world, SHARED)
        assert labels(root) == ["Roll back api in production", "Declare incident"]
        rollback = buttons_of(root.blocks or [])[0]
        await world.click(root.snapshot(), rollback, user="alice")
        await world.settle()
        told = world.slack.ephemerals(world.user_id("alice"))[-1].text
        before = production.previous_task_definition.rpartition("/")[2]
        after = production.new_task_definition.rpartition("/")[2]
        assert f"Rollback requested: Roll back api in production: {after} → {before}" in told


async def test_a_button_for_an_environment_no_longer_configured_changes_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    """on_rollback opens the environment on the button and never another: one removed from
    the config since the message was posted is refused, not re-guessed."""
    async with alarm_world(redis_url, FAST, config_path=shared_config(tmp_path)) as world:
        await deployed(world, "production", before=3, after=4, ago=60)
        await fire(world, CPU, ClusterName="dhanam-production", ServiceName="dhanam-api")
        root = root_of(world, CPU)
        rollback = buttons_of(root.blocks or [])[0]
        value = json.loads(rollback.value) | {"env": "qa"}
        stale = dataclasses.replace(rollback, value=json.dumps(value))
        await world.click(root.snapshot(), stale, user="alice")
        await world.settle()
        told = world.slack.ephemerals(world.user_id("alice"))[-1].text
        assert told == (
            'This button names environment "qa", which is no longer configured. '
            "Nothing was changed."
        )
        assert await world.app[DEPS].store.active_ids() == []  # no request was made
        assert [m.ts for m in top_level(world, "C0DEPLOYS")] == [root.ts]  # and no card posted
