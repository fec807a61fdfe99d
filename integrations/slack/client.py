"""The Slack Web API client the bot uses: slack_sdk's AsyncWebClient, counted and retried.

Retries on 429 (honouring Retry-After), connection errors and 5xx come from slack_sdk's own
retry handlers; this module only adds metrics around every call.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from core.metrics import Metrics


class CountingWebClient(AsyncWebClient):
    """AsyncWebClient that records calls and failures in Prometheus."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        self._metrics.slack_api_calls.labels(api_method).inc()
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown")) if exc.response else "unknown"
            self._metrics.slack_api_errors.labels(api_method, error).inc()
            raise
        except Exception as exc:
            self._metrics.slack_api_errors.labels(api_method, type(exc).__name__).inc()
            raise


def create_web_client(
    token: str, base_url: str, metrics: Metrics, timeout: int = 10
) -> CountingWebClient:
    return CountingWebClient(
        metrics=metrics,
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
