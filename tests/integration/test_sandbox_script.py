"""`dhanam-bot sandbox --script`: the newcomer's path, end to end in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sandbox(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "--script", str(script)],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_help_script_runs_every_console_line() -> None:
    result = sandbox(ROOT / "examples" / "help.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "│ Dhanam ChatOps\n" in out  # the header as Slack shows it: its case kept
    assert "DHANAM CHATOPS" not in out
    assert "/dhanam deploy api production v1.4.2 --reason fix login timeouts" in out
    assert 'unknown service "apii" — did you mean api? — known: api, web' in out
    assert "bob in #deploys> " in out  # :as and :in took effect
    assert "CloudWatch: dhanam-api-high-error-rate → ALARM" in out
    assert "Traceback" not in out + result.stderr


def test_a_bad_line_makes_the_script_fail(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text(":as mallory\n/dhanam help\n:click Approve\n:alarm nope ALARM\n:bogus\n")
    result = sandbox(script)
    assert result.returncode == 1
    assert 'unknown user "mallory" — known: alice, bob, carol, dave' in result.stdout
    assert "no message with buttons to click" in result.stdout
    assert 'unknown alarm "nope"' in result.stdout
    assert 'unknown console line ":bogus"' in result.stdout
    assert "Dhanam ChatOps" in result.stdout  # the good line between still ran


def test_missing_script_is_one_line(tmp_path: Path) -> None:
    result = sandbox(tmp_path / "none.txt")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("dhanam-bot: cannot read")


def test_deploy_script_two_person_flow() -> None:
    result = sandbox(ROOT / "examples" / "deploy.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "│ Deploy api to production: v1.2.0 → v1.3.0\n" in out  # a header, its case kept
    assert "[1 Approve] [2 Deny!] [3 Cancel]" in out
    assert "the two-person\n│ rule needs someone else" in out or "two-person rule" in out.replace(
        "\n│ ", " "
    )
    assert "You're not an approver here. Approvers: @bob, @carol, @sre." in out
    assert "dhanam-api now on dhanam-api:4 (v1.3.0" in out
    # The card follows the rollout: rolling out until the follower decides, then its verdict;
    # the thread holds the rollout's progress, never a copy of the card's outcome.
    rolling, rolled = out.index("🔄 Rolling out…"), out.index("✅ Rolled out")
    assert rolling < rolled
    assert "Rollout: completed in" in out[rolled:]
    assert "    │ dhanam-api now on dhanam-api:4" not in out
    assert "is blocked — locked by @carol" in out.replace("\n│ ", " ")
    assert "*auto_approved*" not in out  # mrkdwn is rendered, not shown raw
    audit = out.replace("\n│ ", " ")
    assert "ran without approval (staging needs none): " in audit
    assert "approved automatically" not in audit
    assert "no approval required" not in audit
    # The rollout follower's edits after the click settled are printed marked as later work.
    assert "… later, in #deploys:" in out


def test_operations_script_rollback_scale_restore() -> None:
    result = sandbox(ROOT / "examples" / "operations.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "dhanam-api rolled back to dhanam-api:2" in out
    assert "Rollout: completed" in out
    assert "api in production: max 10 → 15" in out
    assert "--desired 9 is above the autoscaling max of 5 — raise --max too" in out
    assert "Waiting for 2 more approvals" in out  # db restore is critical: two approvers
    assert "restored into dhanam-production-restore-" in out  # moto: available at once


def test_gate_script_lock_after_request_stops_the_deploy() -> None:
    result = sandbox(ROOT / "examples" / "gate.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "Not executed — locked by @carol: db migration running" in out
    assert "dhanam-web now on dhanam-web:4 (v1.1.0" in out  # staging ran, production did not
    assert "dhanam-web:5" not in out
    assert "Traceback" not in out + result.stderr
