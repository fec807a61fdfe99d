"""What Actions get at plan and execute time: the process's collaborators, never Slack."""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock
from core.config import Config
from integrations.aws.gateway import AwsGateway
from integrations.deploy_history import DeployHistory


@dataclass(frozen=True)
class ActionRuntime:
    config: Config
    clock: Clock
    aws: AwsGateway
    history: DeployHistory
