"""Process settings from the environment (docs/running.md), read once at start-up."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.config import Config, format_validation_error, load_config
from core.errors import ConfigError
from core.redaction import register_secrets, url_password

# Said when there is no config at all: the example is the Dhanam world with every key documented.
_EXAMPLE = Path("examples") / "dhanam.example.toml"
# The example beside the code: a checkout or an editable install has it, a wheel does not.
_SHIPPED_EXAMPLE = Path(__file__).resolve().parents[1] / _EXAMPLE


def no_config_hint() -> str:
    """Where to copy the example config from, as a path that works from the working directory:
    ``examples/…`` in a checkout, the example's own path elsewhere, or the repository's."""
    if _EXAMPLE.is_file():
        return f"start from the example: cp {_EXAMPLE} dhanam.toml"
    if _SHIPPED_EXAMPLE.is_file():
        return f"start from the example: cp {_SHIPPED_EXAMPLE} dhanam.toml"
    return (
        f"start from the example, {_EXAMPLE.as_posix()} in the dhanam-chatops repository "
        "(every key: docs/configuration.md)"
    )


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class Mode(StrEnum):
    HTTP = "serve"
    SOCKET = "socket"
    SANDBOX = "sandbox"


class Settings(BaseSettings):
    """Environment variables. Secrets are SecretStr: their repr is masked, never logged."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    redis_url: SecretStr = SecretStr("redis://localhost:6379/0")
    redis_cluster: bool = False
    dhanam_config: Path = Path("./dhanam.toml")
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    pagerduty_routing_key: SecretStr | None = None
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_api_token: SecretStr | None = None
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_from_email: str | None = None
    pagerduty_webhook_secret: SecretStr | None = None
    sns_cert_cache_dir: Path | None = None
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "info"
    port: int = Field(default=3000, ge=1, le=65535)

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("must be one of debug, info, warning, error, critical")
        return level

    def model_post_init(self, _context: Any, /) -> None:
        # The logger redacts these values wherever they appear (bot/logs.py).
        register_secrets(self.secret_values())

    def secret_values(self) -> list[str]:
        """Every secret this process holds: the Slack and PagerDuty secrets, the Redis password."""
        values = [
            secret.get_secret_value()
            for secret in (
                self.slack_bot_token,
                self.slack_signing_secret,
                self.slack_app_token,
                self.pagerduty_routing_key,
                self.pagerduty_api_token,
                self.pagerduty_webhook_secret,
            )
            if secret is not None and secret.get_secret_value()
        ]
        values.extend(self.webhook_secrets())
        password = url_password(self.redis_url.get_secret_value())
        if password:
            values.append(password)
        return values

    def missing_for(self, mode: Mode) -> list[str]:
        """Names of the variables that ``mode`` needs and that are not set."""
        needed: dict[str, SecretStr | None] = {"SLACK_BOT_TOKEN": self.slack_bot_token}
        if mode is Mode.HTTP:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        if mode is Mode.SOCKET:
            needed["SLACK_APP_TOKEN"] = self.slack_app_token
        return [name for name, value in needed.items() if not value or not value.get_secret_value()]

    def config_origin(self) -> tuple[str, str]:
        """Where DHANAM_CONFIG's path came from, and what to do when there is no file there."""
        if "dhanam_config" in self.model_fields_set:
            return "from DHANAM_CONFIG", ""
        return f"the default, in {Path.cwd()}; DHANAM_CONFIG is not set", no_config_hint()

    def webhook_secrets(self) -> list[str]:
        """The PagerDuty v3 secrets; several during a rotation."""
        if self.pagerduty_webhook_secret is None:
            return []
        raw = self.pagerduty_webhook_secret.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Field paths are variable names here: say them the way the operator typed them.
        lines = []
        for line in format_validation_error(exc):
            name, _, message = line.partition(": ")
            lines.append(f"{name.upper()}: {message}")
        raise ConfigError(lines) from None


def load(mode: Mode) -> tuple[Settings, Config]:
    """Settings and config for ``mode``, or ConfigError naming everything that is wrong."""
    settings = load_settings()
    missing = settings.missing_for(mode)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(
            [f"{' and '.join(missing)} {verb} not set (required for `dhanam-bot {mode}`)"]
        )
    origin, hint = settings.config_origin()
    return settings, load_config(settings.dhanam_config, origin=origin, hint=hint)
