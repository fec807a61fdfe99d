"""The checklist's AWS checks: AWS Health, CloudFront, RDS and DR readiness.

Each returns a Finding (verdict and one line of evidence); a source that refuses raises and the
engine makes it "unknown" with the reason (commands/outage/engine.py).
"""

from __future__ import annotations

from datetime import timedelta

from commands.dr.render import summary_line
from commands.operations.card import slack_time
from commands.outage.deps import OutageSources
from commands.outage.models import Finding, Verdict
from core.text import duration, inert, plural
from integrations.aws.dr_models import Mark
from integrations.aws.health import HealthUnavailableError

HEALTH_SERVICES = ("ECS", "RDS", "CLOUDFRONT", "ELASTICLOADBALANCING", "ROUTE53")
HEALTH_NAMES = {
    "ECS": "ECS",
    "RDS": "RDS",
    "CLOUDFRONT": "CloudFront",
    "ELASTICLOADBALANCING": "ELB",
    "ROUTE53": "Route 53",
}
ERROR_WINDOW = timedelta(minutes=15)
ERROR_PERIOD = 60  # one 5xxErrorRate point a minute
_SHOWN = 3  # open issues named on the line


async def health(src: OutageSources) -> Finding:
    region = src.env.region
    names = ", ".join(HEALTH_NAMES[s] for s in HEALTH_SERVICES)
    try:
        events = await src.health.open_issues(list(HEALTH_SERVICES), region)
    except HealthUnavailableError as exc:
        return Finding(Verdict.UNAVAILABLE, f"not available: {inert(exc.reason)}")
    if not events:
        return Finding(Verdict.PASS, f"no open issues for {names} in {region} or global")
    shown = [
        f"{HEALTH_NAMES.get(e.service, inert(e.service))} `{inert(e.event_type)}` "
        f"({inert(e.region)}" + (f", since {slack_time(e.started)})" if e.started else ")")
        for e in events[:_SHOWN]
    ]
    more = f" and {len(events) - _SHOWN} more" if len(events) > _SHOWN else ""
    return Finding(Verdict.FAIL, f"{plural(len(events), 'open issue')}: {'; '.join(shown)}{more}")


async def cloudfront(src: OutageSources) -> Finding:
    outage = src.outage
    if outage.cloudfront_distribution_id:
        found = await src.cloudfront.get(outage.cloudfront_distribution_id)
        if found is None:
            return Finding(
                Verdict.FAIL,
                f"distribution `{inert(outage.cloudfront_distribution_id)}` not found",
            )
    elif outage.hostnames:
        found = await src.cloudfront.with_alias(list(outage.hostnames))
        if found is None:
            listed = ", ".join(outage.hostnames)
            return Finding(
                Verdict.UNAVAILABLE,
                f"not available: no distribution has {inert(listed)} as an alias "
                "(set `[outage] cloudfront_distribution_id`)",
            )
    else:
        return Finding(
            Verdict.UNAVAILABLE,
            "not configured: set `[outage] cloudfront_distribution_id` or `hostnames`",
        )
    head = f"`{inert(found.id)}` {inert(found.status)}"
    if not found.enabled:
        return Finding(Verdict.FAIL, f"{head}, *disabled*")
    end = src.clock.now()
    series = await src.cloudfront.error_rate(found.id, end - ERROR_WINDOW, end, ERROR_PERIOD)
    if series is None:
        return Finding(Verdict.UNKNOWN, f"{head}, enabled; no 5xx data in the last 15 min")
    newest, peak = series.values[-1], series.maximum or 0.0
    limit = outage.cloudfront_5xx_percent
    rate = f"5xx {newest:.2g}% now, max {peak:.2g}% in 15 min (limit {limit:g}%)"
    verdict = Verdict.FAIL if newest >= limit else Verdict.PASS
    return Finding(verdict, f"{head}, enabled; {rate}")


async def rds(src: OutageSources) -> Finding:
    env = src.env
    if env.db_instance is None:
        return Finding(
            Verdict.UNAVAILABLE, f"not configured: {src.env_name} names no `db_instance`"
        )
    found = await src.rds.find_db_instance(env.region, env.db_instance)
    name = f"`{inert(env.db_instance)}`"
    if found is None:
        return Finding(Verdict.FAIL, f"{name} not found in {env.region}")
    multi_az = "Multi-AZ" if found.multi_az else "single-AZ"
    if found.latest_restorable is not None:
        behind = duration(src.clock.now() - found.latest_restorable)
        restorable = f"latest restorable {slack_time(found.latest_restorable)} ({behind} ago)"
    else:
        restorable = "no restorable time"
    verdict = Verdict.PASS if found.status == "available" else Verdict.FAIL
    return Finding(verdict, f"{name} {inert(found.status)}, {multi_az}, {restorable}")


_DR_VERDICTS = {Mark.OK: Verdict.PASS, Mark.BAD: Verdict.FAIL, Mark.UNKNOWN: Verdict.UNKNOWN}


async def dr(src: OutageSources) -> Finding:
    config = src.config.dr
    if config is None:
        return Finding(Verdict.UNAVAILABLE, "not configured: no `[dr]` table")
    readiness = await src.dr.readiness(config)
    line = summary_line(readiness)  # "✓ DR in us-west-2: ready · …": the mark is the verdict's
    return Finding(_DR_VERDICTS[readiness.mark], line.split(" ", 1)[1])
