"""The approval card, its thread and the audit: what every transition writes besides the store.

One object shared by the flow and the rollout follower (which annotates the card with what
happened after execution), so neither needs the other. Slack is behind `Notifier`.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from approvals.models import ApprovalRequest
from approvals.store import ApprovalStore
from core.clock import Clock
from core.errors import StoreUnavailableError

log = structlog.get_logger(__name__)


class Notifier(Protocol):
    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]: ...

    async def update_card(self, request: ApprovalRequest) -> None: ...

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None: ...

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        """An ephemeral message to ``user`` beside the card (why a click did not run)."""


class Cards:
    def __init__(self, store: ApprovalStore, notifier: Notifier, clock: Clock) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock

    async def annotate(self, request_id: str, rollout: str) -> None:
        """Record what happened after execution (a rollout's or a one-off task's verdict), edit
        the card, and audit it: the audit says how a followed change ended, not only that its
        execution succeeded."""
        outcome = await self.store.annotate(request_id, "rollout", rollout)
        if outcome.request is not None:
            entry = self.entry(outcome.request, "followed", "", note=rollout.split("\n", 1)[0])
            await self.refresh(outcome.request, audit=entry)

    async def refresh(
        self, request: ApprovalRequest, *, audit: dict[str, str] | None = None
    ) -> None:
        """Edit the card to the newest version. Concurrent transitions may finish their edits
        out of order, so after editing compare versions (in the same round trip as the audit
        write) and edit again if something newer landed meanwhile."""
        if audit is not None:
            self.log(audit)
        current = request
        for _ in range(3):
            if current.channel and current.ts:
                try:
                    await self.notifier.update_card(current)
                except Exception:
                    log.exception("approval.card_update_failed", request_id=current.id)
            try:
                if audit is not None:
                    version = await self.store.audit_and_version(audit, current.id)
                    audit = None
                else:
                    latest_request = await self.store.get(current.id)
                    version = latest_request.version if latest_request else None
            except StoreUnavailableError:
                log.exception("audit.write_failed", request_id=current.id)
                return
            if version is None or version <= current.version:
                return
            latest = await self.store.get(current.id)
            if latest is None:
                return
            current = latest

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        try:
            await self.notifier.tell(request, user, text)
        except Exception:
            log.exception("approval.tell_failed", request_id=request.id)

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        try:
            await self.notifier.thread_reply(request, text)
        except Exception:
            log.exception("approval.thread_reply_failed", request_id=request.id)

    async def audit(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> None:
        fields = self.entry(request, event, user, note=note)
        self.log(fields)
        try:
            await self.store.audit(fields)
        except StoreUnavailableError:
            log.exception("audit.write_failed", request_id=request.id, audit_event=event)

    def log(self, fields: dict[str, str]) -> None:
        event = fields["event"]
        # structlog event names are identifiers, not format strings.
        log.info(f"approval.{event}", **{k: v for k, v in fields.items() if k != "event"})  # noqa: G004

    def entry(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> dict[str, str]:
        return {
            "event": event,
            "request_id": request.id,
            "kind": request.kind,
            "title": request.plan.summary,
            "env": request.env,
            "service": request.service or "",
            "user": user,
            "requester": request.requester,
            "state": request.state.value,
            "fingerprint": request.plan.fingerprint,
            "break_glass": "1" if request.break_glass else "0",
            "note": note,
            "at": self.clock.now().isoformat(),
        }
