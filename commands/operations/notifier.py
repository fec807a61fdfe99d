"""The approval engine's Notifier, on Slack: the card, its edits, and its thread."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from approvals.models import ApprovalRequest
from commands.operations.card import card_blocks, card_text
from core.clock import Clock
from core.config import Config


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
