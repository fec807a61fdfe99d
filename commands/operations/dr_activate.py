"""`dr activate [--reason TEXT] [--break-glass]`: fail over to the DR region. Critical: at least
two approvers besides the requester, one more with --break-glass (README "Disaster recovery").

The steps, in order (plan parts in dr_plan.py, the idempotent steps in dr_run.py, the thread's
progress message in dr_board.py):

1. the DR database: promote the read replica `[dr] db_instance`, or restore the newest
   replicated backup (`automated_backup_arn`) into `<source>-dr-restore`; wait until available;
2. each configured service in the DR cluster: production's images (the same references, so the
   same digests) at production's desired count;
3. the failover record, when configured: UPSERT to the DR target, followed to INSYNC;
4. the outcome with the elapsed time against `rto_seconds`, on the card, in the thread and on
   every open incident (`ActionRuntime.announce`), success or failure.

Its environment is the primary one ("production", else the first configured): its approvers,
requesters and freeze windows apply. No `/dhanam lock` holds it (it changes no production
service); a freeze does at the gate unless --break-glass — one that begins mid-run does not stop
it half-done. One activation at a time per DR region: the execution lock `dr:<region>`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import ClassVar

import structlog

from approvals.models import Action, Change, Plan, Result
from commands.operations import dr_rpo, dr_run, dr_services
from commands.operations.dr_board import Board, StepState, against_rto
from commands.operations.dr_plan import (
    ServiceTarget,
    database_part,
    services_part,
)
from commands.operations.dr_record import record_part, simple_record
from commands.operations.runtime import ActionRuntime
from commands.requests import DrActivateRequest, Request
from core.clock import Clock
from core.config import Config, DrConfig
from core.errors import ChatOpsError
from core.guard import GateClosedError
from core.text import duration
from integrations.aws.dr import production_env
from integrations.aws.dr_actions import DrActions

log = structlog.get_logger(__name__)

PLAN_BUDGET = 20.0  # seconds for every read of a plan (at request time and at the gate)


def dr_config(config: Config) -> DrConfig:
    if config.dr is None:
        raise ChatOpsError(
            "DR is not configured — add a [dr] table (region, cluster, db_instance or "
            "automated_backup_arn; see docs/configuration.md)"
        )
    return config.dr


class DrActivateAction(Action):
    """Activate the DR region (docs/commands.md).

    Fingerprint (dr_plan.py): the DR region and cluster; the database's identity (identifier,
    ARN, DbiResourceId — or the backups' ARN, their source and the new instance's name);
    production's images and desired count per service; the record's zone, name, type, TTL and
    target. Not what activation itself moves (the replica's state, the DR services, where the
    record points), so a replay of a half-done activation passes the gate and resumes.
    """

    kind: ClassVar[str] = "dr_activate"
    critical: ClassVar[bool] = True
    holds_checked_at_gate_only: ClassVar[bool] = True  # a freeze mid-run never stops it half-done
    # Each step looks before it acts: a replica that dies mid-activation hands it to another,
    # which resumes at the first step not done (approvals.models.Action.resumable).
    resumable: ClassVar[bool] = True

    region: str  # the DR region: the execution lock's scope

    @property
    def lock_scope(self) -> str:
        return f"dr:{self.region}"

    @property
    def lock_label(self) -> str:
        return f"DR activation in {self.region}"

    @classmethod
    def from_request(
        cls,
        request: Request,
        config: Config,
        clock: Clock,  # noqa: ARG003 - every Action's builder takes the same arguments
    ) -> DrActivateAction:
        assert isinstance(request, DrActivateRequest)
        return cls(
            env=production_env(config),
            region=dr_config(config).region,
            reason=request.reason,
            break_glass=request.break_glass,
        )

    def title(self) -> str:
        return f"Activate DR in {self.region}"

    async def plan(self, runtime: ActionRuntime) -> Plan:
        """Every read under one budget (PLAN_BUDGET): an unreadable primary costs at most
        `[status] source_timeout_seconds` (its services are then planned from the snapshot)."""
        try:
            return await asyncio.wait_for(self._plan(runtime), PLAN_BUDGET)
        except TimeoutError as exc:
            raise ChatOpsError(
                f"planning the DR activation took more than {PLAN_BUDGET:g} s (AWS in "
                f"{dr_config(runtime.config).region} did not answer in time); nothing was "
                "changed — try again"
            ) from exc

    async def _plan(self, runtime: ActionRuntime) -> Plan:
        dr = dr_config(runtime.config)
        actions = DrActions(runtime.aws.clients)
        (
            (db_inputs, db_change, db_facts),
            (services, production_facts),
            record,
            rpo,
        ) = await asyncio.gather(
            database_part(actions, dr),
            services_part(runtime, dr, self.env),
            record_part(actions, dr),
            dr_rpo.rpo_facts(runtime, dr),
        )
        rec_inputs, rec_change, rec_warnings = record
        rto = timedelta(seconds=dr.rto_seconds)
        changes = [db_change, *(change for _, change, _ in services)]
        if rec_change is not None:
            changes.append(rec_change)
        changes.append(
            Change(
                label=f"{4 if rec_change is not None else 3}. outcome",
                before="—",
                after=f"elapsed time against the {duration(rto)} RTO, here and on open incidents",
            )
        )
        primary = runtime.config.environments[self.env]
        what = "promote" if db_inputs["kind"] == "replica" else "restore"
        names = ", ".join(target.name for target, _, _ in services)
        summary = f"Activate DR in {dr.region}: {what} the database, run {names} as {self.env} does"
        if rec_inputs is not None:
            summary += f", switch {rec_inputs['name']}"
        return Plan.build(
            summary,
            inputs={
                "region": dr.region,
                "cluster": dr.cluster,
                "database": db_inputs,
                "services": {target.name: target.inputs() for target, _, _ in services},
                "record": rec_inputs,
            },
            changes=changes,
            facts=[
                *rpo,
                *db_facts,
                *production_facts,
                f"images and desired counts are {self.env}'s ({primary.cluster}, "
                f"{primary.region}), read now unless said above",
                "each step is shown in this card's thread as it runs; a failed step stops the rest",
            ],
            warnings=[
                "A promoted replica stops replicating for good: failing back to "
                f"{primary.region} is a separate, manual job.",
                *rec_warnings,
            ],
        )

    async def applied(self, approved: Plan, runtime: ActionRuntime) -> bool:
        """Every step is already done: the database promoted (or restored) and available, each
        DR service on production's images at production's count, the record at the target."""
        dr = dr_config(runtime.config)
        actions = DrActions(runtime.aws.clients)
        inputs = approved.inputs
        db = inputs["database"]
        name = str(db["identifier"] if db["kind"] == "replica" else db["target"])
        state = await actions.database(dr.region, name)
        if state is None or not (state.promoted and state.available):
            return False
        targets = [ServiceTarget.of(str(n), raw) for n, raw in inputs["services"].items()]
        if not await dr_services.in_place(runtime, dr, targets):
            return False
        record = inputs.get("record")
        if record is None:
            return True
        found = simple_record(
            await actions.record_sets(str(record["zone_id"]), str(record["name"])),
            str(record["name"]),
        )
        return found is not None and found.points_at(str(record["target"]))

    async def execute(self, plan: Plan, runtime: ActionRuntime) -> Result:
        dr = dr_config(runtime.config)
        actions = DrActions(runtime.aws.clients)
        inputs = plan.inputs
        targets = [ServiceTarget.of(str(n), raw) for n, raw in inputs["services"].items()]
        record = inputs.get("record")
        db = inputs["database"]
        db_label = (
            f"1. promote {db['identifier']}"
            if db["kind"] == "replica"
            else f"1. restore the newest replicated backup into {db['target']}"
        )
        labels = [
            db_label,
            *(f"2. {t.name} in {dr.cluster} → {t.label}" for t in targets),
        ]
        if record is not None:
            labels.append(f"3. {record['name']} → {record['target']}")
        rto = timedelta(seconds=dr.rto_seconds)
        board = Board(runtime, self.request_id, region=dr.region, rto=rto, labels=labels)
        since = board.started  # one RTO for every wait, from the start of the activation
        await board.show()
        details: list[str] = []
        try:
            await board.set(0, StepState.RUNNING)
            detail = await dr_run.database_step(
                runtime,
                actions,
                dr,
                db,
                request_id=self.request_id,
                waiting=lambda status: board.set(0, StepState.RUNNING, status),
                since=since,
            )
            details.append(f"{db_label.removeprefix('1. ')}: {detail}")
            await board.set(0, StepState.DONE, detail)
            details += await dr_services.services_phase(
                runtime, dr, targets, board, self.request_id
            )
            if record is not None:
                last = len(labels) - 1
                await board.set(last, StepState.RUNNING)
                detail = await dr_run.record_step(
                    runtime,
                    actions,
                    record,
                    request_id=self.request_id,
                    limit=rto,
                    waiting=lambda status: board.set(last, StepState.RUNNING, status),
                    since=since,
                )
                details.append(f"{record['name']} → {record['target']}: {detail}")
                await board.set(last, StepState.DONE, detail)
        except Exception as exc:
            current = board.at
            if isinstance(exc, GateClosedError) and exc.rule == "claim_held":
                # This attempt lost its claim (it stalled, and another replica resumed the
                # activation): it says nothing — the one running now speaks.
                raise
            await self._failed(runtime, board, current, exc, dr.region)
            if isinstance(exc, GateClosedError) or not isinstance(exc, ChatOpsError):
                raise
            raise dr_run.StepFailedError(board.failure(current, exc.user_message), exc) from exc
        await board.finish()
        elapsed = board.elapsed
        timing = against_rto(elapsed, rto)
        summary = f"DR active in {dr.region} after {timing}: " + "; ".join(details)
        log.info("dr_activate.done", region=dr.region, seconds=elapsed.total_seconds())
        await self._tell(
            runtime,
            f":white_check_mark: *DR activated in {dr.region}* after {timing}: "
            + "; ".join(board.done_labels()),
        )
        return Result(
            ok=True,
            summary=summary,
            details={
                "region": dr.region,
                "elapsed_seconds": round(elapsed.total_seconds(), 1),
                "rto_seconds": dr.rto_seconds,
                "steps": details,
            },
        )

    async def _failed(
        self, runtime: ActionRuntime, board: Board, index: int, exc: BaseException, region: str
    ) -> None:
        why = exc.user_message if isinstance(exc, ChatOpsError) else type(exc).__name__
        await board.fail(index, why)
        log.warning("dr_activate.failed", step=board.steps[index].label, error=why)
        timing = against_rto(board.elapsed, board.rto)
        await self._tell(
            runtime,
            f":x: *DR activation in {region} stopped* at {board.steps[index].label} after "
            f"{timing}: {why} — done: {'; '.join(board.done_labels()) or 'nothing'}",
        )

    async def _tell(self, runtime: ActionRuntime, text: str) -> None:
        if runtime.announce is not None:
            await runtime.announce(text)
