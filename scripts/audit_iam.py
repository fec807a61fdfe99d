"""Audit deploy/iam-policy.json with parliament (the IAM policy auditor); `make lint` runs it.

    .venv/bin/python scripts/audit_iam.py                     # audit deploy/iam-policy.json
    .venv/bin/python scripts/audit_iam.py POLICY.json         # audit another file
    .venv/bin/python scripts/audit_iam.py --explain ecs:RunTask   # the resource ARNs it takes

Exit 1 when there is any finding not accepted below, each printed with its statement's Sid.
parliament runs through its Python API with its community auditors: its command line refuses
`--file` when it thinks stdin is piped (as under make), and reads nothing else we need.

What is accepted, and only that:

* ``ACCEPTED_RESOURCE_STAR``: the statements that keep ``Resource: "*"``, by Sid and exact action
  list. Each action in them must have no resource type in the Service Authorization Reference
  (parliament's copy), so AWS allows nothing narrower; the Sid says so (``...ResourceStarBecause
  ...``). Any other ``"*"`` is a finding, and so is an entry here that matches no statement.
* ``ACCEPTED_FINDINGS``: parliament findings, by issue and the one statement that raises it on
  its own. A finding raised by the policy as a whole (a combination of statements) is never
  accepted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsoncfg  # type: ignore[import-untyped]
import parliament  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "deploy" / "iam-policy.json"
STAR_SID_MARK = "ResourceStarBecause"

# Sid -> the actions that statement grants on "*". Each action has no resource type.
ACCEPTED_RESOURCE_STAR: Mapping[str, frozenset[str]] = {
    # Task definitions are read by family:revision; IAM has no task-definition resource for
    # these two reads (they are evaluated against "*" whatever the request names).
    "EcsReadTaskDefinitionsResourceStarBecauseDescribeAndListTaskDefinitionsHaveNoResourceType": (
        frozenset({"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"})
    ),
    # Metrics are not resources in IAM: GetMetricData takes only "*".
    "CloudWatchReadLoadBalancerMetricsForStatusResourceStarBecauseGetMetricDataHasNoResourceType": (
        frozenset({"cloudwatch:GetMetricData"})
    ),
    # The sev1 checklist: AWS Health's events and CloudFront's list are not IAM resources.
    "HealthReadOpenIssuesForTheSev1ChecklistResourceStarBecauseDescribeEventsHasNoResourceType": (
        frozenset({"health:DescribeEvents"})
    ),
    "CloudFrontFindTheDistributionByAliasResourceStarBecauseListDistributionsHasNoResourceType": (
        frozenset({"cloudfront:ListDistributions"})
    ),
    # A read of the bounds; no resource type and no condition key.
    "ApplicationAutoScalingReadBoundsResourceStarBecauseDescribeScalableTargetsHasNoResourceType": (
        frozenset({"application-autoscaling:DescribeScalableTargets"})
    ),
}

# Statements that keep Resource "*" for actions that do have a resource type, because IAM does
# not evaluate them against it, and that a condition key scopes instead: Sid -> (the exact
# actions, the condition key the statement must use). Their RESOURCE_STAR finding must be in
# ACCEPTED_FINDINGS with the reason.
CONDITION_SCOPED_STAR: Mapping[str, tuple[frozenset[str], str]] = {
    "EcsListTasksResourceStarBecauseIamChecksListTasksByTheEcsClusterConditionKey": (
        frozenset({"ecs:ListTasks"}),
        "ecs:cluster",
    ),
}

# (parliament issue, Sid of the statement that raises it alone) -> why it is accepted.
ACCEPTED_FINDINGS: Mapping[tuple[str, str], str] = {
    (
        "RESOURCE_STAR",
        "EcsListTasksResourceStarBecauseIamChecksListTasksByTheEcsClusterConditionKey",
    ): (
        "ecs:ListTasks names container-instance as its resource type, but a Fargate cluster has"
        ' no container instances and IAM evaluates ListTasks against Resource "*" with the'
        " ecs:cluster condition key (awsdocs/amazon-ecs-developer-guide#211): the statement is"
        " limited to clusters named dhanam-* by that condition"
    ),
    ("PERMISSIONS_MANAGEMENT_ACTIONS", "PassTheTaskRolesOfCopiedRevisions"): (
        "iam:PassRole is needed to register a revision that keeps its task and execution roles;"
        " it is limited to roles named dhanam-* and to iam:PassedToService ecs-tasks.amazonaws.com"
    ),
}

# The community auditors' issues (PERMISSIONS_MANAGEMENT_ACTIONS, ...) have their titles and
# severities in an override file that only parliament's command line loads.
parliament.override_config(
    str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
)


@dataclass(frozen=True)
class Finding:
    issue: str
    severity: str
    title: str
    detail: str
    sid: str | None  # the statement it belongs to; None when raised by the policy as a whole
    line: int | None = None
    accepted_because: str | None = None

    def describe(self) -> str:
        where = f"line {self.line}, " if self.line else ""
        where += f"statement {self.sid}" if self.sid else "the policy as a whole"
        text = f"{where}: {self.issue}"
        if self.severity:
            text += f" ({self.severity})"
        if self.title:
            text += f" — {self.title.strip()}"
        if self.detail:
            text += f": {self.detail}"
        if self.accepted_because:
            text += f"\n      accepted: {self.accepted_because}"
        return text


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_types(action: str) -> dict[str, str]:
    """The resource types ``action`` takes in parliament's Service Authorization Reference, as
    {type: ARN format}; a trailing ``*`` on the type means required. Empty: only "*" works."""
    prefix, _, name = action.partition(":")
    for service in parliament.iam_definition:
        if service["prefix"] != prefix.lower():
            continue
        arns = {r["resource"]: r["arn"] for r in service["resources"]}
        for privilege in service["privileges"]:
            if privilege["privilege"].lower() == name.lower():
                return {
                    t["resource_type"]: arns.get(t["resource_type"].rstrip("*"), "")
                    for t in privilege["resource_types"]
                    if t["resource_type"]
                }
    raise KeyError(f"{action} is not in parliament's IAM data")


def _parliament(text: str) -> list[Any]:
    analyzed = parliament.analyze_policy_string(text, include_community_auditors=True)
    return [parliament.enhance_finding(f) for f in analyzed.findings]


def _detail(finding: Any) -> str:
    detail = finding.detail
    if isinstance(detail, list | tuple):
        return ", ".join(str(d) for d in detail)
    return str(detail or "")


def _statement_starts(text: str, sids: Sequence[str]) -> list[tuple[tuple[int, int], str]]:
    """((line, column), Sid) of each statement of the policy's text, as parliament locates them."""

    def start(node: Any) -> tuple[int, int]:
        location = jsoncfg.node_location(node)
        return (location.line, location.column)

    statements = jsoncfg.loads_config(text).Statement
    if not isinstance(statements, jsoncfg.config_classes.ConfigJSONArray):
        return [(start(statements), sids[0])]
    return [(start(s), sid) for s, sid in zip(statements, sids, strict=True)]


def _parliament_findings(text: str, policy: Mapping[str, Any]) -> list[Finding]:
    statements = as_list(policy["Statement"])
    # Who raises what on its own: (issue, detail) -> Sids.
    alone: dict[tuple[str, str], set[str]] = {}
    for statement in statements:
        for f in _parliament(json.dumps({**policy, "Statement": [statement]})):
            alone.setdefault((f.issue, _detail(f)), set()).add(str(statement.get("Sid", "")))
    starts = _statement_starts(text, [str(s.get("Sid", "")) for s in statements])
    findings = []
    for f in _parliament(text):
        location = f.location if isinstance(f.location, dict) else {}
        line = location.get("line")
        raisers = alone.get((f.issue, _detail(f)), set())
        sid: str | None = None
        owned = False
        if line is not None:  # raised at a statement (or inside one)
            at = [s for begin, s in starts if begin <= (line, location.get("column", 0))]
            sid = at[-1] if at else None
            owned = sid in raisers
        elif len(raisers) == 1:  # raised by the policy, but one statement alone raises it
            sid, owned = next(iter(raisers)), True
        because = ACCEPTED_FINDINGS.get((f.issue, sid)) if owned and sid is not None else None
        findings.append(
            Finding(f.issue, f.severity, f.title, _detail(f), sid, line, accepted_because=because)
        )
    return findings


def _resource_star_findings(policy: Mapping[str, Any]) -> list[Finding]:
    findings = []
    seen: set[str] = set()
    for statement in as_list(policy["Statement"]):
        sid = str(statement.get("Sid", ""))
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource")):
            continue
        actions = frozenset(as_list(statement.get("Action", [])))
        if sid in CONDITION_SCOPED_STAR:
            seen.add(sid)
            findings += _condition_scoped(statement, sid, actions)
            continue
        accepted = ACCEPTED_RESOURCE_STAR.get(sid)
        if accepted is not None:
            seen.add(sid)
        if accepted is None or {a.lower() for a in accepted} != {a.lower() for a in actions}:
            findings.append(
                Finding(
                    "UNACCEPTED_RESOURCE_STAR",
                    "HIGH",
                    'Resource "*" outside ACCEPTED_RESOURCE_STAR (scripts/audit_iam.py)',
                    ", ".join(sorted(actions)),
                    sid,
                )
            )
            continue
        if STAR_SID_MARK not in sid:
            findings.append(
                Finding("STAR_SID_WITHOUT_REASON", "LOW", f"the Sid lacks {STAR_SID_MARK}", "", sid)
            )
        for action in sorted(actions):
            if types := resource_types(action):
                findings.append(
                    Finding(
                        "STAR_BUT_ACTION_HAS_RESOURCE_TYPE",
                        "HIGH",
                        "scope it to its resource types",
                        f"{action}: {', '.join(f'{t} {a}' for t, a in types.items())}",
                        sid,
                    )
                )
    findings.extend(
        Finding("STALE_ACCEPTANCE", "LOW", "ACCEPTED_RESOURCE_STAR names no statement", "", sid)
        for sid in sorted((set(ACCEPTED_RESOURCE_STAR) | set(CONDITION_SCOPED_STAR)) - seen)
    )
    return findings


def _condition_scoped(
    statement: Mapping[str, Any], sid: str, actions: frozenset[str]
) -> list[Finding]:
    """A CONDITION_SCOPED_STAR statement: exactly its actions, and its condition key used."""
    wanted, key = CONDITION_SCOPED_STAR[sid]
    keys = {k.lower() for op in (statement.get("Condition") or {}).values() for k in op}
    if {a.lower() for a in wanted} == {a.lower() for a in actions} and key.lower() in keys:
        return []
    return [
        Finding(
            "UNACCEPTED_RESOURCE_STAR",
            "HIGH",
            f'Resource "*" is accepted here only for {", ".join(sorted(wanted))} scoped by {key}',
            ", ".join(sorted(actions)),
            sid,
        )
    ]


def audit(text: str) -> list[Finding]:
    """Every finding on the policy ``text``; the accepted ones carry ``accepted_because``.
    Malformed JSON is parliament's MALFORMED_JSON finding."""
    try:
        policy = json.loads(text)
    except ValueError:
        policy = None
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list | dict):
        return [Finding(f.issue, f.severity, f.title, _detail(f), None) for f in _parliament(text)]
    findings = _parliament_findings(text, policy) + _resource_star_findings(policy)
    used = {(f.issue, f.sid) for f in findings if f.accepted_because}
    findings.extend(
        Finding("STALE_ACCEPTANCE", "LOW", "ACCEPTED_FINDINGS names no finding", issue, sid)
        for issue, sid in sorted(set(ACCEPTED_FINDINGS) - used)
    )
    return findings


def unaccepted(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.accepted_because is None]


def report(path: Path, findings: Sequence[Finding]) -> str:
    bad = unaccepted(findings)
    accepted = [f for f in findings if f.accepted_because]
    head = f"{path.name}: parliament {parliament.__version__}"
    lines = [f"{head}: {len(bad)} finding(s) not accepted, {len(accepted)} accepted"]
    lines += [f"  NOT ACCEPTED {f.describe()}" for f in bad]
    lines += [f"  {f.describe()}" for f in accepted]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("policy", nargs="?", type=Path, default=POLICY)
    parser.add_argument("--explain", metavar="ACTION", action="append", default=[])
    args = parser.parse_args(argv)
    if args.explain:
        for action in args.explain:
            types = resource_types(action)
            print(f"{action}: " + ("only *" if not types else ""))
            for rtype, arn in types.items():
                print(f"  {rtype:<20} {arn}")
        return 0
    findings = audit(args.policy.read_text())
    print(report(args.policy, findings))
    return 1 if unaccepted(findings) else 0


if __name__ == "__main__":
    sys.exit(main())
