"""Shared shapes of the risky Actions that change one service in one environment.

`approvals.models.Action` has a read-only `service` property (None for env-wide actions such as
a database restore). A pydantic field cannot be named like a parent's property (the property
wins on attribute access), so `ServiceAction` stores the name in `service_name`, exposed as the
`service` property and, through the alias, as `service` everywhere else: the constructor
(`DeployAction(service="api", …)`), `model_dump()` and `model_validate()`. The engine's stored
`action` dict therefore reads `{"service": "api", …}` and round-trips.

`requested_by` and `approved_by` are not part of what is approved: they are
outside the plan's inputs (so outside its fingerprint) and the bot sets them with
`model_copy(update=…)` just before `execute` (the flow's `prepare` hook), for the deploy history.
"""

from __future__ import annotations

from typing import Any, Literal, Self

import structlog
from pydantic import ConfigDict, Field, ValidationError

from approvals.models import Action
from commands.operations.runtime import ActionRuntime
from commands.requests import Request
from core.clock import Clock
from core.config import Config, EnvironmentConfig, ServiceConfig
from core.errors import ChatOpsError, StoreUnavailableError
from core.text import NOTHING_CHANGED, plural, words
from integrations.aws.images import parse_image
from integrations.aws.models import ServiceState
from integrations.deploy_history import DeployRecord

log = structlog.get_logger(__name__)

# The tag (ECS revisions) or tag key (RDS instances) naming the request that made a resource, so
# a replayed execution finds what an earlier attempt of the same request already made.
REQUEST_TAG_KEY = "dhanam:request"


def container_images(task_definition: dict[str, Any]) -> dict[str, str]:
    """Each container's image, by container name: what a task definition runs."""
    return {
        str(c.get("name")): str(c.get("image", ""))
        for c in task_definition.get("containerDefinitions", [])
    }


def circuit_breaker(state: ServiceState) -> dict[str, bool]:
    """The service's deployment circuit breaker, as ECS names its fields."""
    return {"enable": state.circuit_breaker_enabled, "rollback": state.circuit_breaker_rollback}


class ServiceAction(Action):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_alias=True, serialize_by_alias=True
    )

    service_name: str = Field(alias="service")

    @property
    def service(self) -> str:
        return self.service_name

    @classmethod
    def from_request(
        cls,
        request: Request,
        config: Config,  # noqa: ARG003 - every Action's builder takes the same arguments
        clock: Clock,  # noqa: ARG003
    ) -> Self:
        """The action of a parsed request whose fields it shares by name (deploy, rollback and
        scale requests are the action's own fields, plus `kind`)."""
        fields = request.model_dump(exclude={"kind"})
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:  # a request field the action does not take: a bug
            log.exception("action.build_failed", kind=cls.kind)
            raise ChatOpsError(
                f"could not prepare the {words(cls.kind)} request "
                f"({plural(exc.error_count(), 'field')} not understood) — this is a bug in the "
                f"bot. {NOTHING_CHANGED}"
            ) from exc

    async def record_move(
        self,
        runtime: ActionRuntime,
        *,
        kind: Literal["deploy", "rollback"],
        previous: tuple[str, str],
        new: tuple[str, str],
        tag: str | None,
        details: dict[str, Any],
    ) -> None:
        """Record a deploy or rollback (task definition, image) in the history. The change has
        happened by now: a history that cannot be written is reported in ``details``.

        A replayed execution of a request whose move is already the newest record (an earlier
        attempt recorded it) records nothing again."""
        record = DeployRecord(
            service=self.service,
            env=self.env,
            previous_task_definition=previous[0],
            new_task_definition=new[0],
            previous_image=previous[1],
            new_image=new[1],
            tag=tag,
            digest=parse_image(new[1]).digest,
            requested_by=self.requested_by,
            approved_by=list(self.approved_by),
            request_id=self.request_id,
            at=runtime.clock.now(),
            kind=kind,
        )
        try:
            if self.request_id is not None:
                last = await runtime.history.last(self.service, self.env)
                if last is not None and last.request_id == self.request_id:
                    return
            await runtime.history.record(record)
        except StoreUnavailableError as exc:
            log.warning(f"{kind}.history_not_recorded", error=exc.detail)  # noqa: G004
            details["history_error"] = f"deploy history not recorded: {exc.detail}"


def environment_config(config_envs: dict[str, EnvironmentConfig], env: str) -> EnvironmentConfig:
    found = config_envs.get(env)
    if found is None:
        known = ", ".join(sorted(config_envs)) or "none"
        raise ChatOpsError(f'unknown environment "{env}" — known: {known}')
    return found


def service_config(config_services: dict[str, ServiceConfig], service: str) -> ServiceConfig:
    found = config_services.get(service)
    if found is None:
        known = ", ".join(sorted(config_services)) or "none"
        raise ChatOpsError(f'unknown service "{service}" — known: {known}')
    return found
