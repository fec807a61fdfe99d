"""deploy/: what an operator needs to run the bot on ECS Fargate, checked against the AWS API
model (botocore's parameter validation) since no AWS account is reachable here."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from botocore.validate import ParamValidator

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "REDIS_URL")


def _ecs_shape(operation: str):  # type: ignore[no-untyped-def]
    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client.meta.service_model.operation_model(operation).input_shape


def test_task_definition_is_a_valid_register_request() -> None:
    task = json.loads((DEPLOY / "ecs-task-definition.json").read_text())
    report = ParamValidator().validate(task, _ecs_shape("RegisterTaskDefinition"))
    assert not report.has_errors(), report.generate_report()


def test_service_is_a_valid_create_request_with_two_replicas() -> None:
    service = json.loads((DEPLOY / "ecs-service.json").read_text())
    report = ParamValidator().validate(service, _ecs_shape("CreateService"))
    assert not report.has_errors(), report.generate_report()
    assert service["desiredCount"] == 2
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"] is True


def test_secrets_come_from_parameter_store_or_secrets_manager() -> None:
    container = json.loads((DEPLOY / "ecs-task-definition.json").read_text())[
        "containerDefinitions"
    ][0]
    plain = {e["name"] for e in container["environment"]}
    assert not [n for n in plain if any(w in n for w in SECRET_WORDS)], plain
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "REDIS_URL"):
        assert secrets[name].startswith(("arn:aws:ssm:", "arn:aws:secretsmanager:")), name
    assert "/health" in " ".join(container["healthCheck"]["command"])
    assert container["command"] == ["serve"]
