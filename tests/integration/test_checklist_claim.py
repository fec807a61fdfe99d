"""The sev1 checklist's run claim (commands/incidents/checklist_store.py) against a real
redis-server: a run whose claim lapsed never writes over a newer run's results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from commands.incidents.checklist_store import ChecklistStore
from commands.outage.models import CheckResult, Verdict
from core.redis import RedisClient
from integrations.redis_client import create_redis

INCIDENT = "inc-20261205-claim1"
AT = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = create_redis(redis_url)
    yield client
    await client.aclose()


def _results(verdict: Verdict, evidence: str) -> dict[str, CheckResult]:
    result = CheckResult(step="dns", verdict=verdict, evidence=evidence, checked_at=AT, ms=1.0)
    return {"dns": result}


async def test_a_run_whose_claim_lapsed_writes_nothing_over_the_newer_runs(
    redis: RedisClient,
) -> None:
    store = ChecklistStore(redis)
    old = await store.start(INCIDENT, 0.05)
    assert old is not None
    assert await store.start(INCIDENT, 60) is None  # one run at a time
    await asyncio.sleep(0.1)  # the old run is slowed (Slack 429s): its claim lapses
    new = await store.start(INCIDENT, 60)
    assert new is not None
    assert new != old
    # The old run finishes while the new one runs: nothing written, the new claim stands.
    assert not await store.finish(INCIDENT, old, _results(Verdict.FAIL, "old"), by="", at=AT, ms=1)
    found = await store.diagnosis(INCIDENT)
    assert found.results == {}
    assert found.running
    await store.release(INCIDENT, old)  # nor does it let go of the new run's claim
    assert (await store.diagnosis(INCIDENT)).running
    assert await store.finish(
        INCIDENT, new, _results(Verdict.PASS, "new"), by="U0ALICE", at=AT, ms=2
    )
    found = await store.diagnosis(INCIDENT)
    assert found.results["dns"].evidence == "new"
    assert found.run_by == "U0ALICE"
    assert not found.running
    # Too late for the old run also once the new one is done.
    assert not await store.finish(INCIDENT, old, _results(Verdict.FAIL, "old"), by="", at=AT, ms=1)
    assert (await store.diagnosis(INCIDENT)).results["dns"].evidence == "new"
