"""The threads boto3 calls run in: bounded pools, reads apart from mutations, one pair per region.

A boto3 call blocks its thread for as long as botocore retries (read timeout 30 s, 5 attempts
in the worst case). With one shared pool (asyncio's default executor, what `asyncio.to_thread`
uses), a busy App Home or a slow status could take every thread and an approved rollback would
queue behind them. Here reads (status, App Home, plans: `Describe*`, `List*`, `Get*`, …) and
mutations (everything else, see `errors.is_mutation`) have pools of their own, so slow reads
never delay an approved change, and no pool grows without bound.

A read that the caller gave up on (`asyncio.wait_for` around a status call) keeps running in its
thread until botocore returns: Python threads cannot be cancelled. (A call still queued when its
caller gives up is dropped: the asyncio future's cancellation cancels the pool's future.) So a
region that hangs — the primary in an outage, every call accepted and never answered — fills
whatever pool its calls run in, and everything queued behind them times out. That is why the
pools are per region: the calls to a region run in that region's pools (`READ_WORKERS` read
threads, `MUTATION_WORKERS` mutation threads), so a hung us-east-1 takes us-east-1's threads
only and reads of the DR region, made at exactly that moment by `dr status`, still get theirs.

Which region: `region_of` takes it from the boto3 client the call uses — the bound method's
client (`ecs.describe_services`) or the client a closure captured (the paginating `collect`
functions of the gateways) — so none of `call_aws`'s call sites names it. Global services
(Route 53, CloudFront: an endpoint that is not a region's; and Health, which botocore places
in `aws-global` unless an endpoint is given) share the pools named `aws-global`, apart from any
region. A call with no client to be found (`AwsClients.start`'s warm-up) runs in
the shared pools named `other`.

How long a hung region keeps its threads: botocore's read timeout (30 s) times its attempts
(5; `clients.BOTO_CONFIG`) plus backoff, so for two to three minutes after the region answers
again its reads may still queue. A shorter timeout for reads alone is not taken: a client (one
per service and region) has one configuration for the reads and the changes made with it, and
changes need the 30 s and the retries; a second set of clients for reads would double the
clients built at start-up and make every call site choose one. With pools per region that wait
costs only the region that hangs, whose reads fail meanwhile anyway.

Bound: pools are created on first use, and their threads on demand. At most `MAX_REGIONS` keys
(regions, `aws-global`) get pools of their own; calls to any further region share `other`. So
at most (MAX_REGIONS + 1) * (READ_WORKERS + MUTATION_WORKERS) threads exist, (8 + 1) * 12 = 108
in the worst case; a bot configured with a primary and a DR region uses 2 regions, `aws-global`
and `other`: at most 48, only as many as calls ever ran at once.

The context (contextvars) is copied into the thread, as `asyncio.to_thread` does, so structlog's
bound request fields and `core.guard`'s checkpoint reach the call. The checkpoint itself runs on
the event loop before the call is submitted (errors.call_aws), never in the thread.

Ownership: the app's `AwsClients` holds its executors; the app's start-up makes them the ones
`call_aws` uses (`activate`) and its cleanup removes and shuts them down (`deactivate`). A
registry rather than a parameter because `call_aws` has some twenty call sites (the gateways,
the CloudWatch reader, the Actions) that pass a boto3 method and no owner. Code that runs with no
app started (unit and integration tests driving a gateway directly, bench scripts, the sandbox's
tools) gets a process default, built on first use with the same sizes; its idle threads are
joined by `concurrent.futures` at interpreter exit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from botocore.client import BaseClient

T = TypeVar("T")

# Reads, per region: status and App Home fan out a few calls per environment; 8 keeps a status
# of a dozen services quick without letting a burst of App Home opens take more than 8 threads.
READ_WORKERS = 8
# Mutations, per region: approved changes run one at a time per service (locks); 4 lets a few
# services' changes run at once. Separate from the reads, so a read burst cannot delay them.
MUTATION_WORKERS = 4
# Regions (and `aws-global`) with pools of their own; further regions share OTHER's.
MAX_REGIONS = 8

GLOBAL = "aws-global"  # Route 53, CloudFront: botocore's name for their region, too
OTHER = "other"  # calls with no client found, and regions past MAX_REGIONS


def region_of(fn: Callable[..., object]) -> str | None:
    """The region of the boto3 client `fn` calls: a bound client method's, else that of a
    client among the variables a closure captured (the first found); `GLOBAL` for a global
    service; None when there is no client to be found."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    candidates = [getattr(fn, "__self__", None)]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            candidates.append(cell.cell_contents)
        except ValueError:  # a cell not yet assigned
            continue
    for candidate in candidates:
        if isinstance(candidate, BaseClient):
            if candidate.meta.service_model.metadata.get("globalEndpoint"):
                return GLOBAL  # even with an endpoint override (moto), where boto keeps the region
            return str(candidate.meta.region_name or OTHER)
    return None


class AwsExecutors:
    """Thread pools per (reads or mutations, region), created on first use, shut down at
    process stop."""

    def __init__(
        self,
        *,
        reads: int = READ_WORKERS,
        mutations: int = MUTATION_WORKERS,
        max_regions: int = MAX_REGIONS,
    ) -> None:
        self.sizes = {False: reads, True: mutations}
        self.max_regions = max_regions
        self._pools: dict[tuple[bool, str], ThreadPoolExecutor] = {}
        self._regions: set[str] = set()  # the keys that got pools of their own
        self._lock = threading.Lock()
        self._closed = False

    def pool(self, *, mutation: bool, region: str | None) -> ThreadPoolExecutor:
        """The pool calls to `region` run in (created on first use); raises RuntimeError
        after `shutdown`."""
        key = region or OTHER
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new AWS calls after shutdown")
            if key not in self._regions and key != OTHER:
                if len(self._regions) < self.max_regions:
                    self._regions.add(key)
                else:
                    key = OTHER
            found = self._pools.get((mutation, key))
            if found is None:
                kind = "mutation" if mutation else "read"
                found = ThreadPoolExecutor(
                    max_workers=self.sizes[mutation], thread_name_prefix=f"aws-{kind}-{key}"
                )
                self._pools[(mutation, key)] = found
            return found

    async def run(self, fn: Callable[[], T], *, mutation: bool, region: str | None = None) -> T:
        """Run `fn` in `region`'s mutations pool (else its reads pool) with a copy of the
        context; `region` None runs it in the pools shared by calls of no known region."""
        executor = self.pool(mutation=mutation, region=region)
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(context.run, fn))

    def shutdown(self) -> None:
        """Refuse new calls and drop queued ones; calls already running finish in their threads
        (they cannot be interrupted; the interpreter joins them at exit). Does not block."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)


_lock = threading.Lock()
_active: list[AwsExecutors] = []  # activated by running apps, newest last
_default: AwsExecutors | None = None  # for code that runs with no app (see the module doc)


def activate(executors: AwsExecutors) -> None:
    """Make `executors` the ones `call_aws` uses until `deactivate`."""
    with _lock:
        _active.append(executors)


def deactivate(executors: AwsExecutors) -> None:
    with _lock:
        if executors in _active:
            _active.remove(executors)


def current() -> AwsExecutors:
    """The most recently activated executors, else the process default."""
    global _default  # noqa: PLW0603 - the lazily built default, see the module doc
    with _lock:
        if _active:
            return _active[-1]
        if _default is None:
            _default = AwsExecutors()
        return _default
