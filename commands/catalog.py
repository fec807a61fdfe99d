"""What each `/dhanam` command takes: usage, flags and examples. Help and the parser share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FlagKind(StrEnum):
    TEXT = "text"  # free text: a quoted token, or every word up to the next flag
    INT = "int"
    BOOL = "bool"
    TIME = "time"  # ISO 8601 with a timezone, or `latest`


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    examples: tuple[str, ...]
    flags: dict[str, FlagKind] = field(default_factory=dict)
    risky: bool = False
    notes: str = ""


_RISKY_FLAGS = {"--reason": FlagKind.TEXT, "--break-glass": FlagKind.BOOL}

COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec(
            "help",
            "help [COMMAND]",
            "Show every command, or one command in detail.",
            ("help", "help deploy"),
        ),
        CommandSpec(
            "deploy",
            "deploy SERVICE ENV TAG [--reason TEXT] [--break-glass]",
            "Roll SERVICE in ENV to the image tagged TAG, after approval.",
            (
                "deploy api production v1.4.2 --reason fix login timeouts",
                "deploy web staging v1.3.0",
            ),
            flags=dict(_RISKY_FLAGS),
            risky=True,
            notes="The tag is resolved to a digest in ECR; an unknown tag is refused.",
        ),
        CommandSpec(
            "rollback",
            "rollback SERVICE ENV [--to REVISION] [--reason TEXT] [--break-glass]",
            "Go back to the revision that ran before the current one (or REVISION).",
            ("rollback api production", "rollback api production --to 41"),
            flags={"--to": FlagKind.INT, **_RISKY_FLAGS},
            risky=True,
        ),
        CommandSpec(
            "scale",
            "scale SERVICE ENV [--min N] [--max N] [--desired N] [--reason TEXT] [--break-glass]",
            "Change the autoscaling bounds and/or the desired task count.",
            ("scale api production --max 15", "scale web production --min 3 --desired 4"),
            flags={
                "--min": FlagKind.INT,
                "--max": FlagKind.INT,
                "--desired": FlagKind.INT,
                **_RISKY_FLAGS,
            },
            risky=True,
        ),
        CommandSpec(
            "db",
            "db restore ENV --to TIME|latest [--reason TEXT] [--break-glass]",
            "Restore the environment's database to a point in time, into a new instance.",
            (
                "db restore production --to latest",
                "db restore production --to 2026-11-26T09:30:00Z",
            ),
            flags={"--to": FlagKind.TIME, **_RISKY_FLAGS},
            risky=True,
            notes="Critical: needs at least 2 approvers. The current database is left untouched.",
        ),
        CommandSpec(
            "run",
            "run SERVICE ENV TASK [--reason TEXT] [--break-glass]",
            "Run one of SERVICE's named one-off tasks (e.g. a migration) in ENV as an ECS task.",
            (
                "run api production migrate --reason schema for v1.4",
                "run api staging migrate-status",
            ),
            flags=dict(_RISKY_FLAGS),
            risky=True,
            notes=(
                "TASK is one of the service's [services.X.tasks.NAME] in the config; it runs with "
                "the service's current task definition and network configuration and is followed "
                "in the card's thread with its log tail. A task with `approvals = 0` runs at once."
            ),
        ),
        CommandSpec(
            "logs",
            "logs SERVICE ENV [--since 15m|2h|TIME] [--grep TEXT] [--limit N]",
            "The service's CloudWatch log lines, newest first, secrets masked.",
            ("logs api production", "logs api production --since 2h --grep timeout --limit 200"),
            flags={"--since": FlagKind.TEXT, "--grep": FlagKind.TEXT, "--limit": FlagKind.INT},
            notes=(
                "--since is a window back from now (30s, 15m, 2h, 1d; at most 14 days) or an "
                "ISO 8601 time with a timezone; the default is 15m. --limit is 1 to 500 "
                "(default 50); more than fits in a message goes up as a file."
            ),
        ),
        CommandSpec(
            "dr",
            "dr status | dr activate [--reason TEXT] [--break-glass]",
            "Disaster recovery: the DR region's readiness, or fail over to it.",
            ("dr status", "dr activate --reason us-east-1 outage"),
            flags=dict(_RISKY_FLAGS),
            risky=True,
            notes="dr activate is critical: it needs at least 2 approvers besides the requester.",
        ),
        CommandSpec(
            "status",
            "status [SERVICE] [ENV]",
            "ECS state, alarms, deploys, health endpoints, approvals and locks.",
            ("status", "status api production"),
        ),
        CommandSpec(
            "lock",
            "lock SERVICE ENV REASON",
            "Hold deploys of SERVICE in ENV until unlocked.",
            ('lock api production "db migration running"', "lock web staging load test"),
        ),
        CommandSpec("unlock", "unlock SERVICE ENV", "Release a lock.", ("unlock api production",)),
        CommandSpec(
            "approvals",
            "approvals",
            "Pending requests you may act on.",
            ("approvals",),
        ),
        CommandSpec("audit", "audit [N]", "The last N audit events (default 20).", ("audit 50",)),
        CommandSpec(
            "incident",
            "incident declare SEV TITLE | update TEXT | status STATE | commander @user | "
            "resolve [SUMMARY]",
            "Declare and run an incident in its own channel.",
            (
                "incident declare sev1 API returning 5xx",
                "incident update rolled back api to v1.2.0",
                "incident status monitoring",
                "incident commander @carol",
                "incident resolve error rate back to normal",
            ),
            notes="SEV is sev1, sev2 or sev3. All but declare run inside the incident channel.",
        ),
    )
}

INCIDENT_SUBCOMMANDS = ("declare", "update", "status", "commander", "resolve")
DB_SUBCOMMANDS = ("restore",)
DR_SUBCOMMANDS = ("status", "activate")
