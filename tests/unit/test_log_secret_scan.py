"""The session's secret scan (tests/fixtures/logs.py) finds exactly the lines that hold a known
secret, in any of the forms a log line writes it, and never repeats the value it found."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.logs import KNOWN_SECRETS, Finding, find_secrets, scan_folder

SECRETS = {"signing secret": "sig-SECRET-unit-0001", "redis password": "pw-SECRET/+ !x"}


def test_finds_exactly_the_lines_with_a_secret() -> None:
    records = [
        ("t::clean", '{"event": "http.request", "status": 200}'),
        ("t::raw", '{"event": "boom", "detail": "HMAC with sig-SECRET-unit-0001 failed"}'),
        ("t::redacted", '{"event": "boom", "detail": "HMAC with [redacted] failed"}'),
        ("t::json", json.dumps({"exception": 'ValueError("pw-SECRET/+ !x")\n'})),
        ("t::url", "redis://u:pw-SECRET%2F%2B%20%21x@127.0.0.1:6379/0 refused"),
        ("t::both", "sig-SECRET-unit-0001 and pw-SECRET/+ !x"),
        ("t::prefix", "sig-SECRET-unit-000 is a different value"),
    ]
    found = find_secrets(records, SECRETS)
    assert [(f.test, f.secret) for f in found] == [
        ("t::raw", "signing secret"),
        ("t::json", "redis password"),
        ("t::url", "redis password"),
        ("t::both", "redis password"),
        ("t::both", "signing secret"),
    ]
    for finding in found:
        assert "sig-SECRET-unit-0001" not in finding.line
        assert "pw-SECRET" not in finding.line
    assert found[0].line == '{"event": "boom", "detail": "HMAC with <signing secret> failed"}'


def test_nothing_found_in_clean_lines() -> None:
    assert find_secrets([("t", "all quiet"), ("t", "")], SECRETS) == []


def test_scan_folder_reads_every_worker_and_cleans_up(tmp_path: Path) -> None:
    folder = tmp_path / "lines"
    folder.mkdir()
    (folder / "gw0.jsonl").write_text(json.dumps(["t::a", "fine"]) + "\n")
    (folder / "gw1.jsonl").write_text(
        json.dumps(["t::b", "token sig-SECRET-unit-0001"]) + "\n" + "not json at al"
    )
    scanned, found = scan_folder(folder, SECRETS)
    assert scanned == 3
    assert found == [Finding("t::b", "signing secret", "token <signing secret>")]
    assert not folder.exists()


def test_known_secrets_are_distinctive() -> None:
    """No placeholder that occurs in ordinary log lines (the scan would cry wolf)."""
    for name, value in KNOWN_SECRETS.items():
        assert len(value) >= 12, name
        assert value not in ("testing", "secret", "password"), name
