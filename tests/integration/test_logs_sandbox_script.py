"""`dhanam-bot sandbox --script examples/logs.txt`: logs in the sandbox, the file path, masking."""

from __future__ import annotations

from sandbox.aws_logs import SANDBOX_LOG_SECRETS
from tests.integration.test_sandbox_script import ROOT, sandbox


def test_logs_script_shows_lines_masked_and_the_file() -> None:
    result = sandbox(ROOT / "examples" / "logs.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "api · production · last 15 min · 50 lines (newest first)" in out
    assert 'web · production · last 2 h · matching "timeout" · 10 lines (newest first)' in out
    assert "Open in CloudWatch" in out
    assert "only visible to bob" in out
    assert "[redacted]" in out
    for secret in SANDBOX_LOG_SECRETS:
        assert secret not in out
    # --limit 500: the file in the channel (who asked, its name, size and first lines)…
    assert "@bob asked for these logs: api · production · last 2 h · 500 lines" in out
    assert "📎 api-production-logs-" in out
    assert ".txt (" in out
    assert "500 lines) — api · production" in out
    assert "  ┆ 20" in out
    # …and the newest lines inline, pointing at it
    assert "older lines: every line is in the file." in out
    assert "is in the file I posted in this" in out
    assert 'unknown service "apii"' in out
    assert "Traceback" not in out + result.stderr
