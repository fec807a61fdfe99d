"""`dhanam-bot sandbox --script examples/alarms.txt`: an alarm's whole path, end to end."""

from __future__ import annotations

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_alarms_script_posts_edits_and_replies_in_thread() -> None:
    result = sandbox(ROOT / "examples" / "alarms.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert (
        "CloudWatch: dhanam-api-high-error-rate → ALARM; SNS delivered to the bot: HTTP 200" in out
    )
    # the ALARM posts one message in #deploys (services.api lists the alarm) with its buttons
    assert "dhanam in #deploys\n│ 🔴 ALARM · dhanam-api-high-error-rate · api" in out
    assert "Condition: HTTPCode_Target_5XX_Count Sum > 5 for 2 × 5 min" in out  # noqa: RUF001
    assert "[1 Declare incident]" in out
    # OK edits that message and replies in its thread, saying how long it fired
    assert "dhanam in #deploys (edited)\n│ 🟢 OK · dhanam-api-high-error-rate · api" in out
    assert "↳ dhanam in #deploys" in out
    assert "🟢 ALARM → OK at" in out
    assert "fired for" in out
    assert "Traceback" not in out + result.stderr
