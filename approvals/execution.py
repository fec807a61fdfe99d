"""One execution of an approved request, after its claim: the gate, the checkpoint before each
AWS mutation, and an outcome that says only what is true.

The sequence (ApprovalFlow.execute claims first, then hands over here):

1. the heartbeat starts at once — before any Slack call — extending the claim's lease and,
   once taken, the execution lock;
2. the card says "executing"; the one-at-a-time lock `exec:<scope>` is taken (its value names
   the request, so a replay can tell its own earlier attempt from another change);
3. the gate (approvals/gate.py): a request whose change is already in place (a replay after a
   lost claim, `Action.applied`) needs only its claim; otherwise re-plan and every rule;
4. `execute` runs inside `core.guard.guarded(checkpoint)`: before each AWS mutation the claim
   is compared again (a Lua compare that extends the lease), the lock must still be ours and
   no lock or freeze may have begun; on the replay path no mutation is allowed at all;
5. the outcome is recorded with the claim token. Only an outcome the store accepted is put on
   the card and told to people: if the claim was lost meanwhile (a failover put the request
   back to approved, the sweeper marked it in doubt), whoever holds the request now speaks.

"Nothing was changed." is written only when no mutation passed the checkpoint, and never when
an earlier attempt of the same request may still be changing things.

Long: the five steps share one claim token, one heartbeat and one record of what passed the
checkpoint; each step's failure must know what the earlier ones did to say only what is true, so
they stay one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from approvals.gate import GateContext, GateRefusal, check, claim_held, no_lock_or_freeze
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.policy import Hold
from approvals.store import Outcome, Status
from core.errors import ChatOpsError, StoreUnavailableError
from core.guard import GateClosedError, guarded

if TYPE_CHECKING:
    from datetime import timedelta

    from approvals.gate import GateContext
    from approvals.locks import Locks
    from approvals.store import ApprovalStore
    from core.clock import Clock
    from core.config import Config

log = structlog.get_logger(__name__)

NOTHING_CHANGED = re.compile(r"[\s:;,—-]*nothing was changed\.?", re.IGNORECASE)


def without_promise(text: str) -> str:
    """``text`` with any "nothing was changed" removed (the outcome decides whether to say it)."""
    return NOTHING_CHANGED.sub("", text).rstrip(" .:;—-")


class Registry(Protocol):
    def load(self, request: ApprovalRequest) -> Action: ...


class Host(Protocol):
    """What an Execution needs from the flow that started it (approvals.flow.ApprovalFlow)."""

    config: Config
    store: ApprovalStore
    locks: Locks
    runtime: Any
    clock: Clock
    lease: timedelta

    @property
    def on_success(self) -> Sequence[Callable[[ApprovalRequest, Result], Awaitable[None]]]: ...

    @property
    def follow(self) -> Sequence[Callable[[ApprovalRequest, Result], Awaitable[None]]]: ...

    @property
    def registry(self) -> Registry: ...

    async def gate_context(
        self, request: ApprovalRequest, action: Action, claim: Outcome, current: Plan
    ) -> GateContext: ...

    async def record_outcome(
        self, request_id: str, token: str, *, ok: bool, outcome: str
    ) -> Outcome | None: ...

    async def refresh_card(
        self, request: ApprovalRequest, *, audit: dict[str, str] | None = None
    ) -> None: ...

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None: ...

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None: ...

    def audit_entry(
        self, request: ApprovalRequest, event: str, user: str, *, note: str = ""
    ) -> dict[str, str]: ...


class Execution:
    def __init__(self, flow: Host, request: ApprovalRequest, token: str) -> None:
        self.flow = flow
        self.request = request
        self.token = token
        self.lock_token = f"{request.id}:{secrets.token_hex(8)}"
        self.scope: str | None = None  # exec:<lock scope>, once the action is loaded
        self.locked = False
        self.action: Action | None = None
        self.replay = False
        self.refusal: GateRefusal | None = None
        self.promise = True  # may a refusal say "Nothing was changed."?
        self.stopped_before: str | None = None
        self.mutations: list[str] = []  # AWS operations that passed the checkpoint

    # -- the sequence -----------------------------------------------------------------------
    async def run(self, clicker: str | None) -> None:
        flow = self.flow
        heartbeat = asyncio.create_task(self._heartbeat())
        result: Result | None = None
        try:
            result = await self._attempt()
        except StoreUnavailableError as exc:
            self.refuse("claim_held", f"the approval store became unavailable ({exc.detail})")
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("approval.execution_error", error_id=error_id, request_id=self.request.id)
            self.refuse("unexpected", f"an unexpected error (error id {error_id}) stopped it")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            if self.locked and self.scope is not None:
                with contextlib.suppress(StoreUnavailableError):
                    await flow.store.release(self.scope, self.lock_token)
        ok, outcome = self.outcome(result)
        finished = await flow.record_outcome(self.request.id, self.token, ok=ok, outcome=outcome)
        await self._report(finished, result, outcome, clicker)

    async def _attempt(self) -> Result | None:
        flow = self.flow
        action = flow.registry.load(self.request).for_execution(self.request)
        self.action = action
        self.scope = f"exec:{action.lock_scope}"
        await flow.refresh_card(self.request, audit=flow.audit_entry(self.request, "executing", ""))
        if not await self._acquire_lock():
            holder = await flow.store.holder(self.scope) or ""
            if holder.startswith(f"{self.request.id}:"):
                # A replay while this request's earlier attempt still runs: it may be
                # changing things right now, so no promise either way.
                self.refuse(
                    "exclusive",
                    "an earlier attempt of this request is still running; check status",
                    promise=False,
                )
            else:
                where = action.lock_label
                self.refuse(
                    "exclusive",
                    f"another change to {where} is running; ask again when it has finished",
                )
            return None
        self.locked = True
        try:
            current = await self._cleared(action)
        except StoreUnavailableError as exc:
            self.refuse("claim_held", f"the approval store became unavailable ({exc.detail})")
            return None
        except ChatOpsError as exc:
            reason = without_promise(exc.user_message)
            self.refuse("plan_unchanged", f"it could not be planned again: {reason}")
            return None
        if current is None:
            return None
        return await self._execute(action, current)

    async def _acquire_lock(self) -> bool:
        """The one-at-a-time lock. A resumed request waits (up to a lease) for the lock its
        dead attempt held to lapse: that attempt stopped renewing it when it stopped answering."""
        flow = self.flow
        assert self.scope is not None
        if await flow.store.acquire(self.scope, self.lock_token, flow.lease):
            return True
        if self.request.resumed_at is None:
            return False
        loop = asyncio.get_running_loop()
        # A stalled attempt renews the lock once more as it finds its claim gone (its heartbeat
        # renews, then stops), so the lock may outlive the claim by up to a lease.
        deadline = loop.time() + 2 * flow.lease.total_seconds() + 1.0
        while loop.time() < deadline:
            holder = await flow.store.holder(self.scope) or ""
            if not holder.startswith(f"{self.request.id}:"):
                return await flow.store.acquire(self.scope, self.lock_token, flow.lease)
            await asyncio.sleep(0.2)
            if await flow.store.acquire(self.scope, self.lock_token, flow.lease):
                return True
        return False

    async def _cleared(self, action: Action) -> Plan | None:
        """The plan to execute once every rule holds, or None (``refusal`` says why)."""
        flow = self.flow
        if await action.applied(self.request.plan, flow.runtime):
            claim = await self._claim()
            reason = claim_held(self._context(claim, self.request.plan))
            if reason is not None:
                self.refuse("claim_held", reason)
                return None
            self.replay = True
            return self.request.plan
        current = await action.plan(flow.runtime)
        claim = await self._claim()
        refusal = check(await flow.gate_context(self.request, action, claim, current))
        if refusal is not None:
            self.refusal = refusal
            return None
        return current

    async def _execute(self, action: Action, plan: Plan) -> Result | None:
        try:
            with guarded(self.checkpoint):
                return await action.execute(plan, self.flow.runtime)
        except GateClosedError as exc:
            self.refuse(exc.rule or "claim_held", exc.user_message)
            return None
        except ChatOpsError as exc:
            return Result(ok=False, summary=self._failed(exc.user_message, exc))
        except Exception as exc:
            error_id = uuid.uuid4().hex[:8]
            log.exception("approval.execute_failed", error_id=error_id, request_id=self.request.id)
            text = f"Failed with an unexpected error (error id {error_id}); check status."
            return Result(ok=False, summary=self._failed(text, exc))

    async def _report(
        self, finished: Outcome | None, result: Result | None, outcome: str, clicker: str | None
    ) -> None:
        flow = self.flow
        if finished is None:
            return  # not recorded: the lease lapses and the sweeper marks it in doubt
        if finished.status is Status.LOST:
            # The claim is gone (a failover put the request back, or another executor holds
            # it): whoever holds it now decides what the card and people are told.
            log.warning(
                "approval.claim_lost_at_finish", request_id=self.request.id, outcome=outcome
            )
            return
        final = finished.request or self.request
        refused = self.refusal is not None
        event = "blocked" if refused and finished.status is Status.FAILED else finished.status.value
        note = f"{self.refusal.rule}: {outcome}" if self.refusal is not None else outcome
        await flow.refresh_card(final, audit=flow.audit_entry(final, event, "", note=note))
        if finished.status is Status.LATE:
            return  # in doubt: the card says so; the late report is kept beside it
        if refused:
            who = clicker or final.decided_by or final.requester
            await flow.tell(final, who, f"*{final.plan.summary}*\n{outcome}")
            return
        if final.state is not State.SUCCEEDED:
            # A failure is news for those following the thread. A success is on the card
            # already: its thread gets no copy (a followed change's thread gets the rollout's
            # own progress message instead).
            await flow.thread_reply(final, outcome)
        if result is not None and result.ok and finished.status is Status.SUCCEEDED:
            hooks = list(flow.on_success)
            if self.action is not None and self.action.followed:
                hooks = [*flow.follow, *hooks]
            for hook in hooks:
                try:
                    await hook(final, result)
                except Exception:
                    log.exception("approval.after_success_failed", request_id=final.id)

    # -- checks -----------------------------------------------------------------------------
    def refuse(self, rule: str, reason: str, *, promise: bool = True) -> None:
        if self.refusal is None:
            self.refusal = GateRefusal(rule, without_promise(reason))
            self.promise = promise

    async def _claim(self) -> Outcome:
        return await self.flow.store.extend(self.request.id, self.token, self.flow.lease)

    def _context(self, claim: Outcome, plan: Plan, hold: Hold | None = None) -> GateContext:
        latest = claim.request or self.request
        return GateContext(
            request=latest,
            claim_held=claim.status is Status.EXTENDED,
            now=latest.checked_at or self.flow.clock.now(),
            env=self.flow.config.environments.get(latest.env),
            hold=hold,
            approvers_now=frozenset(),
            critical=False,
            waived=self.action.approval_waived(self.flow.config) if self.action else False,
            approved_plan=plan,
            current_plan=plan,
        )

    async def checkpoint(self, operation: str) -> None:
        """Before each AWS mutation: the claim is still ours (the Lua compare also extends the
        lease), so is the execution lock, and no lock or freeze began meanwhile (unless
        break-glass, or the action's `holds_checked_at_gate_only`). A replay makes no change."""
        self.stopped_before = operation
        if self.replay:
            raise GateClosedError(
                f"this request's change is already in place, yet {operation} was about to be "
                "sent again; it was not",
                rule="plan_unchanged",
            )
        flow = self.flow
        try:
            claim = await self._claim()
            hold = await flow.locks.get_hold(self.action.hold_scope) if self.action else None
            holder = await flow.store.holder(self.scope) if self.scope else None
        except StoreUnavailableError as exc:
            raise GateClosedError(
                f"the approval store is unavailable, so the claim cannot be confirmed "
                f"({exc.detail})",
                rule="claim_held",
            ) from exc
        ctx = self._context(claim, self.request.plan, hold)
        rules = [("claim_held", claim_held), ("no_lock_or_freeze", no_lock_or_freeze)]
        if self.action is not None and self.action.holds_checked_at_gate_only:
            rules = rules[:1]  # a lock or freeze begun since the gate does not stop it midway
        for name, rule in rules:
            reason = rule(ctx)
            if reason is not None:
                raise GateClosedError(reason, rule=name)
        if holder != self.lock_token:
            where = self.action.lock_label if self.action else "this scope"
            raise GateClosedError(
                f"the bot lost the one-at-a-time lock on {where}; another change may be running",
                rule="exclusive",
            )
        self.mutations.append(operation)
        self.stopped_before = None

    async def _heartbeat(self) -> None:
        """Keep the claim's lease and, once taken, the execution lock alive. A lost lease
        (marked in doubt) ends the heartbeat; the checkpoint then stops any further change."""
        flow = self.flow
        interval = flow.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                extended = await self._claim()
                if self.locked and self.scope is not None:
                    renewed = await flow.store.renew(self.scope, self.lock_token, flow.lease)
                    if not renewed:
                        log.error("approval.exec_lock_lost", request_id=self.request.id)
            except StoreUnavailableError:
                log.warning("approval.lease_not_extended", request_id=self.request.id)
                continue
            if extended.status is not Status.EXTENDED:
                log.error("approval.lease_lost", request_id=self.request.id)
                return

    # -- words --------------------------------------------------------------------------------
    def _failed(self, message: str, exc: BaseException) -> str:
        """A failure's text, never claiming "nothing was changed" after a change was made. A
        mutation AWS answered with a refusal did not happen; one that timed out may have."""
        if self.request.resumed_at is not None:
            message = without_promise(message)  # the attempt before it may have changed things
        done = list(self.mutations)
        uncertain = ""
        if done and getattr(exc, "operation", None) == done[-1]:
            last = done.pop()
            if not getattr(exc, "answered", False):
                uncertain = f"; {last} may or may not have taken effect"
        if not done and not uncertain:
            return message
        kept, block, detail = without_promise(message).partition("\n```")
        already = f". Already done before it failed: {', '.join(done)}" if done else ""
        # A detail shown as a code block (a task's log tail) stays last, after the sentence.
        return (
            f"{kept.rstrip(' .:;—-')}{already}{uncertain}; check status before doing anything "
            f"else.{block}{detail}"
        )

    def outcome(self, result: Result | None) -> tuple[bool, str]:
        if self.refusal is None:
            if result is None:
                return False, "Not executed. Nothing was changed."
            return result.ok, result.summary
        reason = self.refusal.reason
        if self.mutations:
            done = ", ".join(self.mutations)
            return False, (
                f"Stopped before {self.stopped_before or 'the next change'} — {reason}. "
                f"Already done: {done}; check status before doing anything else."
            )
        if self.request.resumed_at is not None:
            # An earlier attempt of this request ran before its replica stopped answering.
            return False, (
                f"Not resumed — {reason}. The attempt before may have made changes; check "
                "status before doing anything else."
            )
        if not self.promise:
            return False, f"Not executed by this attempt — {reason}."
        return False, f"Not executed — {reason}. Nothing was changed."
