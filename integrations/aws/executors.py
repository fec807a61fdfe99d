"""The threads boto3 calls run in: one bounded pool for reads, another for mutations.

A boto3 call blocks its thread for as long as botocore retries (read timeout 30 s, 5 attempts
in the worst case). With one shared pool (asyncio's default executor, what `asyncio.to_thread`
uses), a busy App Home or a slow status could take every thread and an approved rollback would
queue behind them. Here reads (status, App Home, plans: `Describe*`, `List*`, `Get*`, …) and
mutations (everything else, see `errors.is_mutation`) have a pool each, so slow reads never delay
an approved change, and neither pool grows without bound.

A read that the caller gave up on (`asyncio.wait_for` around a status call) keeps running in its
thread until botocore returns: Python threads cannot be cancelled. With a bounded read pool that
waste is capped at `READ_WORKERS` threads; further reads queue behind them (and time out in
their callers) while mutations keep their own threads.

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

T = TypeVar("T")

# Reads: status and App Home fan out a few calls per environment; 8 keeps a status of a dozen
# services quick without letting a burst of App Home opens take more than 8 threads.
READ_WORKERS = 8
# Mutations: approved changes run one at a time per service (locks); 4 lets a few services'
# changes run at once. Separate from the reads, so a read burst cannot delay them.
MUTATION_WORKERS = 4


class AwsExecutors:
    """Two thread pools, created once and shut down at process stop."""

    def __init__(self, *, reads: int = READ_WORKERS, mutations: int = MUTATION_WORKERS) -> None:
        self.reads = ThreadPoolExecutor(max_workers=reads, thread_name_prefix="aws-read")
        self.mutations = ThreadPoolExecutor(
            max_workers=mutations, thread_name_prefix="aws-mutation"
        )

    async def run(self, fn: Callable[[], T], *, mutation: bool) -> T:
        """Run `fn` in the mutations pool (else the reads pool) with a copy of the context."""
        executor = self.mutations if mutation else self.reads
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(context.run, fn))

    def shutdown(self) -> None:
        """Refuse new calls and drop queued ones; calls already running finish in their threads
        (they cannot be interrupted; the interpreter joins them at exit). Does not block."""
        self.reads.shutdown(wait=False, cancel_futures=True)
        self.mutations.shutdown(wait=False, cancel_futures=True)


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
