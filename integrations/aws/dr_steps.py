"""What `dr activate` would still have to do, in order, judged from a readiness read (shown by
`dr status`; the plan of `dr activate` follows the same order)."""

from __future__ import annotations

from integrations.aws.dr_models import DrReadiness


def activation_steps(ready: DrReadiness) -> list[str]:
    """Promote the replica (or restore the newest replicated backup), deploy production's images
    where the DR service runs another, scale what is below production's counts, switch the
    record when it does not point at the DR target. An unreadable source counts as to do."""
    steps: list[str] = []
    db = ready.database.value
    if db is not None and db.kind == "replica" and not db.found:
        steps.append(f"no replica {db.name} to promote: restore the database from a backup")
    elif db is None or db.kind == "replica":
        name = db.name if db is not None else "the DR replica"
        if db is None or db.source is not None:
            steps.append(f"promote {name} to a standalone database")
    else:
        steps.append("restore the newest replicated backup into a new instance")
    deploy = [
        name
        for name, reading in ready.services.items()
        if reading.value is None or reading.value.image_matches is not True
    ]
    if deploy:
        steps.append(f"deploy production's images to {', '.join(deploy)}")
    scale: list[str] = []
    for name, reading in ready.services.items():
        service = reading.value
        prod = service.production.value if service is not None else None
        if (
            service is None
            or service.dr is None
            or prod is None
            or service.dr.desired < prod.desired
        ):
            scale.append(name)
    if scale:
        steps.append(f"scale {', '.join(scale)} to production's counts")
    record = ready.record
    if record is not None and (record.value is None or not record.value.points_at_dr):
        name = record.value.name if record.value is not None else "the failover record"
        target = record.value.target if record.value is not None else "the DR target"
        steps.append(f"switch {name} to {target}")
    return steps
