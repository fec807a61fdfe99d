"""AWS failures as ChatOpsErrors: what was refused, by which operation, and AWS's own words.

Every boto3 call of the bot goes through `call_aws`, so a refusal (AccessDenied, a throttle that
outlived botocore's retries, an unreachable endpoint, missing credentials) reaches the person as
one line such as ``AWS refused UpdateService: AccessDeniedException — User is not authorized…``
and never as a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from core.errors import ChatOpsError
from core.guard import before_mutation
from integrations.aws import executors

T = TypeVar("T")

_MESSAGE_LIMIT = 300


class AwsError(ChatOpsError):
    """AWS refused or could not be reached. Nothing after the failed call was done."""

    def __init__(
        self,
        *,
        operation: str,
        code: str,
        message: str,
        user_message: str | None = None,
        answered: bool = False,
    ) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        # AWS answered with a refusal, so the call did not take effect. False for timeouts
        # and broken connections: a request that was sent may have been carried out.
        self.answered = answered
        super().__init__(user_message or _refused(operation, code, message))


def _refused(operation: str, code: str, message: str) -> str:
    text = f"AWS refused {operation}: {code}"
    return f"{text} — {_clip(message)}" if message else text


def _clip(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"


def to_aws_error(exc: Exception, operation: str) -> AwsError:
    """Map a botocore exception to an AwsError (any other exception is wrapped generically)."""
    if isinstance(exc, AwsError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        return AwsError(operation=operation, code=code, message=message, answered=True)
    if isinstance(exc, NoCredentialsError):
        return AwsError(
            operation=operation,
            code="NoCredentials",
            message=str(exc),
            answered=True,  # never sent
            user_message=f"AWS credentials not found for {operation}: nothing was changed",
        )
    if isinstance(exc, EndpointConnectionError):
        return AwsError(
            operation=operation,
            code="EndpointConnectionError",
            message=str(exc),
            user_message=f"AWS unreachable for {operation}: {_clip(str(exc))}",
        )
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        return AwsError(
            operation=operation,
            code=name,
            message=str(exc),
            user_message=f"AWS call {operation} failed: {name} — {_clip(str(exc))}",
        )
    return AwsError(operation=operation, code=type(exc).__name__, message=str(exc))


# Operations that only read. Every other operation changes something and passes the
# execution checkpoint first (core.guard): one place, so no new mutation can skip it.
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Filter", "BatchGet", "Lookup")


# Mutations that only stop what the bot itself started (a one-off task past its timeout): they
# make things safer, so no lock or freeze taken meanwhile may hold them back, and they run
# outside an execution's checkpoint.
STOPS_ONLY = frozenset({"StopTask"})


def is_mutation(operation: str) -> bool:
    return not operation.startswith(READ_ONLY_PREFIXES)


async def call_aws(operation: str, fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run one blocking boto3 call off the event loop; botocore failures become AwsError.
    A mutating call first passes the execution's checkpoint (core.guard.before_mutation),
    which raises GateClosedError when the execution may no longer change anything.
    Reads and mutations run in separate bounded thread pools of the region of the client `fn`
    calls (executors.py: a hung region takes its own threads only), with the caller's context
    copied into the thread."""
    if is_mutation(operation) and operation not in STOPS_ONLY:
        await before_mutation(operation)
    try:
        return await executors.current().run(
            functools.partial(fn, **kwargs),
            mutation=is_mutation(operation),
            region=executors.region_of(fn),
        )
    except (ClientError, BotoCoreError) as exc:
        raise to_aws_error(exc, operation) from exc
