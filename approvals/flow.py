"""The approval flow: submit, click, execute exactly once, sweep. Knows Actions, not Slack.

Slack is behind the `Notifier` protocol (the bot wires a Slack implementation; tests may wire
their own) and group membership behind `Members`.

Long: submit, the three clicks, the claim and the sweep are the transitions of one request's
life over one store, and their fail-closed answers when the store stops answering refer to each
other; the execution, the gate and the policy are already their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog

from approvals.cards import Cards, Notifier
from approvals.execution import Execution
from approvals.gate import GateContext
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.policy import (
    Refusal,
    approver_list,
    blockers,
    may_request,
    refusal_for,
    required_approvals,
)
from approvals.store import ApprovalStore, Outcome, Status, new_request_id
from core.clock import Clock
from core.config import Config
from core.errors import ChatOpsError, NotPermittedError, StoreUnavailableError
from core.loops import run_every

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=30)
SWEEP_EVERY = 2.0


class Members(Protocol):
    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]: ...

    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        """Like expand, plus the groups that could not be read and why."""
        ...


class ActionRegistry:
    """Request kind -> Action class, so stored requests can be turned back into Actions."""

    def __init__(self) -> None:
        self._kinds: dict[str, type[Action]] = {}

    def add(self, cls: type[Action]) -> None:
        self._kinds[cls.kind] = cls

    def kind(self, kind: str) -> type[Action]:
        if kind not in self._kinds:
            raise ChatOpsError(f"{kind} is not enabled in this version of the bot")
        return self._kinds[kind]

    def load(self, request: ApprovalRequest) -> Action:
        return self._kinds[request.kind].model_validate(request.action)


@dataclass(frozen=True)
class Submitted:
    request: ApprovalRequest
    runs_now: bool  # no approval needed: executing already


@dataclass(frozen=True)
class Click:
    """The result of a click: a refusal for the clicker, or None when it took effect."""

    status: Status
    refusal: Refusal | None
    request: ApprovalRequest | None


class ApprovalFlow:
    def __init__(
        self,
        *,
        config: Config,
        store: ApprovalStore,
        locks: Locks,
        notifier: Notifier,
        members: Members,
        registry: ActionRegistry,
        runtime: Any,
        clock: Clock,
        lease: timedelta = LEASE,
        on_success: Sequence[Callable[[ApprovalRequest, Result], Awaitable[None]]] = (),
        follow: Sequence[Callable[[ApprovalRequest, Result], Awaitable[None]]] = (),
        cards: Cards | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.locks = locks
        self.notifier = notifier
        self.members = members
        self.registry = registry
        self.runtime = runtime
        self.clock = clock
        self.lease = lease
        self.cards = cards or Cards(store, notifier, clock)
        self._tasks: set[asyncio.Task[None]] = set()
        # After a successful execution: every `on_success` hook, and the `follow` hooks for an
        # Action that is followed (a deploy's rollout). Given at construction; nothing appends.
        self.on_success = tuple(on_success)
        self.follow = tuple(follow)

    # -- submit ----------------------------------------------------------------------------
    async def submit(self, action: Action, requester: str, origin_channel: str) -> Submitted:
        """Plan, check policy, store and announce a request. Raises ChatOpsError to refuse."""
        env = self.config.environments[action.env]
        requesters = await self.members.expand([p for p in env.requesters if p != "*"])
        if not may_request(env, requester, requesters):
            raise NotPermittedError(
                f"You may not request changes in {action.env}. Ask one of its approvers: "
                f"{approver_list(env)}."
            )
        waived = action.approval_waived(self.config)
        hold = await self.locks.get_hold(action.hold_scope)
        blocked = [] if waived else blockers(env, self.clock.now(), hold)
        if blocked and not action.break_glass:
            raise NotPermittedError(
                f"{action.title()} is blocked — "
                + "; ".join(blocked)
                + ". If it cannot wait, add --break-glass "
                "(it needs one more approver and is flagged in the audit)."
            )
        required = required_approvals(
            env, critical=action.critical, break_glass=action.break_glass, waived=waived
        )
        if required > 0 and not env.approvers:
            raise NotPermittedError(
                f"{action.title()} needs {plural(required, 'approval')} but {action.env} has no "
                "approvers configured."
            )
        request_id = new_request_id()
        action = action.model_copy(update={"request_id": request_id})
        plan = await action.plan(self.runtime)
        now = self.clock.now()
        service = self.config.services.get(action.service or "")
        channel = (service.channel if service else None) or origin_channel
        warnings = [*plan.warnings, *(f"Break-glass past: {b}" for b in blocked)]
        # Stored as NEW: no click and no sweeper can run it until its card is recorded.
        request = ApprovalRequest(
            id=request_id,
            kind=action.kind,
            action=action.model_dump(mode="json"),
            plan=plan,
            requester=requester,
            reason=action.reason,
            env=action.env,
            service=action.service,
            channel=channel,
            origin_channel=origin_channel,
            required=required,
            state=State.NEW,
            created_at=now,
            expires_at=now + timedelta(seconds=self.config.approvals.ttl_seconds),
            break_glass=action.break_glass,
            warnings=warnings,
            followed=type(action).followed,
            resumable=type(action).resumable,
        )
        await self.store.create(request)
        await self._audit(request, "requested", requester)
        # The card shows the state the request enters once the card is recorded.
        shown = request.model_copy(
            update={"state": State.APPROVED if required == 0 else State.PENDING}
        )
        try:
            card_channel, ts = await self.notifier.post_card(shown)
        except Exception as exc:
            log.exception("approval.card_failed", request_id=request.id)
            why = slack_error(exc)
            note = f"the approval card could not be posted ({why})"
            ended = await self._abandon(request, requester, note)
            # Either way nothing can run it: cancelled, or NEW (which only the card opens).
            fate = "was cancelled" if ended is not None else "was not opened and will expire"
            raise ChatOpsError(
                f"Could not post the approval card in <#{channel}> ({why}), so the request "
                f"{fate}. Nothing was changed."
            ) from exc
        try:
            outcome = await self._retry(lambda: self.store.set_card(request.id, card_channel, ts))
        except StoreUnavailableError as exc:
            raise await self._card_not_recorded(request, requester, card_channel, ts, exc) from exc
        stored = outcome.request or request
        if stored.state is State.CANCELLED:
            raise ChatOpsError("The request was cancelled while its card was posted.")
        if outcome.status is Status.APPROVED:
            await self._audit(stored, "auto_approved", requester, note="no approval required")
            self._spawn(self.execute(stored.id, clicker=requester))
        return Submitted(stored, runs_now=outcome.status is Status.APPROVED)

    async def _card_not_recorded(
        self,
        request: ApprovalRequest,
        requester: str,
        channel: str,
        ts: str,
        exc: StoreUnavailableError,
    ) -> ChatOpsError:
        """The card is out but the store did not confirm recording it. The script may have
        run (the reply was lost): the request may be open. Cancel it if the store answers,
        take the buttons off the card, and promise only what is known."""
        note = "the approval store stopped answering while the card was posted"
        ended = await self._abandon(request, requester, note)
        closed = (ended or request).model_copy(
            update={"state": State.CANCELLED, "channel": channel, "ts": ts, "outcome": note}
        )
        with contextlib.suppress(Exception):
            await self.notifier.update_card(closed)
        if ended is not None:
            return ChatOpsError(
                f"The approval store stopped answering while the card was posted, so the request "
                f"was cancelled ({exc.detail}). Nothing was changed."
            )
        self._spawn(self._abandon_later(request, requester, note))
        return ChatOpsError(
            "The approval store stopped answering while the card was posted, so I cannot tell "
            "whether the request was opened. I keep trying to cancel it for a minute; if its "
            "card still shows buttons, deny or cancel it there.",
            nothing_changed=False,
        )

    async def _abandon_later(self, request: ApprovalRequest, user: str, note: str) -> None:
        """Keep trying to cancel a request whose card may be out with live buttons."""
        for _ in range(60):
            await asyncio.sleep(1.0)
            try:
                outcome = await self.store.abandon(request.id, user, note)
            except StoreUnavailableError:
                continue
            if outcome.status is Status.CANCELLED and outcome.request is not None:
                await self._audit(outcome.request, "cancelled", user, note=note)
                await self.refresh_card(outcome.request)
            return

    async def _abandon(
        self, request: ApprovalRequest, user: str, note: str
    ) -> ApprovalRequest | None:
        """Cancel a request whose card cannot serve (one Lua transition from any state before a
        claim). Returns the cancelled request; None when the store could not be reached or the
        request had already moved on (claimed, final): then nothing may be promised."""
        try:
            outcome = await self._retry(lambda: self.store.abandon(request.id, user, note))
        except StoreUnavailableError:
            log.exception("approval.abandon_failed", request_id=request.id)
            return None
        if outcome.status is not Status.CANCELLED or outcome.request is None:
            log.warning("approval.abandon_refused", request_id=request.id, status=outcome.status)
            return None
        await self._audit(outcome.request, "cancelled", user, note=note)
        return outcome.request

    async def _retry(self, op: Callable[[], Awaitable[Outcome]], attempts: int = 3) -> Outcome:
        """Idempotent store calls ride out a blip (a failover, a reconnect)."""
        for attempt in range(attempts):
            try:
                return await op()
            except StoreUnavailableError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- clicks ----------------------------------------------------------------------------
    async def eligible_in(self, user: str) -> list[str]:
        """The environments ``user`` may approve in (group membership is cached: no Redis)."""
        return [
            name
            for name, env in self.config.environments.items()
            if user in await self.members.expand(env.approvers)
        ]

    async def approve(self, request_id: str, user: str) -> Click:
        """One Redis round trip decides the click; the card edit and audit follow."""
        envs = await self.eligible_in(user)
        try:
            outcome = await self.store.approve(request_id, user, eligible_in=envs)
        except StoreUnavailableError as exc:
            raise _unconfirmed("approval", exc) from exc
        return await self._after_click(outcome, user, "approved")

    async def deny(self, request_id: str, user: str) -> Click:
        envs = await self.eligible_in(user)
        try:
            outcome = await self.store.deny(
                request_id, user, eligible_in=envs, note=f"denied by <@{user}>"
            )
        except StoreUnavailableError as exc:
            raise _unconfirmed("deny", exc) from exc
        return await self._after_click(outcome, user, "denied")

    async def cancel(self, request_id: str, user: str) -> Click:
        try:
            outcome = await self.store.cancel(request_id, user)
        except StoreUnavailableError as exc:
            raise _unconfirmed("cancellation", exc) from exc
        return await self._after_click(outcome, user, "cancelled")

    async def _after_click(self, outcome: Outcome, user: str, verb: str) -> Click:
        request = outcome.request
        env = self.config.environments.get(request.env) if request else None
        effective = {Status.RECORDED, Status.APPROVED, Status.DENIED, Status.CANCELLED}
        if outcome.status is Status.EXPIRED and request is not None:
            await self.refresh_card(request, audit=self.audit_entry(request, "expired", ""))
        if outcome.status not in effective or request is None:
            return Click(outcome.status, refusal_for(outcome.status.value, request, env), request)
        event = "approval" if outcome.status is Status.RECORDED else verb
        await self.refresh_card(request, audit=self.audit_entry(request, event, user))
        if outcome.status is Status.APPROVED:
            self._spawn(self.execute(request.id, clicker=user))
        return Click(outcome.status, None, request)

    # -- execution -------------------------------------------------------------------------
    async def execute(self, request_id: str, *, clicker: str | None = None) -> None:
        """Claim the approved request and run it, once. Safe to call from anywhere, any time:
        only the caller whose claim wins does anything (approvals/execution.py). ``clicker``
        is told if the gate stops it (the sweeper passes None: the last approver is told)."""
        token = secrets.token_hex(8)
        claim = await self.store.claim(request_id, token, self.lease)
        if claim.status is not Status.CLAIMED or claim.request is None:
            return
        await Execution(self, claim.request, token).run(clicker)

    async def gate_context(
        self, request: ApprovalRequest, action: Action, claim: Outcome, current: Plan
    ) -> GateContext:
        """The facts the gate's rules read, gathered now (groups read afresh)."""
        env = self.config.environments.get(request.env)
        hold = await self.locks.get_hold(action.hold_scope)
        approvers: frozenset[str] = frozenset()
        requesters: frozenset[str] | None = None
        unreadable: dict[str, str] = {}
        if env is not None:
            approvers, unreadable = await self.members.resolve(env.approvers, fresh=True)
            if "*" not in env.requesters:
                listed = [p for p in env.requesters if p != "*"]
                requesters = await self.members.expand(listed, fresh=True)
        latest = claim.request or request
        return GateContext(
            request=latest,
            claim_held=claim.status is Status.EXTENDED,
            now=latest.checked_at or self.clock.now(),  # Redis's time, as the scripts use
            env=env,
            hold=hold,
            approvers_now=approvers,
            requesters_now=requesters,
            unreadable_groups=unreadable,
            critical=action.critical,
            waived=action.approval_waived(self.config),
            holds_judged=action.holds_checked_at_gate_only and request.resumed_at is not None,
            approved_plan=request.plan,
            current_plan=current,
        )

    async def annotate(self, request_id: str, rollout: str) -> None:
        await self.cards.annotate(request_id, rollout)

    async def record_outcome(
        self, request_id: str, token: str, *, ok: bool, outcome: str
    ) -> Outcome | None:
        """Record the outcome, riding out a short Redis outage (the lease gives it time). If it
        cannot be recorded the lease lapses and the sweeper marks the request in doubt: the
        action ran, and the store must not pretend to know how it ended."""
        delay = 0.25
        for attempt in range(6):
            try:
                return await self.store.finish(request_id, token, ok=ok, outcome=outcome)
            except StoreUnavailableError:
                log.warning("approval.finish_retry", request_id=request_id, attempt=attempt)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 4.0)
        log.error("approval.finish_lost", request_id=request_id, ok=ok, outcome=outcome)
        return None

    # -- sweeping --------------------------------------------------------------------------
    async def sweep_once(self) -> int:
        """Expire, mark in doubt, or pick up orphans, among the requests that are due."""
        handled = 0
        for request_id in await self.store.due():
            outcome = await self.store.sweep_one(request_id)
            request = outcome.request
            if request is None:
                continue
            if outcome.status in (Status.EXPIRED, Status.IN_DOUBT):
                handled += 1
                entry = self.audit_entry(request, outcome.status.value, "")
                await self.refresh_card(request, audit=entry)
                if outcome.status is Status.IN_DOUBT:
                    await self.thread_reply(
                        request,
                        "Outcome unknown — the bot lost track of this change while it "
                        "ran. It will not be retried; check status before doing anything else.",
                    )
            elif outcome.status is Status.RESUMED:
                handled += 1
                entry = self.audit_entry(request, "resumed", "")
                await self.refresh_card(request, audit=entry)
                await self.thread_reply(
                    request,
                    "The replica running this stopped answering; another one resumes it now, "
                    "from the first step not done.",
                )
                # In the background: an activation takes minutes, and the sweep goes on.
                self._spawn(self.execute(request_id))
            elif outcome.status is Status.ORPHAN:
                handled += 1
                await self.execute(request_id)
        return handled

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """One replica at a time sweeps, coordinated by a short Redis lease."""
        await run_every(
            "approvals.sweeper",
            SWEEP_EVERY,
            lambda: self.sweep_once(),  # noqa: PLW0108 - late-bound, patchable
            stop,
            lease=lambda: self.store.lease("sweeper", timedelta(seconds=SWEEP_EVERY * 3)),
        )

    # -- helpers ---------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except StoreUnavailableError:
                # Nothing ran that is not recorded: a claim that failed never started; the
                # sweeper picks the request up again (orphan) or marks it in doubt (lease).
                log.warning("approval.background_store_unavailable")
            except Exception:
                log.exception("approval.background_failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background executions (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- the card, its thread and the audit (approvals.cards) ----------------------------
    async def refresh_card(
        self, request: ApprovalRequest, *, audit: dict[str, str] | None = None
    ) -> None:
        await self.cards.refresh(request, audit=audit)

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        await self.cards.tell(request, user, text)

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        await self.cards.thread_reply(request, text)

    async def _audit(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> None:
        await self.cards.audit(request, event, user, note=note)

    def audit_entry(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> dict[str, str]:
        return self.cards.entry(request, event, user, note=note)


def _unconfirmed(what: str, exc: StoreUnavailableError) -> StoreUnavailableError:
    """A click the store did not answer: its script may have run before the connection
    dropped, so the reply promises nothing (a lost deny leaves the request open; a lost
    approval may lead to a run)."""
    return StoreUnavailableError(
        exc.detail,
        message=f"The approval store did not answer, so your {what} may or may not have been "
        "recorded. Check the card before clicking again.",
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def slack_error(exc: BaseException) -> str:
    """Slack's error code when the exception carries one (SlackApiError), else its type."""
    response = getattr(exc, "response", None)
    getter = getattr(response, "get", None)
    error = getter("error") if callable(getter) else None
    return str(error) if error else type(exc).__name__
