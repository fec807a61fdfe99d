"""DR readiness: the RPO verdict, the marks, the steps left and the rendering (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.dr.render import not_configured_blocks, readiness_blocks, summary_line
from core.config import DrConfig
from integrations.aws.dr_models import (
    DrDatabase,
    DrReadiness,
    DrRecord,
    DrService,
    Image,
    Mark,
    Reading,
    ServiceSide,
    rpo,
    same_image,
)
from integrations.aws.dr_steps import activation_steps
from integrations.aws.images import parse_image
from sandbox.block_kit import block_errors

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SOURCE = "arn:aws:rds:us-east-1:123456789012:db:dhanam-production"
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api"
DR = DrConfig(
    region="us-west-2",
    cluster="dhanam-dr",
    db_instance="dhanam-production-dr",
    route53_zone_id="Z1",
    record_name="api.dhanam.io",
    target="dr.example.com",
)


def ok(value: object) -> Reading[object]:
    return Reading(value, None, 1.0)


def failed(error: str) -> Reading[object]:
    return Reading(None, error, 1.0)


REPLICA = DrDatabase("replica", "dhanam-production-dr", "available", SOURCE, None)


def image(text: str, tag: str | None = None) -> Image:
    ref = parse_image(text)
    return Image(ref, ref.tag or tag)


@pytest.mark.parametrize(
    ("lag", "mark", "behind"),
    [
        (ok(0.0), Mark.OK, timedelta(0)),
        (ok(3600.0), Mark.OK, timedelta(hours=1)),  # at the target: still within
        (ok(3601.0), Mark.BAD, timedelta(seconds=3601)),
        (ok(None), Mark.UNKNOWN, None),  # no datapoints: unknown, never 0
        (ok(-1.0), Mark.BAD, None),  # RDS's "replication not active": never 0 s behind
        (failed("AWS refused GetMetricData: AccessDenied"), Mark.UNKNOWN, None),
        (None, Mark.UNKNOWN, None),
    ],
)
def test_rpo_from_the_replica_lag(
    lag: Reading[float | None] | None, mark: Mark, behind: timedelta | None
) -> None:
    verdict = rpo(ok(REPLICA), lag, NOW, 3600)  # type: ignore[arg-type]
    assert (verdict.mark, verdict.behind) == (mark, behind)


def test_rpo_of_an_unknown_lag_says_why() -> None:
    assert "no ReplicaLag datapoints" in rpo(ok(REPLICA), ok(None), NOW, 3600).why  # type: ignore[arg-type]
    refused = rpo(ok(REPLICA), failed("AccessDenied"), NOW, 3600)  # type: ignore[arg-type]
    assert refused.why == "lag unknown (AccessDenied)"


@pytest.mark.parametrize(
    ("database", "mark", "why"),
    [
        (DrDatabase("replica", "x", None, None, None, found=False), Mark.BAD, "replica not found"),
        (DrDatabase("replica", "x", "available", None, None), Mark.BAD, "not replicating"),
        (
            DrDatabase("backups", "arn:b", None, None, None, found=False),
            Mark.BAD,
            "no replicated backups found",
        ),
        (DrDatabase("backups", "arn:b", "replicating", None, None), Mark.UNKNOWN, "no restorable"),
        (
            DrDatabase(
                "replica", "x", "available", "arn:src", None, replication_problem="error: IO"
            ),
            Mark.BAD,
            "replication error: IO",
        ),
    ],
)
def test_rpo_of_a_missing_or_unreplicated_database(
    database: DrDatabase, mark: Mark, why: str
) -> None:
    verdict = rpo(ok(database), ok(5.0), NOW, 3600)  # type: ignore[arg-type]
    assert verdict.mark is mark
    assert why in verdict.why
    assert verdict.behind is None


def test_rpo_of_replicated_backups_is_the_age_of_the_newest_restorable_time() -> None:
    def at(age: timedelta) -> DrDatabase:
        return DrDatabase("backups", "arn:b", "replicating", None, NOW - age)

    fresh = rpo(ok(at(timedelta(minutes=50))), None, NOW, 3600)  # type: ignore[arg-type]
    assert (fresh.mark, fresh.behind) == (Mark.OK, timedelta(minutes=50))
    stale = rpo(ok(at(timedelta(minutes=61))), None, NOW, 3600)  # type: ignore[arg-type]
    assert (stale.mark, stale.behind) == (Mark.BAD, timedelta(minutes=61))
    unreadable = rpo(failed("timed out after 3 s"), None, NOW, 3600)  # type: ignore[arg-type]
    assert unreadable.mark is Mark.UNKNOWN
    assert "timed out after 3 s" in unreadable.why


def test_same_image_by_digest_else_by_tag() -> None:
    digest_a, digest_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert same_image(image(f"{REPO}:v1.2.0"), image(f"{REPO}:v1.2.0"))
    assert not same_image(image(f"{REPO}:v1.2.0"), image(f"{REPO}:v1.1.0"))
    assert not same_image(image(f"{REPO}:v1.2.0"), image(f"{REPO}-other:v1.2.0"))
    assert same_image(image(f"{REPO}@{digest_a}", "v1"), image(f"{REPO}@{digest_a}", "v2"))
    assert not same_image(image(f"{REPO}@{digest_a}", "v1"), image(f"{REPO}@{digest_b}", "v1"))
    # one pinned by digest (a bot deploy, its tag recorded on the revision), one by tag
    assert same_image(image(f"{REPO}@{digest_a}", "v1.2.0"), image(f"{REPO}:v1.2.0"))
    assert not same_image(image(f"{REPO}@{digest_a}"), image(f"{REPO}:v1.2.0"))


def side(desired: int, tag: str) -> ServiceSide:
    return ServiceSide(desired, desired, "dhanam-api:3", image(f"{REPO}:{tag}"))


def readiness(
    *,
    lag: float | None = 30.0,
    services: dict[str, Reading[DrService]] | None = None,
    record: Reading[DrRecord] | None = None,
    database: Reading[DrDatabase] | None = None,
) -> DrReadiness:
    database = database if database is not None else ok(REPLICA)  # type: ignore[assignment]
    lag_reading: Reading[float | None] = Reading(lag, None, 1.0)
    if services is None:
        services = {"api": ok(DrService("api", "dhanam-api", side(0, "v1"), ok(side(2, "v1"))))}  # type: ignore[dict-item, arg-type]
    return DrReadiness(
        region="us-west-2",
        cluster="dhanam-dr",
        checked_at=NOW,
        ms=12.5,
        database=database,  # type: ignore[arg-type]
        lag=lag_reading,
        services=services,
        record=record,
        rpo=rpo(database, lag_reading, NOW, 3600),  # type: ignore[arg-type]
        rto=timedelta(hours=4),
    )


def test_the_verdict_is_the_worst_mark() -> None:
    assert readiness().mark is Mark.OK
    assert readiness(lag=None).mark is Mark.UNKNOWN
    assert readiness(lag=9000).mark is Mark.BAD
    missing = {"api": ok(DrService("api", "dhanam-api", None, ok(side(2, "v1"))))}
    assert readiness(services=missing).mark is Mark.BAD  # type: ignore[arg-type]
    timed_out = {"api": failed("timed out after 3 s")}
    assert readiness(services=timed_out).mark is Mark.UNKNOWN  # type: ignore[arg-type]


def test_steps_left() -> None:
    record = ok(
        DrRecord("api.dhanam.io", "Z1", "dr.example.com", ("primary.example.com.",), "CNAME")
    )
    stale = {"api": ok(DrService("api", "dhanam-api", side(0, "v1"), ok(side(2, "v2"))))}
    steps = activation_steps(readiness(services=stale, record=record))  # type: ignore[arg-type]
    assert steps == [
        "promote dhanam-production-dr to a standalone database",
        "deploy production's images to api",
        "scale api to production's counts",
        "switch api.dhanam.io to dr.example.com",
    ]
    switched = ok(DrRecord("api.dhanam.io", "Z1", "DR.example.com.", ("dr.example.com",), "CNAME"))
    promoted = ok(DrDatabase("replica", "dhanam-production-dr", "available", None, None))
    scaled = {"api": ok(DrService("api", "dhanam-api", side(2, "v1"), ok(side(2, "v1"))))}
    assert activation_steps(readiness(services=scaled, record=switched, database=promoted)) == []  # type: ignore[arg-type]


def texts(blocks: list[dict[str, object]]) -> str:
    return str(blocks)


def test_rendering_one_line_per_fact_errors_on_their_line() -> None:
    services = {
        "api": ok(DrService("api", "dhanam-api", side(0, "v1"), ok(side(2, "v1")))),
        "web": failed("AWS refused DescribeServices: AccessDeniedException — <not allowed>"),
    }
    record = failed("timed out after 3 s")
    text, blocks = readiness_blocks(readiness(services=services, record=record), DR, "/dhanam")  # type: ignore[arg-type]
    assert block_errors(blocks) == []
    assert 0 < len(text) <= 3000
    lines = text.splitlines()
    assert lines[0] == "? DR in us-west-2: readiness unknown"
    assert lines[1].startswith("✓ *Replica* `dhanam-production-dr` (us-west-2): available")
    assert lines[2] == "✓ *RPO* 30 s (replica lag) — within the 1 h target"
    assert lines[3].startswith("✓ *api* `dhanam-api`: 0/0 running")
    # AWS's words made inert: no link or mention can hide in them
    assert lines[4] == (
        "? *web*: unavailable (AWS refused DescribeServices: AccessDeniedException — "
        "&lt;not allowed&gt;)"
    )
    assert lines[5] == "? *Failover record* `api.dhanam.io`: unavailable (timed out after 3 s)"
    assert "RTO 4 h" in texts(blocks)


def test_rendering_many_services_stays_within_slack_limits() -> None:
    services = {
        f"svc{i}": ok(DrService(f"svc{i}", f"dhanam-svc{i}", side(0, "v1" * 40), ok(side(3, "v2"))))
        for i in range(1000)
    }
    text, blocks = readiness_blocks(readiness(services=services), DR, "/dhanam")  # type: ignore[arg-type]
    assert block_errors(blocks) == []
    assert 0 < len(text) <= 3000
    assert "more" in texts(blocks)


def test_not_configured_says_how() -> None:
    text, blocks = not_configured_blocks()
    assert block_errors(blocks) == []
    assert 0 < len(text) <= 3000
    assert "[dr]" in text
    assert "`db_instance`" in text


def test_summary_line_names_what_is_not_ok() -> None:
    assert summary_line(readiness()) == "✓ DR in us-west-2: ready · 2 steps left, RTO 4 h"
    missing = {"api": ok(DrService("api", "dhanam-api", None, ok(side(2, "v1"))))}
    assert summary_line(readiness(lag=None, services=missing)) == (  # type: ignore[arg-type]
        "✗ DR in us-west-2: not ready (? RPO, ✗ api) · 3 steps left, RTO 4 h"
    )


def test_the_record_points_at_dr_only_when_every_record_set_does() -> None:
    def record(*values: str) -> DrRecord:
        return DrRecord("api.dhanam.io", "Z1", "dr.example.com", values, "CNAME")

    assert record("DR.example.com.").points_at_dr
    assert not record("primary.example.com").points_at_dr
    assert not record().points_at_dr
    # failover routing: PRIMARY at the primary, SECONDARY at DR — not failed over
    assert not record("primary.example.com", "dr.example.com").points_at_dr


def test_replication_problems_come_from_status_infos() -> None:
    from integrations.aws.dr import _replication_problem  # noqa: PLC0415 - the one parser

    normal = {"StatusInfos": [{"StatusType": "read replication", "Normal": True}]}
    broken = {
        "StatusInfos": [
            {
                "StatusType": "read replication",
                "Normal": False,
                "Status": "error",
                "Message": "Replication has stopped: the source is unreachable",
            }
        ]
    }
    assert _replication_problem(normal) is None
    assert _replication_problem({}) is None
    assert _replication_problem(broken) == (
        "error: Replication has stopped: the source is unreachable"
    )
    assert rpo(ok(REPLICA), ok(-1.0), NOW, 3600).why == (  # type: ignore[arg-type]
        "replication not active (ReplicaLag -1)"
    )
