"""`dhanam-bot sandbox --script examples/dr.txt`: dr status on the sandbox's us-west-2."""

from __future__ import annotations

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_dr_script_shows_the_dr_region() -> None:
    result = sandbox(ROOT / "examples" / "dr.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "Disaster recovery: us-west-2 · dhanam-dr" in out
    assert "? DR in us-west-2: readiness unknown" in out
    assert "✓ Replica `dhanam-production-dr` (us-west-2): available, replicating from" in out
    assert "? RPO unknown — lag unknown (no ReplicaLag datapoints); target 1 h" in out
    assert "✓ web `dhanam-web`: 0/0 running" in out
    assert "✓ Failover record `api.dhanam.io` (CNAME) →" in out
    assert "has 3 steps left, against an RTO of 4 h" in out
    assert "only visible to bob" in out
    assert "Traceback" not in out + result.stderr
