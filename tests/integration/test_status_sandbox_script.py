"""`dhanam-bot sandbox --script examples/status.txt`: status in the sandbox, with the fake API."""

from __future__ import annotations

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_status_script_shows_every_source() -> None:
    result = sandbox(ROOT / "examples" / "status.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "Status: every service in every environment" in out
    assert "🟢 api in production — ok · `dhanam-api:3` v1.2.0 · 2/2 running" in out
    assert "🟢 web in staging — ok" in out
    assert "Status: api in production" in out
    assert "🟡 degraded — 1 alarm in ALARM" in out
    assert "Tasks running 2 · pending 0 · desired 2" in out
    assert "Image `v1.2.0` `sha256:" in out
    assert "🔴 `dhanam-api-high-error-rate` ALARM" in out
    assert "🟢 `/health` ok · " in out  # the guide's /health shape: status and timestamp
    assert "🟢 `/health/database` ok · 5 connections · 150 queries/s" in out
    assert "🟢 bitso ok" in out
    assert "Deploy api to production: v1.2.0 → v1.3.0 — asked by @alice" in out
    assert "🔒 locked by @carol" in out
    assert "Status: every service in staging" in out
    assert "Status: web in every environment" in out
    assert "only visible to bob" in out
    # each status reply ("gathered in N ms") is printed under its own command, none later
    assert out.count("gathered in") == 4
    lines = [part for part in out.split("\nbob in #ops> ") if part.startswith("/dhanam status")]
    assert len(lines) == 4
    assert all("gathered in" in line for line in lines)
    assert "later" not in out
    assert "Traceback" not in out + result.stderr
