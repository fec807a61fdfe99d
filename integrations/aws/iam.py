"""Least privilege: the IAM actions of a policy document, and which recorded calls it misses.

Some permissions are needed without an API call of their own (iam:PassRole for a task
definition's roles, ecs:TagResource and rds:AddTagsToResource for tags given on create); the
policy carries those beside the actions the bot calls.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import Path

# boto3 client name -> IAM service prefix (they differ for some services).
IAM_PREFIX = {
    "ecs": "ecs",
    "ecr": "ecr",
    "cloudwatch": "cloudwatch",
    "application-autoscaling": "application-autoscaling",
    "rds": "rds",
}


def iam_action(client_name: str, operation: str) -> str:
    return f"{IAM_PREFIX.get(client_name, client_name)}:{operation}"


def policy_actions(policy: dict[str, object]) -> set[str]:
    """Every action an Allow statement grants (wildcards kept as written)."""
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    actions: set[str] = set()
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        granted = statement.get("Action", [])
        actions.update([granted] if isinstance(granted, str) else list(granted))
    return actions


def load_policy(path: Path) -> set[str]:
    return policy_actions(json.loads(path.read_text()))


def missing(recorded: Iterable[str], granted: set[str]) -> set[str]:
    """The recorded actions that no granted action (IAM matching is case-insensitive) covers."""
    lowered = [g.lower() for g in granted]
    return {
        action
        for action in recorded
        if not any(fnmatch.fnmatchcase(action.lower(), pattern) for pattern in lowered)
    }
