"""`dhanam-bot sandbox --script examples/incident.txt`: an incident end to end in a subprocess."""

from __future__ import annotations

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_incident_script_declares_runs_and_resolves() -> None:
    result = sandbox(ROOT / "examples" / "incident.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "+ channel #inc-" in out
    assert "-api-returning-5xx created" in out
    assert "+ message pinned in #inc-" in out
    assert "Total System Outage checklist — 0 of 7 done" in out
    assert "☐ Check the AWS service health dashboard" in out  # the checkboxes, each listed
    assert "☐ Activate the DR region (us-west-2)" in out
    assert "SEV1 API returning 5xx — investigating" in out  # the header, its case kept
    assert "works inside an incident channel, and #ops is not one" in out
    assert "alice in #inc-" in out  # :in found the channel created during the session
    assert "@bob is now the incident commander" in out
    assert "Timeline of inc-" in out
    assert "resolved after" in out
    # `:in #incidents` ends the script by showing the channel's newest messages
    tail = out[out.rindex("> :in #incidents") :]
    assert "#incidents, the newest message:" in tail
    assert "resolved after" in tail
    assert "PagerDuty: triggered · open in PagerDuty (dhanam-sandbox.pagerduty.com/" in out
    topics = [line for line in out.splitlines() if line.startswith("+ topic of")]
    assert topics
    assert all("<@" not in line for line in topics)  # topics too show mentions as names
    assert "Traceback" not in out + result.stderr
