"""What Actions get at plan and execute time: the process's collaborators, never Slack itself
(a step that reports progress while it runs writes through `progress`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from core.clock import Clock
from core.config import Config
from integrations.aws.ecs_tasks import EcsTasks

if TYPE_CHECKING:
    from commands.operations.tasks import Leases
from integrations.aws.gateway import AwsGateway
from integrations.deploy_history import DeployHistory
from integrations.dr_snapshot import ProductionSnapshots


class Progress(Protocol):
    async def __call__(self, request_id: str, text: str, ts: str | None) -> str | None:
        """Post (``ts`` None) or edit one message in the request's card thread; its ts, or
        None when it could not be written (progress is never worth failing a change for)."""
        ...


class Announce(Protocol):
    async def __call__(self, text: str) -> None:
        """Tell the open incidents (their cards and channels) an Action's outcome — DR
        activation's. Never raises: an incident that cannot be told is logged."""
        ...


@dataclass(frozen=True)
class ActionRuntime:
    config: Config
    clock: Clock
    aws: AwsGateway
    history: DeployHistory
    progress: Progress | None = None
    leases: Leases | None = None  # the task slot one-off tasks share (commands.operations.tasks)
    task_poll: float = 5.0  # seconds between looks at a task a step waits for
    announce: Announce | None = None  # the open incidents, told an outcome
    dr_snapshots: ProductionSnapshots | None = None  # what production last ran (dr activate)

    @cached_property
    def tasks(self) -> EcsTasks:
        return EcsTasks(self.aws.clients)
