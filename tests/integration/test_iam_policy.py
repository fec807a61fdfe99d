"""deploy/iam-policy.json grants exactly what the bot calls (and what those calls imply)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integrations.aws.iam import load_policy, missing, policy_actions
from sandbox.world import SandboxWorld, buttons_of

POLICY = Path(__file__).resolve().parents[2] / "deploy" / "iam-policy.json"
# Granted without an API call of their own: passing the task roles of a copied revision, and
# tagging on create (RegisterTaskDefinition and RestoreDBInstanceToPointInTime with Tags).
IMPLIED = {"iam:PassRole", "ecs:TagResource", "rds:AddTagsToResource"}


async def approve_newest(world: SandboxWorld, *approvers: str) -> None:
    await world.settle()
    cards = [
        m
        for m in world.slack.messages("C0DEPLOYS") + world.slack.messages("C0OPS")
        if buttons_of(m.blocks or []) and not m.is_reply
    ]
    card = max(cards, key=lambda m: float(m.ts)).snapshot()
    approve = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    for user in approvers:
        await world.click(card, approve, user=user)
        await world.settle()


async def test_every_command_stays_inside_the_policy(
    aws_bot: SandboxWorld, record_aws_operations: set[str]
) -> None:
    before = set(record_aws_operations)
    record_aws_operations.clear()
    try:
        await aws_bot.slash("deploy api production v1.3.0", user="alice")
        await approve_newest(aws_bot, "bob")
        await aws_bot.slash("rollback api production", user="alice")
        await approve_newest(aws_bot, "bob")
        await aws_bot.slash("scale api production --max 12", user="alice")
        await approve_newest(aws_bot, "bob")
        await aws_bot.slash("db restore production --to latest", user="alice")
        await approve_newest(aws_bot, "bob", "carol")
        await aws_bot.slash("run api production migrate", user="alice")  # a one-off task
        await approve_newest(aws_bot, "bob")
        await aws_bot.slash("dr activate", user="alice")  # promote, scale, UPSERT + GetChange
        await approve_newest(aws_bot, "bob", "carol")
        await aws_bot.slash("status api production", user="bob")  # CloudWatch GetMetricData
        await aws_bot.slash("logs api production --grep error", user="bob")
        await aws_bot.slash("dr status", user="bob")
        # The sev1 checklist's checks: AWS Health, CloudFront found by alias, RDS, logs, DR.
        await aws_bot.slash("incident declare sev1 Outage drill", user="alice")
        await aws_bot.settle()
        recorded = set(record_aws_operations)
    finally:
        record_aws_operations.update(before)
    expected_calls = {
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:UpdateService",
        "ecr:DescribeImages",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:GetMetricData",
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "rds:DescribeDBInstances",
        "rds:RestoreDBInstanceToPointInTime",
        "rds:PromoteReadReplica",
        "rds:AddTagsToResource",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "ecs:ListTasks",
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "route53:ListResourceRecordSets",
        "health:DescribeEvents",
        "cloudfront:ListDistributions",
    }
    assert expected_calls <= recorded, expected_calls - recorded
    granted = load_policy(POLICY)
    assert missing(recorded, granted) == set()
    # Exactly: nothing granted that the bot neither calls nor needs implicitly.
    unused = {g for g in granted if g not in recorded and g not in IMPLIED}
    # ListTaskDefinitions: rollback's fallback path; StopTask: only at a one-off task's timeout
    # (tests/scenario/test_run_task.py records it); DescribeDBInstanceAutomatedBackups: dr status
    # when [dr] names automated_backup_arn instead of a replica (the sandbox has a replica);
    # GetDistribution: the checklist with `[outage] cloudfront_distribution_id` (the sandbox
    # finds the distribution by alias; tests/scenario/test_outage_checklist.py records it).
    optional = {
        "ecs:ListTaskDefinitions",
        "ecs:StopTask",
        "rds:DescribeDBInstanceAutomatedBackups",
        "cloudfront:GetDistribution",
    }
    assert unused <= optional, unused


def test_the_check_fails_when_an_action_is_removed() -> None:
    policy: dict[str, Any] = json.loads(POLICY.read_text())
    recorded = {"ecs:UpdateService", "ecr:DescribeImages", "rds:DescribeDBInstances"}
    assert missing(recorded, policy_actions(policy)) == set()
    for statement in policy["Statement"]:
        if "ecs:UpdateService" in statement["Action"]:
            statement["Action"].remove("ecs:UpdateService")
    assert missing(recorded, policy_actions(policy)) == {"ecs:UpdateService"}


def test_wildcards_and_case() -> None:
    granted = {"ecs:Describe*", "RDS:restoreDBInstanceToPointInTime"}
    assert missing({"ecs:DescribeServices", "rds:RestoreDBInstanceToPointInTime"}, granted) == set()
    assert missing({"ecs:UpdateService"}, granted) == {"ecs:UpdateService"}


def test_policy_is_well_formed() -> None:
    policy = json.loads(POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert "*" not in policy_actions(policy)
