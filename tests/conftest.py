"""Test order under pytest-xdist: every worker gets a fair share of the slow tests first.

xdist's work stealing hands each worker one contiguous block of the collection (half of it
on 2 cores), then moves tests from a busy worker's queue to an idle one. In collection order
the first block held the fault, state-machine and sandbox-script tests and the second block
the ~600 unit tests that take seconds all together: a worker finished its block minutes before
the other and the run's last minutes were one worker's scenario tests (1 min 50 s on 2 cores
when measured). Here, in each worker's copy of the collection (all the same, as xdist
requires), the tests that start servers or processes (every folder but tests/unit) are dealt
in turn to one block per worker, then the unit tests likewise, and each block runs its slow
tests first. The tests themselves and their set are unchanged; a run without xdist keeps the
collection order.
"""

from __future__ import annotations

import pytest

FAST_FOLDER = "tests/unit/"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    workers = int(workerinput.get("workercount", 1))
    if workers < 2:
        return
    slow = [item for item in items if not item.nodeid.startswith(FAST_FOLDER)]
    fast = [item for item in items if item.nodeid.startswith(FAST_FOLDER)]
    blocks: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for group in (slow, fast):
        for i, item in enumerate(group):
            blocks[i % workers].append(item)
    items[:] = [item for block in blocks for item in block]
