"""deploy/iam-policy.json passes parliament (scripts/audit_iam.py, run by `make lint`) with only
the documented acceptances, and its scoped statements cover the ARNs the sandbox world has and
nothing outside the Dhanam naming. moto evaluates no IAM, so this is where the Resource and
Condition elements are checked; tests/integration/test_iam_policy.py checks the actions."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sandbox.aws_world import ALARM_NAMES, CLUSTERS, DB_INSTANCE, REVISION_TAGS, SERVICES
from scripts import audit_iam

ROOT = Path(__file__).resolve().parents[2]
POLICY_PATH = ROOT / "deploy" / "iam-policy.json"
REGION, ACCOUNT = "us-east-1", "123456789012"
# The roles seed_dhanam_world gives the task definitions (execution and task role).
SANDBOX_ROLES = ("dhanam-ecs-execution", "dhanam-api-task")
ECS_TARGET = {
    "application-autoscaling:service-namespace": "ecs",
    "application-autoscaling:scalable-dimension": "ecs:service:DesiredCount",
}


def policy() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(POLICY_PATH.read_text())
    return loaded


def statement(doc: Mapping[str, Any], sid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in doc["Statement"] if s["Sid"] == sid)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters (`/` and `:` included), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags) is not None


def allowed(
    doc: Mapping[str, Any], action: str, arn: str, context: Mapping[str, str] | None = None
) -> bool:
    """An identity policy's verdict for one request (Allow statements; StringEquals and
    ArnLike conditions, a missing key failing the condition as in IAM)."""
    context = context or {}
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow"
        operators = set(s.get("Condition", {}))
        known = {"StringEquals", "ArnLike", "ForAllValues:StringEquals"}
        assert operators <= known, "teach allowed() the operator"
        if not any(iam_match(a, action, case_sensitive=False) for a in as_list(s["Action"])):
            continue
        if not any(iam_match(r, arn) for r in as_list(s["Resource"])):
            continue
        equals = s.get("Condition", {}).get("StringEquals", {})
        like = s.get("Condition", {}).get("ArnLike", {})
        # A multivalued key (a request's record names): every value must be allowed. A
        # request here always carries the key (IAM would pass an absent one).
        every = s.get("Condition", {}).get("ForAllValues:StringEquals", {})
        if (
            all(context.get(k) in as_list(v) for k, v in equals.items())
            and all(
                k in context and any(iam_match(p, context[k]) for p in as_list(v))
                for k, v in like.items()
            )
            and all(
                k in context and set(context[k].split(",")) <= set(as_list(v))
                for k, v in every.items()
            )
        ):
            return True
    return False


def arn(service: str, resource: str, *, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def sandbox_requests() -> list[tuple[str, str, dict[str, str]]]:
    """(action, resource ARN, request context) for every scoped call on the sandbox world."""
    requests: list[tuple[str, str, dict[str, str]]] = []
    for cluster in CLUSTERS:
        for service in SERVICES:
            service_arn = arn("ecs", f"service/{cluster}/{service}")
            requests += [
                ("ecs:DescribeServices", service_arn, {}),
                ("ecs:UpdateService", service_arn, {}),
            ]
        task = arn("ecs", f"task/{cluster}/0dc040b1e04e43738e51f86d322b5ec2")
        requests += [("ecs:DescribeTasks", task, {}), ("ecs:StopTask", task, {})]
        in_cluster = {"ecs:cluster": arn("ecs", f"cluster/{cluster}")}
        requests.append(("ecs:ListTasks", "*", in_cluster))
    next_revision = max(REVISION_TAGS) + 1  # what deploy registers
    for family in SERVICES:
        for revision in [*REVISION_TAGS, next_revision]:
            task_definition = arn("ecs", f"task-definition/{family}:{revision}")
            requests += [
                ("ecs:RegisterTaskDefinition", task_definition, {}),
                ("ecs:TagResource", task_definition, {}),
            ]
        requests.append(("ecr:DescribeImages", arn("ecr", f"repository/{family}"), {}))
        for cluster in CLUSTERS:
            requests.append(
                (
                    "ecs:RunTask",
                    arn("ecs", f"task-definition/{family}:3"),
                    {"ecs:cluster": arn("ecs", f"cluster/{cluster}")},
                )
            )
        group = f"/ecs/{family}"  # the awslogs group of the seeded task definitions
        stream = f"{group}:log-stream:api/api/0dc040b1e04e4373"
        requests.append(("logs:GetLogEvents", arn("logs", f"log-group:{stream}"), {}))
        requests.append(("logs:FilterLogEvents", arn("logs", f"log-group:{group}"), {}))
    requests += [
        ("cloudwatch:DescribeAlarms", arn("cloudwatch", f"alarm:{a}"), {}) for a in ALARM_NAMES
    ]
    requests += [
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/{role}",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        )
        for role in SANDBOX_ROLES
    ]
    # A scalable target's ARN ends in an id AWS (and moto) generate, never the service's name.
    target = arn("application-autoscaling", "scalable-target/0a1b2c3d4e5f60718293a4b5c6d7e8f90123")
    requests.append(("application-autoscaling:RegisterScalableTarget", target, ECS_TARGET))
    restored = f"{DB_INSTANCE}-restore-0123abcd"
    for action in ("rds:RestoreDBInstanceToPointInTime", "rds:AddTagsToResource"):
        requests += [(action, arn("rds", f"db:{name}"), {}) for name in (DB_INSTANCE, restored)]
    requests.append(("rds:DescribeDBInstances", arn("rds", f"db:{DB_INSTANCE}"), {}))
    replica = arn("rds", f"db:{DB_INSTANCE}-dr", region="us-west-2")
    requests.append(("rds:DescribeDBInstanceAutomatedBackups", replica, {}))
    requests.append(("route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z0DHANAM", {}))
    return requests


def denied_sandbox_requests(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(a, r) for a, r, context in sandbox_requests() if not allowed(doc, a, r, context)]


def test_the_policy_has_no_finding_but_the_accepted_ones() -> None:
    findings = audit_iam.audit(POLICY_PATH.read_text())
    assert audit_iam.unaccepted(findings) == []
    assert {(f.issue, f.sid) for f in findings} == set(audit_iam.ACCEPTED_FINDINGS)
    assert audit_iam.main([str(POLICY_PATH)]) == 0


def test_the_four_reported_actions_are_scoped_now() -> None:
    doc = policy()
    for action in (
        "ecs:DescribeServices",
        "ecs:RegisterTaskDefinition",
        "cloudwatch:DescribeAlarms",
        "application-autoscaling:RegisterScalableTarget",
    ):
        granting = [s for s in doc["Statement"] if action in as_list(s["Action"])]
        assert len(granting) == 1, action
        resources = as_list(granting[0]["Resource"])
        assert "*" not in resources, action
        # Each pattern is of a resource type the action takes (parliament's data).
        types = audit_iam.resource_types(action)
        formats = [re.sub(r"\$\{.*?\}", "*", f) for f in types.values()]
        for resource in resources:
            assert any(iam_match(f.replace("${Partition}", "*"), resource) for f in formats), (
                action,
                resource,
                formats,
            )


def test_every_sandbox_arn_is_allowed_and_other_names_are_not() -> None:
    doc = policy()
    assert denied_sandbox_requests(doc) == []
    outside = [
        ("ecs:DescribeServices", arn("ecs", "service/payments-production/dhanam-api"), {}),
        ("ecs:UpdateService", arn("ecs", "service/dhanam-production/payments"), {}),
        ("ecs:RegisterTaskDefinition", arn("ecs", "task-definition/payments:1"), {}),
        ("cloudwatch:DescribeAlarms", arn("cloudwatch", "alarm:payments-5xx"), {}),
        ("ecr:DescribeImages", arn("ecr", "repository/payments"), {}),
        ("rds:RestoreDBInstanceToPointInTime", arn("rds", "db:payments"), {}),
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/admin",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
        # The right role, passed to another service.
        (
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/{SANDBOX_ROLES[1]}",
            {"iam:PassedToService": "lambda.amazonaws.com"},
        ),
        # A scalable target of another namespace or dimension.
        (
            "application-autoscaling:RegisterScalableTarget",
            arn("application-autoscaling", "scalable-target/0123"),
            {**ECS_TARGET, "application-autoscaling:service-namespace": "dynamodb"},
        ),
        (
            "application-autoscaling:RegisterScalableTarget",
            arn("application-autoscaling", "scalable-target/0123"),
            {**ECS_TARGET, "application-autoscaling:scalable-dimension": "ecs:service:Other"},
        ),
        ("ecs:DeleteService", arn("ecs", "service/dhanam-production/dhanam-api"), {}),
    ]
    assert [(a, r) for a, r, c in outside if allowed(doc, a, r, c)] == []


def test_a_mis_scoped_pattern_leaves_sandbox_arns_out() -> None:
    doc = policy()
    # The alarm ARN has `alarm:NAME`, not `alarm/NAME`; a service ARN names its cluster first.
    statement(doc, "CloudWatchReadDhanamAlarms")["Resource"] = (
        "arn:aws:cloudwatch:*:*:alarm/dhanam-*"
    )
    statement(doc, "EcsReadDhanamServices")["Resource"] = "arn:aws:ecs:*:*:service/dhanam-api*"
    denied = denied_sandbox_requests(doc)
    assert {a for a, _ in denied} == {"cloudwatch:DescribeAlarms", "ecs:DescribeServices"}
    assert len(denied) == len(ALARM_NAMES) + len(CLUSTERS) * len(SERVICES)


def test_the_audit_catches_resource_star_back_on_describe_services(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = policy()
    statement(doc, "EcsReadDhanamServices")["Resource"] = "*"
    findings = audit_iam.unaccepted(audit_iam.audit(json.dumps(doc, indent=2)))
    assert {(f.issue, f.sid, f.detail) for f in findings} == {
        ("RESOURCE_STAR", "EcsReadDhanamServices", "ecs:DescribeServices"),
        ("UNACCEPTED_RESOURCE_STAR", "EcsReadDhanamServices", "ecs:DescribeServices"),
    }
    changed = tmp_path / "iam-policy.json"
    changed.write_text(json.dumps(doc, indent=2))
    assert audit_iam.main([str(changed)]) == 1
    out = capsys.readouterr().out
    assert "NOT ACCEPTED line 4, statement EcsReadDhanamServices: RESOURCE_STAR" in out


def test_a_scopable_action_slipped_into_an_accepted_star_statement_is_caught() -> None:
    doc = policy()
    sid = next(iter(audit_iam.ACCEPTED_RESOURCE_STAR))
    statement(doc, sid)["Action"].append("ecs:StopTask")
    issues = {(f.issue, f.sid) for f in audit_iam.unaccepted(audit_iam.audit(json.dumps(doc)))}
    assert issues == {("RESOURCE_STAR", sid), ("UNACCEPTED_RESOURCE_STAR", sid)}


def test_an_acceptance_holds_only_for_the_statement_it_names() -> None:
    doc = policy()
    # Another permissions-management action elsewhere: the policy-wide finding is no longer
    # the PassRole statement's alone, so it is not accepted.
    doc["Statement"].append(
        {
            "Sid": "EcrSetPolicies",
            "Effect": "Allow",
            "Action": "ecr:SetRepositoryPolicy",
            "Resource": "arn:aws:ecr:*:*:repository/dhanam-*",
        }
    )
    issues = {(f.issue, f.sid) for f in audit_iam.unaccepted(audit_iam.audit(json.dumps(doc)))}
    assert ("PERMISSIONS_MANAGEMENT_ACTIONS", None) in issues


def test_acceptances_that_match_nothing_are_findings() -> None:
    doc = copy.deepcopy(policy())
    gone = next(
        sid
        for sid, actions in audit_iam.ACCEPTED_RESOURCE_STAR.items()
        if "GetMetricData" in str(actions)
    )
    doc["Statement"] = [s for s in doc["Statement"] if s["Sid"] != gone]
    doc["Statement"] = [s for s in doc["Statement"] if s["Action"] != "iam:PassRole"]
    issues = {(f.issue, f.sid) for f in audit_iam.unaccepted(audit_iam.audit(json.dumps(doc)))}
    assert issues == {
        ("STALE_ACCEPTANCE", gone),
        ("STALE_ACCEPTANCE", "PassTheTaskRolesOfCopiedRevisions"),
    }


def test_every_star_statement_is_justified_by_the_data() -> None:
    doc = policy()
    stars = {s["Sid"]: set(as_list(s["Action"])) for s in doc["Statement"] if s["Resource"] == "*"}
    scoped = {sid: set(actions) for sid, (actions, _) in audit_iam.CONDITION_SCOPED_STAR.items()}
    assert stars == {sid: set(a) for sid, a in audit_iam.ACCEPTED_RESOURCE_STAR.items()} | scoped
    for sid, actions in stars.items():
        assert audit_iam.STAR_SID_MARK in sid
        if sid not in scoped:  # those have a resource type IAM does not check; a key scopes them
            assert all(audit_iam.resource_types(a) == {} for a in actions), sid


@pytest.mark.parametrize(
    ("action", "resource_type"),
    [
        # Issue 15's actions, for whoever adds them: the resource each must be scoped to.
        ("ecs:RunTask", "task-definition*"),
        ("ecs:DescribeTasks", "task*"),
        ("ecs:StopTask", "task*"),
        ("logs:GetLogEvents", "log-stream*"),
        ("logs:FilterLogEvents", "log-group*"),
        ("iam:PassRole", "role*"),
    ],
)
def test_resource_types_of_the_actions_to_come(action: str, resource_type: str) -> None:
    assert list(audit_iam.resource_types(action)) == [resource_type]


def test_a_malformed_policy_is_a_finding() -> None:
    findings = audit_iam.audit('{"Version": ')
    assert [f.issue for f in audit_iam.unaccepted(findings)] == ["MALFORMED_JSON"]


def test_list_tasks_star_is_accepted_only_with_the_cluster_condition() -> None:
    doc = policy()
    sid = next(iter(audit_iam.CONDITION_SCOPED_STAR))
    statement = next(s for s in doc["Statement"] if s["Sid"] == sid)
    # Allowed in the Dhanam clusters, not in another cluster, not without the key.
    mine = {"ecs:cluster": arn("ecs", "cluster/dhanam-production")}
    other = {"ecs:cluster": arn("ecs", "cluster/payments")}
    assert allowed(doc, "ecs:ListTasks", "*", mine)
    assert not allowed(doc, "ecs:ListTasks", "*", other)
    assert not allowed(doc, "ecs:ListTasks", "*", {})
    # The audit refuses the same "*" once the condition is gone, or another action joins it.
    for broken in ({"Condition": {}}, {"Action": ["ecs:ListTasks", "ecs:StopTask"]}):
        changed = json.loads(json.dumps(doc))
        target = next(s for s in changed["Statement"] if s["Sid"] == sid)
        target.update(broken)
        issues = {f.issue for f in audit_iam.unaccepted(audit_iam.audit(json.dumps(changed)))}
        assert "UNACCEPTED_RESOURCE_STAR" in issues, broken
    assert statement["Resource"] == "*"


def test_run_task_is_limited_to_the_dhanam_clusters() -> None:
    doc = policy()
    definition = arn("ecs", "task-definition/dhanam-api:3")
    assert allowed(doc, "ecs:RunTask", definition, {"ecs:cluster": arn("ecs", "cluster/dhanam-x")})
    assert not allowed(
        doc, "ecs:RunTask", definition, {"ecs:cluster": arn("ecs", "cluster/payments")}
    )


UPSERT_API = {
    "route53:ChangeResourceRecordSetsNormalizedRecordNames": "api.dhanam.io",
    "route53:ChangeResourceRecordSetsRecordTypes": "CNAME",
    "route53:ChangeResourceRecordSetsActions": "UPSERT",
}


def test_dr_may_change_only_its_failover_record_and_promote_only_the_dr_replica() -> None:
    doc = policy()
    zone = "arn:aws:route53:::hostedzone/Z0DHANAMSANDBOXDR"
    assert allowed(doc, "route53:ChangeResourceRecordSets", zone, UPSERT_API)
    for key, value in (
        ("route53:ChangeResourceRecordSetsNormalizedRecordNames", "dhanam.io"),  # the apex
        ("route53:ChangeResourceRecordSetsNormalizedRecordNames", "api.dhanam.io,mx.dhanam.io"),
        ("route53:ChangeResourceRecordSetsRecordTypes", "MX"),
        ("route53:ChangeResourceRecordSetsActions", "DELETE"),
    ):
        assert not allowed(
            doc, "route53:ChangeResourceRecordSets", zone, {**UPSERT_API, key: value}
        ), (key, value)
    replica = arn("rds", f"db:{DB_INSTANCE}-dr", region="us-west-2")
    assert allowed(doc, "rds:PromoteReadReplica", replica)
    assert not allowed(doc, "rds:PromoteReadReplica", arn("rds", f"db:{DB_INSTANCE}-dr"))
    assert not allowed(doc, "rds:PromoteReadReplica", arn("rds", "db:dhanam-production-reader"))
