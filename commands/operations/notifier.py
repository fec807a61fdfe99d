"""The approval engine's Notifier, on Slack: the card, its edits, and its thread; and the progress
message a step writes in the card's thread while an execution waits for it."""

from __future__ import annotations

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from approvals.models import ApprovalRequest
from approvals.store import ApprovalStore
from commands.operations.card import card_blocks, card_text
from core.clock import Clock
from core.config import Config
from integrations.slack.errors import POST_ANEW, slack_error

log = structlog.get_logger(__name__)


class ThreadProgress:
    """commands.operations.runtime.Progress on Slack: one message in the request's card thread,
    posted once and then edited (posted anew when the edit finds it gone). Never raises: a
    progress line is not worth failing a change for."""

    def __init__(self, client: AsyncWebClient, store: ApprovalStore) -> None:
        self._client = client
        self._store = store

    async def __call__(self, request_id: str, text: str, ts: str | None) -> str | None:
        try:
            request = await self._store.get(request_id)
            if request is None or request.channel is None or request.ts is None:
                return None
            if ts is not None:
                try:
                    await self._client.chat_update(channel=request.channel, ts=ts, text=text)
                except SlackApiError as exc:
                    if slack_error(exc) not in POST_ANEW:
                        raise  # rate limited, channel gone…: this poll's line is skipped
                else:
                    return ts
            response = await self._client.chat_postMessage(
                channel=request.channel, thread_ts=request.ts, text=text, unfurl_links=False
            )
            return str(response["ts"])
        except Exception as exc:  # noqa: BLE001 - Slack or the store hiccuping: logged, skipped
            log.warning(
                "progress.not_written",
                request_id=request_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return None


class SlackNotifier:
    def __init__(self, client: AsyncWebClient, config: Config, clock: Clock) -> None:
        self._client = client
        self._config = config
        self._clock = clock

    def _approvers(self, request: ApprovalRequest) -> list[str]:
        env = self._config.environments.get(request.env)
        return list(env.approvers) if env else []

    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]:
        if request.channel is None:
            raise ValueError("the request has no channel to post its card in")
        response = await self._client.chat_postMessage(
            channel=request.channel,
            text=card_text(request),
            blocks=card_blocks(request, self._approvers(request), self._clock.now()),
            unfurl_links=False,
        )
        return str(response["channel"]), str(response["ts"])

    async def update_card(self, request: ApprovalRequest) -> None:
        if request.channel is None or request.ts is None:
            return
        await self._client.chat_update(
            channel=request.channel,
            ts=request.ts,
            text=card_text(request),
            blocks=card_blocks(request, self._approvers(request), self._clock.now()),
        )

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        if request.channel is None or request.ts is None:
            return
        await self._client.chat_postMessage(
            channel=request.channel, thread_ts=request.ts, text=text, unfurl_links=False
        )

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        """Ephemeral, where the card is (else where the request was made)."""
        channel = request.channel or request.origin_channel
        if channel is None:
            return
        await self._client.chat_postEphemeral(channel=channel, user=user, text=text)
