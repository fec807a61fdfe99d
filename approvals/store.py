"""The Redis store of approval requests: atomic transitions, the sweep index, audit, leases.

Keys (prefix `dhanam:`):
  {req:<id>}            hash: the request                 (one slot per request, so every
  {req:<id>}:events     list: its transitions, in order    script runs on Redis Cluster)
  active                sorted set: request id -> when the sweeper should look at it next
  audit                 stream, capped: every transition of every request
  lease:<name>          string: a short lease (sweeper, followers), owned by a random token

Every Redis failure surfaces as StoreUnavailableError: callers fail closed.

Long: it is the one place that knows a request's keys and hash layout; every transition, the
sweep index, the audit stream and the leases read or write those keys (the Lua scripts
themselves are in approvals/lua.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from redis.exceptions import NoScriptError

from approvals import lua
from approvals.models import Approval, ApprovalRequest, Plan, State, from_ms, utc_ms
from core.clock import Clock
from core.errors import StoreUnavailableError
from core.redis import RedisClient, call, redis_key

RETENTION = timedelta(days=30)
AUDIT_MAXLEN = 10_000
ORPHAN_AFTER = timedelta(seconds=30)


class Status(StrEnum):
    """What a transition script answered."""

    MISSING = "missing"
    DECIDED = "decided"
    EXPIRED = "expired"
    SELF = "self"
    NOT_APPROVER = "not_approver"
    NOT_REQUESTER = "not_requester"
    DUPLICATE = "duplicate"
    NOT_READY = "not_ready"
    RECORDED = "recorded"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    CLAIMED = "claimed"
    EXTENDED = "extended"
    LOST = "lost"
    LATE = "late"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    RESUMED = "resumed"  # a resumable request whose executor stopped answering: run it again
    ORPHAN = "orphan"
    WAIT = "wait"
    FINAL = "final"
    OK = "ok"


@dataclass(frozen=True)
class Outcome:
    status: Status
    request: ApprovalRequest | None


def request_key(request_id: str) -> str:
    return redis_key(f"{{req:{request_id}}}")


def events_key(request_id: str) -> str:
    return request_key(request_id) + ":events"


def lease_key(name: str) -> str:
    return redis_key("lease", name)


ACTIVE_KEY = redis_key("active")
ANNOTATIONS = frozenset({"rollout"})
AUDIT_KEY = redis_key("audit")


def new_request_id() -> str:
    return secrets.token_hex(6)


def to_hash(request: ApprovalRequest) -> dict[str, str]:
    return {
        "id": request.id,
        "kind": request.kind,
        "action": json.dumps(request.action, sort_keys=True),
        "plan": request.plan.model_dump_json(),
        "requester": request.requester,
        "reason": request.reason or "",
        "env": request.env,
        "service": request.service or "",
        "channel": request.channel or "",
        "ts": request.ts or "",
        "origin_channel": request.origin_channel or "",
        "approvals": json.dumps([{"user": a.user, "at": utc_ms(a.at)} for a in request.approvals]),
        "required": str(request.required),
        "state": request.state.value,
        "created_ms": str(utc_ms(request.created_at)),
        "expires_ms": str(utc_ms(request.expires_at)),
        "break_glass": "1" if request.break_glass else "0",
        "version": str(request.version),
        "decided_by": request.decided_by or "",
        "outcome": request.outcome or "",
        "warnings": json.dumps(request.warnings),
        "followed": "1" if request.followed else "0",
        "resumable": "1" if request.resumable else "0",
    }


def from_hash(fields: dict[str, str]) -> ApprovalRequest:
    approvals = json.loads(fields.get("approvals") or "[]")
    # cjson encodes an empty Lua table as {}: treat it as no approvals.
    if isinstance(approvals, dict):
        approvals = []
    return ApprovalRequest(
        id=fields["id"],
        kind=fields["kind"],
        action=json.loads(fields["action"]),
        plan=Plan.model_validate_json(fields["plan"]),
        requester=fields["requester"],
        reason=fields.get("reason") or None,
        env=fields["env"],
        service=fields.get("service") or None,
        channel=fields.get("channel") or None,
        ts=fields.get("ts") or None,
        origin_channel=fields.get("origin_channel") or None,
        approvals=[Approval(user=a["user"], at=from_ms(a["at"])) for a in approvals],
        required=int(fields["required"]),
        state=State(fields["state"]),
        created_at=from_ms(fields["created_ms"]),
        expires_at=from_ms(fields["expires_ms"]),
        break_glass=fields.get("break_glass") == "1",
        version=int(fields.get("version", "1")),
        decided_by=fields.get("decided_by") or None,
        outcome=fields.get("outcome") or fields.get("late_outcome") or None,
        warnings=json.loads(fields.get("warnings") or "[]"),
        rollout=fields.get("rollout") or None,
        followed=fields.get("followed") == "1",
        resumable=fields.get("resumable") == "1",
        resumed_at=from_ms(fields["resumed_ms"]) if fields.get("resumed_ms") else None,
        approved_at=from_ms(fields["approved_ms"]) if fields.get("approved_ms") else None,
        checked_at=from_ms(fields["checked_ms"]) if fields.get("checked_ms") else None,
    )


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def _outcome(raw: list[str]) -> Outcome:
    status = Status(raw[0])
    request = from_hash(_pairs(raw[1:])) if len(raw) > 1 else None
    return Outcome(status, request)


class ApprovalStore:
    def __init__(self, redis: RedisClient, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock
        self._scripts = {
            name: redis.register_script(source)
            for name, source in (
                ("approve", lua.APPROVE),
                ("deny", lua.DENY),
                ("cancel", lua.CANCEL),
                ("abandon", lua.ABANDON),
                ("claim", lua.CLAIM),
                ("extend", lua.EXTEND),
                ("finish", lua.FINISH),
                ("sweep", lua.SWEEP),
                ("set_card", lua.SET_CARD),
                ("annotate", lua.ANNOTATE),
            )
        }

    def _now_ms(self) -> int:
        return utc_ms(self._clock.now())

    def _skew_ms(self) -> int:
        """What the scripts add to Redis TIME: 0 with the system clock (see approvals/lua.py)."""
        return int(self._clock.skew() * 1000)

    async def _run(self, name: str, request_id: str, *args: str | int) -> Outcome:
        script = self._scripts[name]
        keys = [request_key(request_id), events_key(request_id)]
        argv = [*args, self._skew_ms()]
        raw: list[str] = await call(lambda: script(keys=keys, args=argv))
        return _outcome(raw)

    async def _run_and_index(
        self, name: str, request_id: str, due: datetime, *args: str | int
    ) -> Outcome:
        """Run a transition script and, in the same round trip, make sure the sweeper looks at
        the request by ``due`` (ZADD LT only ever brings the next look forward). A pipeline of
        raw EVALSHA, because redis-py's script pipelines check SCRIPT EXISTS first (another
        round trip); the script is loaded only when Redis says it does not know it."""
        script = self._scripts[name]
        keys = [request_key(request_id), events_key(request_id)]

        async def both() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args, self._skew_ms())
            pipe.zadd(ACTIVE_KEY, {request_id: utc_ms(due)}, lt=True)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            return results

        results = await call(both)
        if isinstance(results[0], NoScriptError):  # first use, or Redis restarted
            return await self._run(name, request_id, *args)
        if isinstance(results[0], Exception):
            raise StoreUnavailableError(f"{type(results[0]).__name__}: {results[0]}")
        return _outcome(results[0])

    # -- lifecycle -------------------------------------------------------------------------
    async def create(self, request: ApprovalRequest) -> None:
        """Store a new request and index it for the sweeper (index first: a dangling index
        entry is harmless, an unindexed pending request would never be swept)."""
        waiting = request.state in (State.PENDING, State.NEW)
        due = request.expires_at if waiting else self._clock.now()
        retain = int((request.expires_at - self._clock.now() + RETENTION).total_seconds() * 1000)

        async def write() -> None:
            await self._redis.zadd(ACTIVE_KEY, {request.id: utc_ms(due)})
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(request_key(request.id), mapping=cast(Any, to_hash(request)))
            pipe.pexpire(request_key(request.id), retain)
            pipe.rpush(
                events_key(request.id),
                json.dumps(
                    {
                        "event": "created",
                        "user": request.requester,
                        "at": self._now_ms(),
                        "version": request.version,
                    }
                ),
            )
            pipe.pexpire(events_key(request.id), retain)
            await pipe.execute()

        await call(write)

    async def get(self, request_id: str) -> ApprovalRequest | None:
        fields = cast(
            "dict[str, str]", await call(lambda: self._redis.hgetall(request_key(request_id)))
        )
        return from_hash(fields) if fields else None

    async def events(self, request_id: str) -> list[dict[str, Any]]:
        raw = cast(
            "list[str]", await call(lambda: self._redis.lrange(events_key(request_id), 0, -1))
        )
        return [json.loads(item) for item in raw]

    async def approve(self, request_id: str, user: str, *, eligible_in: list[str]) -> Outcome:
        """One round trip. ``eligible_in``: the environments ``user`` may approve in; the
        script checks the request's own environment against it."""
        # If this click decides and this replica then dies before executing, the sweeper must
        # find the approved request soon, not at its expiry: bring its next look forward.
        return await self._run_and_index(
            "approve",
            request_id,
            self._clock.now() + ORPHAN_AFTER,
            user,
            ",".join(eligible_in),
            _ms(RETENTION),
        )

    async def deny(
        self, request_id: str, user: str, *, eligible_in: list[str], note: str
    ) -> Outcome:
        return await self._run(
            "deny", request_id, user, ",".join(eligible_in), _ms(RETENTION), note
        )

    async def cancel(self, request_id: str, user: str) -> Outcome:
        return await self._run("cancel", request_id, user, _ms(RETENTION))

    async def abandon(self, request_id: str, user: str, note: str) -> Outcome:
        """new/pending/approved -> cancelled in one step: for a request whose card could not be
        posted or recorded. Answers CANCELLED when it is (or already was) cancelled."""
        outcome = await self._run("abandon", request_id, user, note, _ms(RETENTION))
        if outcome.status is Status.CANCELLED:
            await call(lambda: self._redis.zrem(ACTIVE_KEY, request_id))
        return outcome

    async def claim(self, request_id: str, token: str, lease: timedelta) -> Outcome:
        outcome = await self._run("claim", request_id, token, _ms(lease))
        if outcome.status is Status.CLAIMED:
            await self._index(request_id, self._clock.now() + lease)
        return outcome

    async def extend(self, request_id: str, token: str, lease: timedelta) -> Outcome:
        outcome = await self._run("extend", request_id, token, _ms(lease))
        if outcome.status is Status.EXTENDED:
            await self._index(request_id, self._clock.now() + lease)
        return outcome

    async def finish(self, request_id: str, token: str, *, ok: bool, outcome: str) -> Outcome:
        state = State.SUCCEEDED if ok else State.FAILED
        result = await self._run("finish", request_id, token, state.value, outcome, _ms(RETENTION))
        if result.status in (Status.SUCCEEDED, Status.FAILED):
            await call(lambda: self._redis.zrem(ACTIVE_KEY, request_id))
        return result

    async def set_card(self, request_id: str, channel: str, ts: str) -> Outcome:
        """Record the card and open the request: new -> pending, or new -> approved (status
        APPROVED) when it needs no approval; only then may it run. Idempotent."""
        outcome = await self._run("set_card", request_id, channel, ts)
        if outcome.status is Status.APPROVED:
            # The executor is started at once; should this replica die first, the sweeper
            # picks the approved request up as an orphan.
            await self._index(request_id, self._clock.now() + ORPHAN_AFTER)
        return outcome

    async def annotate(self, request_id: str, field: str, value: str) -> Outcome:
        if field not in ANNOTATIONS:
            raise ValueError(f"{field} is not an annotation")
        return await self._run("annotate", request_id, field, value)

    async def sweep_one(self, request_id: str) -> Outcome:
        outcome = await self._run("sweep", request_id, _ms(RETENTION), _ms(ORPHAN_AFTER))
        if outcome.status in (Status.MISSING, Status.FINAL, Status.EXPIRED, Status.IN_DOUBT):
            await call(lambda: self._redis.zrem(ACTIVE_KEY, request_id))
        elif outcome.status is Status.WAIT and outcome.request is not None:
            await self._index(request_id, self._next_look(outcome.request))
        return outcome

    def _next_look(self, request: ApprovalRequest) -> datetime:
        if request.state in (State.PENDING, State.NEW):
            return request.expires_at
        return self._clock.now() + timedelta(seconds=5)

    async def _index(self, request_id: str, when: datetime) -> None:
        await call(lambda: self._redis.zadd(ACTIVE_KEY, {request_id: utc_ms(when)}))

    async def due(self, limit: int = 100) -> list[str]:
        """Requests the sweeper should look at now."""
        return cast(
            "list[str]",
            await call(
                lambda: self._redis.zrangebyscore(
                    ACTIVE_KEY, "-inf", self._now_ms(), start=0, num=limit
                )
            ),
        )

    async def active_ids(self) -> list[str]:
        return cast("list[str]", await call(lambda: self._redis.zrange(ACTIVE_KEY, 0, -1)))

    async def audit_and_version(self, entry: dict[str, str], request_id: str) -> int | None:
        """Append to the audit stream and read the request's version, in one round trip."""

        async def both() -> list[Any]:
            pipe = self._redis.pipeline(transaction=False)
            pipe.xadd(AUDIT_KEY, cast(Any, entry), maxlen=AUDIT_MAXLEN, approximate=True)
            pipe.hget(request_key(request_id), "version")
            result: list[Any] = await pipe.execute()
            return result

        results = await call(both)
        return int(results[1]) if results[1] is not None else None

    # -- audit -----------------------------------------------------------------------------
    async def audit(self, entry: dict[str, str]) -> None:
        await call(
            lambda: self._redis.xadd(
                AUDIT_KEY, cast(Any, entry), maxlen=AUDIT_MAXLEN, approximate=True
            )
        )

    async def recent_audit(self, count: int) -> list[dict[str, str]]:
        raw = cast(
            "list[tuple[str, dict[str, str]]]",
            await call(lambda: self._redis.xrevrange(AUDIT_KEY, count=count)),
        )
        return [{"id": entry_id, **fields} for entry_id, fields in raw]

    # -- leases ----------------------------------------------------------------------------
    @asynccontextmanager
    async def lease(self, name: str, ttl: timedelta) -> AsyncIterator[str | None]:
        """A short exclusive lease: yields the token when acquired, None when someone has it.
        Released (only by its own token) on exit."""
        key = lease_key(name)
        token = secrets.token_hex(8)
        acquired = cast(
            "bool | None", await call(lambda: self._redis.set(key, token, nx=True, px=_ms(ttl)))
        )
        try:
            yield token if acquired else None
        finally:
            if acquired:
                await self.release(name, token)

    async def acquire(self, name: str, token: str, ttl: timedelta) -> bool:
        key = lease_key(name)
        result = cast(
            "bool | None", await call(lambda: self._redis.set(key, token, nx=True, px=_ms(ttl)))
        )
        return bool(result)

    async def holder(self, name: str) -> str | None:
        return cast("str | None", await call(lambda: self._redis.get(lease_key(name))))

    async def renew(self, name: str, token: str, ttl: timedelta) -> bool:
        result: int = await call(
            lambda: self._redis.eval(_RENEW, 1, lease_key(name), token, _ms(ttl))
        )
        return bool(result)

    async def release(self, name: str, token: str) -> bool:
        result: int = await call(lambda: self._redis.eval(_RELEASE, 1, lease_key(name), token))
        return bool(result)


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)
