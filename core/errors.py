"""Typed errors. Each carries the text a person sees; one handler turns them into replies."""

from __future__ import annotations


class ChatOpsError(Exception):
    """An error whose message is safe and useful to show to the person who caused it."""

    def __init__(self, user_message: str, *, nothing_changed: bool = True) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        # False when the bot cannot promise that nothing changed (the reply then says what
        # is known instead, and no "Nothing was changed." note is added to it).
        self.nothing_changed = nothing_changed


class ParseError(ChatOpsError):
    """The command text could not be understood. Nothing was changed."""

    def __init__(self, user_message: str, *, usage: str | None = None) -> None:
        super().__init__(user_message)
        self.usage = usage


class NotPermittedError(ChatOpsError):
    """The caller may not do this."""


class StoreUnavailableError(ChatOpsError):
    """Redis (the approval store) cannot be reached: fail closed."""

    def __init__(self, detail: str = "", *, message: str | None = None) -> None:
        super().__init__(
            message or "approval store unavailable — nothing was changed",
            nothing_changed=message is None,
        )
        self.detail = detail


class ConfigError(Exception):
    """The configuration or environment is invalid. ``errors`` are one line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
