"""`dhanam-bot sandbox --script examples/migrate.txt`: a migration approved and followed with its
log tail, a read-only task at once, and a deploy whose release step fails changing nothing."""

from __future__ import annotations

import re

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_migrate_script() -> None:
    result = sandbox(ROOT / "examples" / "migrate.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    # The console wraps long lines at 80 columns: read it as one line of words.
    out = re.sub(r"\n[\s│↳]*", " ", result.stdout)
    assert "• api: migrate, migrate-status" in out  # help run lists the tasks
    assert "Approval requested: Run migrate of api in production" in out
    assert "Task migrate (`pnpm db:migrate`) running" in out  # the log tail streams
    assert "2 migrations applied" in out
    assert "✅ Task succeeded" in out
    assert "migrate exited with code 0" in out
    assert "running now — the task needs no approval" in out
    assert "Approvals not needed for this task (audited)" in out
    assert "Pending: 20261201_add_budget_rollover_index" in out  # migrate-status's log
    assert "migrate now fails (exit code 1)" in out
    assert "migrate: pnpm db:migrate (new image; must exit 0)" in out  # the deploy's plan
    assert "migrate failed with exit code 1" in out
    assert "so update-service was not sent" in out
    assert 'ERROR: relation "budget_rollover_idx" already exists' in out
    # …and nothing changed: the service still runs revision 3.
    assert "Task definition `dhanam-api:3`" in out.rsplit("/dhanam status api production", 1)[1]
    assert "Traceback" not in result.stdout + result.stderr
