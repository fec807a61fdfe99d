"""The sandbox's CloudWatch Logs: the log groups the seeded task definitions name
(`/ecs/dhanam-api`, `/ecs/dhanam-web`, see aws_world._container) with two task streams each
(`<prefix>/<container>/<task id>`), and two hours of lines, one every 10 s, newest at seeding
time: a mix of INFO, WARN and ERROR, JSON (api) and plain text (web), some with "timeout" in
them (for --grep), and a few carrying something secret-looking, to show the masking. 720 lines
per group: `--since 2h --limit 500` is more than fits inline, so it goes up as a file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

LOG_GROUPS = {"dhanam-api": ("/ecs/dhanam-api", "api"), "dhanam-web": ("/ecs/dhanam-web", "web")}
LINES = 720
EVERY = timedelta(seconds=10)
# Secret-looking values some lines carry: the console and the tests check none reaches Slack.
SANDBOX_LOG_SECRETS = (
    "sk_live_51HdhanamSandboxNotARealKey",
    "Pg-s4ndbox-pa55word",
    "AKIAZZSANDBOXLOGS123",
)
_ROUTES = ("/v1/accounts", "/v1/transactions", "/v1/budgets", "/health", "/v1/sync/belvo")
_PAGES = ("/dashboard", "/accounts", "/budgets", "/login", "/settings")


def _api_line(rng: random.Random, index: int) -> str:
    if index % 97 == 5:
        return json.dumps(
            {
                "level": "warn",
                "msg": "plaid webhook retry",
                "headers": {"authorization": f"Bearer {SANDBOX_LOG_SECRETS[0]}"},
            }
        )
    if index % 131 == 9:
        return (
            "ERROR prisma: connection failed to "
            f"postgres://dhanam:{SANDBOX_LOG_SECRETS[1]}@dhanam-production.db.internal:5432/dhanam"
        )
    if index % 23 == 3:
        return json.dumps(
            {"level": "error", "msg": "belvo sync timeout after 30000 ms", "institution": "bbva_mx"}
        )
    if index % 11 == 4:
        return json.dumps({"level": "warn", "msg": "slow query", "ms": rng.randint(800, 3000)})
    route = rng.choice(_ROUTES)
    status = rng.choice((200, 200, 200, 201, 204, 304))
    return json.dumps(
        {"level": "info", "msg": f"GET {route} {status}", "responseTime": rng.randint(3, 250)}
    )


def _web_line(rng: random.Random, index: int) -> str:
    if index % 113 == 7:
        return f"WARN  upload helper still uses access key {SANDBOX_LOG_SECRETS[2]}"
    if index % 29 == 6:
        return "ERROR upstream timeout: GET http://dhanam-api.dhanam.internal:3000/v1/budgets"
    if index % 13 == 2:
        return "WARN  render took 1.8 s for /dashboard (see https://nextjs.org/docs/messages)"
    page = rng.choice(_PAGES)
    return f"INFO  GET {page} 200 {rng.randint(4, 90)}ms"


def seed_logs(
    endpoint_url: str,
    region: str,
    *,
    credentials: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Create the log groups, streams and lines; returns {service: log group}."""
    options: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region}
    options.update(credentials or {})
    logs: Any = boto3.client("logs", **options)
    end = now or datetime.now(UTC)
    created: dict[str, str] = {}
    for service, (group, container) in LOG_GROUPS.items():
        logs.create_log_group(logGroupName=group, tags={"app": "dhanam"})
        rng = random.Random(service)  # noqa: S311 - made-up log lines, not a secret
        tasks = [f"{rng.getrandbits(128):032x}" for _ in range(2)]
        streams = [f"{container}/{container}/{task}" for task in tasks]
        batches: dict[str, list[dict[str, Any]]] = {stream: [] for stream in streams}
        line = _api_line if service == "dhanam-api" else _web_line
        for age in range(LINES - 1, -1, -1):  # oldest first, as put_log_events wants them
            at = end - EVERY * age
            batches[streams[age % 2]].append(
                {"timestamp": int(at.timestamp() * 1000), "message": line(rng, age)}
            )
        for stream, events in batches.items():
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        created[service] = group
    return created
