"""What the approvers of `dr activate` are told about the data they would fail over to: the DR
database's status and the recovery point now (how much data the failover would lose), read as
`dr status` reads them (integrations/aws/dr.py: the replica's CloudWatch ReplicaLag, or the
replicated backups' newest restorable time), each under `[status] source_timeout_seconds`.
Facts only: the lag moves all the time, so it is never part of the fingerprint."""

from __future__ import annotations

from datetime import timedelta

from commands.operations.runtime import ActionRuntime
from core.config import DrConfig
from core.text import duration
from integrations.aws.dr import DrReader, bounded
from integrations.aws.dr_models import Mark, Rpo, rpo
from integrations.aws.metrics import CloudWatchReader


async def rpo_facts(runtime: ActionRuntime, dr: DrConfig) -> list[str]:
    """`replica dhanam-production-dr: available` and `RPO: 12 s behind (replica lag), within
    the 1 h target` — or why either is unknown."""
    reader = DrReader(
        config=runtime.config,
        clients=runtime.aws.clients,
        aws=runtime.aws,
        cloudwatch=CloudWatchReader(runtime.aws.clients),
        clock=runtime.clock,
    )
    budget = runtime.config.status.source_timeout_seconds
    database = await bounded("database", budget, lambda: reader.database(dr))
    lag = (
        await bounded("lag", budget, lambda: reader.replica_lag(dr))
        if dr.db_instance is not None
        else None
    )
    db = database.value
    if db is None:
        head = f"DR database unreadable ({database.error})"
    elif db.kind == "replica":
        head = f"replica {db.name}: {db.status or 'not found'}"
    else:
        head = f"replicated backups: {db.status or 'none found'}"
    return [head, rpo_line(rpo(database, lag, runtime.clock.now(), dr.rpo_seconds))]


def rpo_line(judged: Rpo) -> str:
    target = duration(judged.target)
    if judged.behind is None:
        return f"RPO unknown: {judged.why} (target {target})"
    where = "within" if judged.mark is Mark.OK else "OVER"
    behind = duration(max(judged.behind, timedelta(0)))
    return f"RPO: {behind} of data behind ({judged.why}), {where} the {target} target"
