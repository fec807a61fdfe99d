"""The failover record's part of `dr activate`'s plan: which record one UPSERT of a CNAME can
switch, its inputs (zone, name, type, TTL, target), its line on the card, and a warning when its
TTL is long (clients keep the primary's answer that long after the switch)."""

from __future__ import annotations

from typing import Any

from approvals.models import Change
from core.config import DrConfig
from core.errors import ChatOpsError
from core.text import duration
from integrations.aws.dr_actions import CNAME, DrActions, RecordSet

NEW_RECORD_TTL = 60
LONG_TTL = 300  # seconds: a longer TTL is warned about (clients keep the old answer that long)


def simple_record(sets: list[RecordSet], name: str) -> RecordSet | None:
    """The one CNAME of ``name`` (None: none yet, UPSERT creates it); refuses what one UPSERT of a
    CNAME cannot switch: routed sets (weighted, failover…), aliases, other types."""
    if len(sets) > 1 or any(s.routed for s in sets):
        raise ChatOpsError(
            f"{name} has {len(sets)} record sets with routing policies: dr activate switches one "
            "simple CNAME — switch this record by hand, or configure a simple one"
        )
    if sets and (sets[0].alias or sets[0].type != CNAME):
        kind = f"an alias {sets[0].type}" if sets[0].alias else f"a {sets[0].type}"
        raise ChatOpsError(
            f"{name} is {kind} record: dr activate switches a CNAME to the DR target — switch it "
            "by hand, or make it a CNAME"
        )
    return sets[0] if sets else None


async def record_part(
    actions: DrActions, dr: DrConfig
) -> tuple[dict[str, Any] | None, Change | None, list[str]]:
    """The record's inputs, its line, and the warnings: a TTL over LONG_TTL seconds (resolvers
    keep the primary's answer that long after the switch)."""
    if dr.record_name is None or dr.route53_zone_id is None or dr.target is None:
        return None, None, []
    record = simple_record(
        await actions.record_sets(dr.route53_zone_id, dr.record_name), dr.record_name
    )
    done = record is not None and record.points_at(dr.target)
    ttl = record.ttl if record is not None and record.ttl is not None else NEW_RECORD_TTL
    inputs = {
        "zone_id": dr.route53_zone_id,
        "name": dr.record_name,
        "type": CNAME,
        "ttl": ttl,
        "target": dr.target,
    }
    before = f"CNAME → {', '.join(record.values)}" if record is not None else "not in the zone"
    after = "already the DR target" if done else f"UPSERT → {dr.target}, followed to INSYNC"
    warnings = []
    if ttl > LONG_TTL and not done:
        warnings.append(
            f"{dr.record_name} has a TTL of {duration(ttl)}: resolvers and clients keep the "
            f"primary's answer up to that long after the switch (it is kept as it is)"
        )
    return inputs, Change(label=f"3. {dr.record_name}", before=before, after=after), warnings
