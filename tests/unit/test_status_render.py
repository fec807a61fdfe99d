"""The status health rules and Block Kit, on hand-made models (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commands.status.health import MARKS, Health, assess
from commands.status.models import EcsView, Overview, ServiceStatus, Source, Traffic
from commands.status.render import _mark, detail_blocks, home_view, overview_blocks, sparkline
from integrations.aws.metrics import AlarmDetail, MetricSeries
from integrations.aws.models import Deployment, ServiceState
from integrations.dhanam_api import (
    ApiHealth,
    DatabaseBody,
    Endpoint,
    HealthBody,
    Probe,
    ProviderBody,
    ProvidersBody,
)

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def ecs(running: int = 2, desired: int = 2, rollouts: tuple[str, ...] = ("COMPLETED",)) -> EcsView:
    deployments = tuple(
        Deployment(
            f"d{i}",
            "PRIMARY" if i == 0 else "ACTIVE",
            "td/dhanam-api:3",
            state,
            None,
            running,
            desired,
            0,
            0,
        )
        for i, state in enumerate(rollouts)
    )
    state = ServiceState(
        "us-east-1",
        "c",
        "dhanam-api",
        "arn",
        "ACTIVE",
        "td/dhanam-api:3",
        desired,
        running,
        0,
        deployments,
        True,
        True,
        (),
    )
    return EcsView(state, "dhanam-api:3", "v1.2.0", "sha256:" + "a" * 64)


def api(health: str | None = "ok", bitso: str = "ok") -> ApiHealth:
    def probe(endpoint: Endpoint, body: object, error: str | None = None) -> Probe:  # type: ignore[type-arg]
        return Probe(endpoint, "u", 5.0, 200, body, error)  # type: ignore[arg-type]

    providers = {
        "plaid": ProviderBody(status="ok", latency_ms=120),
        "bitso": ProviderBody(status=bitso),
    }
    return ApiHealth(
        "https://api",
        probe(
            Endpoint.HEALTH,
            HealthBody(status=health) if health else None,
            None if health else "HTTP 500",
        ),
        probe(Endpoint.DATABASE, DatabaseBody(status="ok", connections=3, max_connections=10)),
        probe(Endpoint.PROVIDERS, ProvidersBody(providers=providers)),
    )


def row(
    view: EcsView | None = None,
    alarms: tuple[str, ...] = (),
    health: ApiHealth | None = None,
    **extra: object,
) -> ServiceStatus:
    details = [AlarmDetail(f"a{i}", s, "why", NOW, None, None, ()) for i, s in enumerate(alarms)]
    return ServiceStatus(
        service="api",
        env="production",
        ecs_service="dhanam-api",
        ecs=Source(view, None if view else "timed out after 3 s", 1.0),
        alarms=Source(details, None, 1.0),
        hold=Source(None, None, 1.0),
        api=health,
        pending=Source([], None, 1.0),
        **extra,  # type: ignore[arg-type]
    )


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([0, 7, 3.5, None, 7]) == "▁█▅ █"
    assert sparkline([2, 2]) == "▁▁"
    assert sparkline([None, None]) == ""


def test_health_marks_and_reasons() -> None:
    assert assess(row(ecs(), health=api())) == (Health.OK, [])
    assert assess(row(ecs(running=1))) == (Health.DEGRADED, ["running 1/2"])
    assert assess(row(ecs(running=0))) == (Health.DOWN, ["running 0/2"])
    assert assess(row(ecs(rollouts=("IN_PROGRESS",))))[1] == ["rollout in progress"]
    assert assess(row(ecs(rollouts=("FAILED",))))[1] == ["rollout failed"]
    assert assess(row(ecs(), alarms=("ALARM", "OK", "ALARM")))[1] == ["2 alarms in ALARM"]
    assert assess(row(None))[1] == ["ECS unavailable (timed out after 3 s)"]
    assert assess(row(ecs(), health=api(bitso="down")))[1] == ["provider bitso down"]
    mark, why = assess(row(ecs(running=1), health=api(health=None)))
    assert mark is Health.DOWN
    assert why == ["health endpoint down (HTTP 500)", "running 1/2"]  # down reasons first


def test_detail_shows_unavailable_sources_in_their_place() -> None:
    traffic = Traffic(
        "app/x",
        MetricSeries("errors", (1.0, 9.0), (NOW, NOW + timedelta(minutes=5))),
        None,
        NOW,
        300,
        3,
    )
    status = row(
        None,
        alarms=("OK", "ALARM"),
        health=api(),
        traffic=Source(traffic, None, 1.0),
        last_deploy=Source(None, "timed out after 3 s", 3000.0),
    )
    text, blocks = detail_blocks(status, "/dhanam")
    body = str(blocks)
    assert (
        text
        == "api in production: degraded — ECS unavailable (timed out after 3 s); 1 alarm in ALARM"
    )
    assert "*ECS* unavailable (timed out after 3 s)" in body
    assert "*Last deploy* unavailable (timed out after 3 s)" in body
    assert body.index("`a1` *ALARM*") < body.index("`a0` *OK*")
    assert "5xx `▂█▁` min 0 · max 9" in body  # no padding inside the code span
    assert "latency no datapoints" in body
    assert "`5xx" not in body
    assert len(blocks) <= 50


def test_overview_and_home_share_the_rows() -> None:
    overview = Overview([row(ecs(), health=api()), row(ecs(running=0))], NOW, 12.0)
    text, blocks = overview_blocks(overview, "/dhanam", "api in every environment")
    assert text == "Status: 1 ok, 1 down"
    assert blocks[0]["text"]["text"] == "Status: api in every environment"
    view = home_view(overview, "/dhanam", NOW)
    assert view["type"] == "home"
    assert view["blocks"][1] == blocks[1]


def test_endpoint_marks_follow_the_health_level() -> None:
    assert _mark("ok") == MARKS[Health.OK]
    assert _mark("healthy") == MARKS[Health.OK]
    assert _mark("degraded") == MARKS[Health.DEGRADED]
    assert _mark("down") == MARKS[Health.DOWN]
    assert _mark(None) == MARKS[Health.DOWN]
