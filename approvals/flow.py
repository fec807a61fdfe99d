"""The approval flow: submit, click, execute exactly once, sweep. Knows Actions, not Slack.

Slack is behind the `Notifier` protocol (the bot wires a Slack implementation; tests may wire
their own) and group membership behind `Members`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog

from approvals.gate import (
    GateContext,
    GateRefusal,
    check,
    claim_held,
    no_lock_or_freeze,
)
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
from core.guard import GateClosedError, guarded

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=30)
SWEEP_EVERY = 2.0


class Notifier(Protocol):
    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]: ...

    async def update_card(self, request: ApprovalRequest) -> None: ...

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None: ...

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        """An ephemeral message to ``user`` beside the card (why a click did not run)."""


class Members(Protocol):
    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]: ...


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
        prepare: Callable[[Action, ApprovalRequest], Action] | None = None,
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
        # Lets the bot hand an Action who asked and who approved before it executes
        # (fields outside the plan's fingerprint).
        self._prepare = prepare or (lambda action, _request: action)
        self._tasks: set[asyncio.Task[None]] = set()
        # Called after a successful execution, e.g. to follow a deploy's rollout.
        self.on_success: list[Callable[[ApprovalRequest, Result], Awaitable[None]]] = []

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
        hold = await self.locks.get_hold(action.lock_scope)
        blocked = blockers(env, self.clock.now(), hold)
        if blocked and not action.break_glass:
            raise NotPermittedError(
                f"{action.title()} is blocked — "
                + "; ".join(blocked)
                + ". If it cannot wait, add --break-glass "
                "(it needs one more approver and is flagged in the audit)."
            )
        required = required_approvals(env, critical=action.critical, break_glass=action.break_glass)
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
            await self._abandon(
                request, requester, f"the approval card could not be posted ({why})"
            )
            raise ChatOpsError(
                f"Could not post the approval card in <#{channel}> ({why}), so the request "
                "was cancelled. Nothing was changed."
            ) from exc
        try:
            outcome = await self._retry(lambda: self.store.set_card(request.id, card_channel, ts))
        except StoreUnavailableError as exc:
            # The card is out but the store cannot open the request: it stays NEW (nothing
            # runs it; it expires) or is cancelled. Take the buttons off the card.
            note = "the approval store became unavailable while the card was posted"
            ended = await self._abandon(request, requester, note)
            closed = (ended or request).model_copy(
                update={
                    "state": State.CANCELLED,
                    "channel": card_channel,
                    "ts": ts,
                    "outcome": note,
                }
            )
            with contextlib.suppress(Exception):
                await self.notifier.update_card(closed)
            raise ChatOpsError(
                f"The approval store became unavailable while the card was posted, so the "
                f"request was not opened ({exc.detail}). Nothing was changed."
            ) from exc
        stored = outcome.request or request
        if stored.state is State.CANCELLED:
            raise ChatOpsError("The request was cancelled while its card was posted.")
        if outcome.status is Status.APPROVED:
            await self._audit(stored, "auto_approved", requester, note="no approval required")
            self._spawn(self.execute(stored.id, clicker=requester))
        return Submitted(stored, runs_now=outcome.status is Status.APPROVED)

    async def _abandon(
        self, request: ApprovalRequest, user: str, note: str
    ) -> ApprovalRequest | None:
        """Cancel a request whose card cannot serve (one Lua transition from any state before a
        claim). Returns the cancelled request, or None when the store could not be reached —
        the request then stays NEW, which nothing runs, and expires."""
        try:
            outcome = await self._retry(lambda: self.store.abandon(request.id, user, note))
        except StoreUnavailableError:
            log.exception("approval.abandon_failed", request_id=request.id)
            return None
        await self._audit(outcome.request or request, "cancelled", user, note=note)
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
            # The script may have run before the connection dropped: an approval that was
            # recorded can still lead to a run, so no "nothing was changed" here.
            raise StoreUnavailableError(
                exc.detail,
                message="The approval store did not answer, so your approval may or may not "
                "have been recorded. Check the card before clicking again.",
            ) from exc
        return await self._after_click(outcome, user, "approved")

    async def deny(self, request_id: str, user: str) -> Click:
        envs = await self.eligible_in(user)
        outcome = await self.store.deny(
            request_id, user, eligible_in=envs, note=f"denied by <@{user}>"
        )
        return await self._after_click(outcome, user, "denied")

    async def cancel(self, request_id: str, user: str) -> Click:
        outcome = await self.store.cancel(request_id, user)
        return await self._after_click(outcome, user, "cancelled")

    async def _after_click(self, outcome: Outcome, user: str, verb: str) -> Click:
        request = outcome.request
        env = self.config.environments.get(request.env) if request else None
        effective = {Status.RECORDED, Status.APPROVED, Status.DENIED, Status.CANCELLED}
        if outcome.status is Status.EXPIRED and request is not None:
            await self._refresh_card(request, audit=self._entry(request, "expired", ""))
        if outcome.status not in effective or request is None:
            return Click(outcome.status, refusal_for(outcome.status.value, request, env), request)
        event = "approval" if outcome.status is Status.RECORDED else verb
        await self._refresh_card(request, audit=self._entry(request, event, user))
        if outcome.status is Status.APPROVED:
            self._spawn(self.execute(request.id, clicker=user))
        return Click(outcome.status, None, request)

    # -- execution -------------------------------------------------------------------------
    async def execute(self, request_id: str, *, clicker: str | None = None) -> None:
        """Claim the approved request and run it, once. Safe to call from anywhere, any time:
        only the caller whose claim wins does anything. ``clicker`` is told if the gate stops
        it (the sweeper passes None: the last approver is told)."""
        token = secrets.token_hex(8)
        claim = await self.store.claim(request_id, token, self.lease)
        if claim.status is not Status.CLAIMED or claim.request is None:
            return
        request = claim.request
        action = self._prepare(self.registry.load(request), request)
        scope = f"exec:{action.lock_scope}"
        lock_token = secrets.token_hex(8)
        # The lease is kept alive from the claim on, before any Slack call can stall us.
        heartbeat = asyncio.create_task(self._heartbeat(request.id, token, scope, lock_token))
        run = _Run(self, request, token)
        result: Result | None = None
        try:
            await self._refresh_card(request, audit=self._entry(request, "executing", ""))
            if not await self.store.acquire(scope, lock_token, self.lease):
                where = action.lock_scope.replace(":", " in ")
                run.refuse(
                    "exclusive",
                    f"another change to {where} is running; ask again when it has finished",
                )
            else:
                result = await run.through_gate(action)
        except StoreUnavailableError as exc:
            run.refuse("claim_held", f"the approval store became unavailable ({exc.detail})")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(StoreUnavailableError):
                await self.store.release(scope, lock_token)
        ok, outcome = run.outcome(result)
        finished = await self._finish(request.id, token, ok=ok, outcome=outcome)
        if finished is None:
            return
        final = finished.request or request
        event = finished.status.value if run.refusal is None else "blocked"
        note = outcome if run.refusal is None else f"{run.refusal.rule}: {outcome}"
        await self._refresh_card(final, audit=self._entry(final, event, "", note=note))
        if run.refusal is not None:
            who = clicker or final.decided_by or final.requester
            await self._tell(final, who, f"*{final.plan.summary}*\n{outcome}")
            return
        await self._thread(final, outcome)
        if result is not None and result.ok and finished.status is Status.SUCCEEDED:
            for hook in self.on_success:
                try:
                    await hook(final, result)
                except Exception:
                    log.exception("approval.after_success_failed", request_id=final.id)

    async def gate_context(
        self, request: ApprovalRequest, action: Action, claim: Outcome, current: Plan
    ) -> GateContext:
        """The facts the gate's rules read, gathered now (groups read afresh)."""
        env = self.config.environments.get(request.env)
        hold = await self.locks.get_hold(action.lock_scope)
        approvers = await self.members.expand(env.approvers, fresh=True) if env else frozenset()
        return GateContext(
            request=claim.request or request,
            claim_held=claim.status is Status.EXTENDED,
            now=self.clock.now(),
            env=env,
            hold=hold,
            approvers_now=approvers,
            critical=action.critical,
            approved_plan=request.plan,
            current_plan=current,
        )

    async def annotate(self, request_id: str, rollout: str) -> None:
        """Record what happened after execution (a rollout's progress) and edit the card."""
        outcome = await self.store.annotate(request_id, "rollout", rollout)
        if outcome.request is not None:
            await self._refresh_card(outcome.request)

    async def _finish(
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

    async def _heartbeat(self, request_id: str, token: str, scope: str, lock_token: str) -> None:
        """Keep the execution lease and the lock alive while the action runs. If the lease is
        lost (marked in doubt meanwhile), stop: the finish will be recorded as a late report."""
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                extended = await self.store.extend(request_id, token, self.lease)
                await self.store.renew(scope, lock_token, self.lease)
            except StoreUnavailableError:
                log.warning("approval.lease_not_extended", request_id=request_id)
                continue
            if extended.status is not Status.EXTENDED:
                log.error("approval.lease_lost", request_id=request_id)
                return

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
                entry = self._entry(request, outcome.status.value, "")
                await self._refresh_card(request, audit=entry)
                if outcome.status is Status.IN_DOUBT:
                    await self._thread(
                        request,
                        "Outcome unknown — the bot lost track of this change while it "
                        "ran. It will not be retried; check status before doing anything else.",
                    )
            elif outcome.status is Status.ORPHAN:
                handled += 1
                await self.execute(request_id)
        return handled

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """One replica at a time sweeps, coordinated by a short Redis lease."""
        while not stop.is_set():
            try:
                async with self.store.lease("sweeper", timedelta(seconds=SWEEP_EVERY * 3)) as held:
                    if held is not None:
                        await self.sweep_once()
            except StoreUnavailableError:
                log.warning("sweeper.store_unavailable")
            except Exception:
                log.exception("sweeper.failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_EVERY)

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

    async def _refresh_card(
        self, request: ApprovalRequest, *, audit: dict[str, str] | None = None
    ) -> None:
        """Edit the card to the newest version. Concurrent transitions may finish their edits
        out of order, so after editing compare versions (in the same round trip as the audit
        write) and edit again if something newer landed meanwhile."""
        if audit is not None:
            self._log(audit)
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

    async def _tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        try:
            await self.notifier.tell(request, user, text)
        except Exception:
            log.exception("approval.tell_failed", request_id=request.id)

    async def _thread(self, request: ApprovalRequest, text: str) -> None:
        try:
            await self.notifier.thread_reply(request, text)
        except Exception:
            log.exception("approval.thread_reply_failed", request_id=request.id)

    async def _audit(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> None:
        fields = self._entry(request, event, user, note=note)
        self._log(fields)
        try:
            await self.store.audit(fields)
        except StoreUnavailableError:
            log.exception("audit.write_failed", request_id=request.id, audit_event=event)

    def _log(self, fields: dict[str, str]) -> None:
        event = fields["event"]
        # structlog event names are identifiers, not format strings.
        log.info(f"approval.{event}", **{k: v for k, v in fields.items() if k != "event"})  # noqa: G004

    def _entry(
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


_NOTHING_CHANGED = re.compile(r"[\s:;,—-]*nothing was changed\.?", re.IGNORECASE)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def slack_error(exc: BaseException) -> str:
    """Slack's error code when the exception carries one (SlackApiError), else its type."""
    response = getattr(exc, "response", None)
    getter = getattr(response, "get", None)
    error = getter("error") if callable(getter) else None
    return str(error) if error else type(exc).__name__


class _Run:
    """One execution after its claim: the gate, the checkpoint before each AWS mutation, and
    the outcome text. ``mutations`` are the AWS operations that passed the checkpoint."""

    def __init__(self, flow: ApprovalFlow, request: ApprovalRequest, token: str) -> None:
        self.flow = flow
        self.request = request
        self.token = token
        self.action: Action | None = None
        self.refusal: GateRefusal | None = None
        self.stopped_before: str | None = None
        self.mutations: list[str] = []

    def refuse(self, rule: str, reason: str) -> None:
        if self.refusal is None:
            self.refusal = GateRefusal(rule, reason)

    async def _claim(self) -> Outcome:
        return await self.flow.store.extend(self.request.id, self.token, self.flow.lease)

    async def through_gate(self, action: Action) -> Result | None:
        """Clear the gate, then execute with the checkpoint armed."""
        self.action = action
        runtime = self.flow.runtime
        try:
            current = await self._cleared(action)
        except ChatOpsError as exc:
            self.refuse("plan_unchanged", f"it could not be planned again: {exc.user_message}")
            return None
        if current is None:
            return None
        try:
            with guarded(self.checkpoint):
                return await action.execute(current, runtime)
        except GateClosedError as exc:
            self.refuse(exc.rule or "claim_held", exc.user_message)
            return None
        except ChatOpsError as exc:
            return Result(ok=False, summary=self._failed(exc.user_message, exc))
        except Exception as exc:
            error_id = uuid.uuid4().hex[:8]
            log.exception("approval.execute_failed", error_id=error_id, request_id=self.request.id)
            return Result(
                ok=False,
                summary=self._failed(
                    f"Failed with an unexpected error (error id {error_id}); check status.", exc
                ),
            )

    async def _cleared(self, action: Action) -> Plan | None:
        """The plan to execute once every rule holds, or None (``refusal`` says why). A
        request whose change is already in place (a replay after a lost claim) needs only its
        claim: the idempotent execute of the approved plan finds nothing to do and says so."""
        runtime = self.flow.runtime
        if await action.applied(self.request.plan, runtime):
            claim = await self._claim()
            if claim.status is not Status.EXTENDED:
                state = (claim.request or self.request).state.value.replace("_", " ")
                self.refuse("claim_held", f"the bot no longer holds this request's claim ({state})")
                return None
            return self.request.plan
        current = await action.plan(runtime)
        claim = await self._claim()
        refusal = check(await self.flow.gate_context(self.request, action, claim, current))
        if refusal is not None:
            self.refusal = refusal
            return None
        return current

    def _failed(self, message: str, exc: BaseException) -> str:
        """A failure's text, never claiming "nothing was changed" after a change was made.
        The mutation that raised (an AWS refusal names its operation) did not happen."""
        done = list(self.mutations)
        if done and getattr(exc, "operation", None) == done[-1]:
            done.pop()
        if not done:
            return message
        kept = _NOTHING_CHANGED.sub("", message).rstrip(" .:;—-")
        return (
            f"{kept}. Already done before it failed: {', '.join(done)}; check status before "
            "doing anything else."
        )

    async def checkpoint(self, operation: str) -> None:
        """Before each AWS mutation: the claim is still ours (the Lua compare also extends the
        lease) and no lock or freeze began meanwhile (unless break-glass)."""
        self.stopped_before = operation
        try:
            claim = await self._claim()
            hold = (
                await self.flow.locks.get_hold(self.action.lock_scope)
                if self.action is not None
                else None
            )
        except StoreUnavailableError as exc:
            raise GateClosedError(
                f"the approval store is unavailable, so the claim cannot be confirmed "
                f"({exc.detail})",
                rule="claim_held",
            ) from exc
        latest = claim.request or self.request
        ctx = GateContext(
            request=latest,
            claim_held=claim.status is Status.EXTENDED,
            now=self.flow.clock.now(),
            env=self.flow.config.environments.get(latest.env),
            hold=hold,
            approvers_now=frozenset(),
            critical=False,
            approved_plan=latest.plan,
            current_plan=latest.plan,
        )
        for name, rule in (("claim_held", claim_held), ("no_lock_or_freeze", no_lock_or_freeze)):
            reason = rule(ctx)
            if reason is not None:
                raise GateClosedError(reason, rule=name)
        self.mutations.append(operation)
        self.stopped_before = None

    def outcome(self, result: Result | None) -> tuple[bool, str]:
        if self.refusal is None:
            if result is None:
                return False, "Not executed. Nothing was changed."
            return result.ok, result.summary
        reason = self.refusal.reason
        if not self.mutations:
            return False, f"Not executed — {reason}. Nothing was changed."
        done = ", ".join(self.mutations)
        return False, (
            f"Stopped before {self.stopped_before or 'the next change'} — {reason}. "
            f"Already done: {done}; check status before doing anything else."
        )
