from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.catalog import COMMANDS
from commands.parser import MAX_COMMAND_LENGTH, Parser, tokenize
from commands.requests import (
    AuditRequest,
    DbRestoreRequest,
    DeployRequest,
    HelpRequest,
    IncidentCommanderRequest,
    IncidentDeclareRequest,
    IncidentResolveRequest,
    IncidentState,
    IncidentStatusRequest,
    IncidentUpdateRequest,
    LockRequest,
    Request,
    RollbackRequest,
    ScaleRequest,
    Severity,
    StatusRequest,
    UnlockRequest,
)
from core.config import load_config
from core.errors import ParseError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"
PARSER = Parser(load_config(EXAMPLE))
REQUEST_TYPES = Request.__args__  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", HelpRequest()),
        ("help", HelpRequest()),
        ("help deploy", HelpRequest(topic="deploy")),
        ("HELP Incident", HelpRequest(topic="incident")),
        (
            "deploy api production v1.4.2",
            DeployRequest(service="api", env="production", tag="v1.4.2"),
        ),
        (
            "deploy api production v1.4.2 --reason fix login timeouts",
            DeployRequest(
                service="api", env="production", tag="v1.4.2", reason="fix login timeouts"
            ),
        ),
        (
            'deploy web staging v1.3.0 --reason "hot fix" --break-glass',
            DeployRequest(
                service="web", env="staging", tag="v1.3.0", reason="hot fix", break_glass=True
            ),
        ),
        (
            "deploy --break-glass api production v2 --reason=urgent",
            DeployRequest(
                service="api", env="production", tag="v2", reason="urgent", break_glass=True
            ),
        ),
        ("rollback api production", RollbackRequest(service="api", env="production")),
        (
            "rollback api production --to 41",
            RollbackRequest(service="api", env="production", to_revision=41),
        ),
        ("scale api production --max 15", ScaleRequest(service="api", env="production", max=15)),
        (
            "scale web production --min 3 --desired 4 --max 5",
            ScaleRequest(service="web", env="production", min=3, desired=4, max=5),
        ),
        ("db restore production --to latest", DbRestoreRequest(env="production", to="latest")),
        (
            "db restore production --to 2026-11-26T09:30:00Z",
            DbRestoreRequest(env="production", to=datetime(2026, 11, 26, 9, 30, tzinfo=UTC)),
        ),
        ("status", StatusRequest()),
        ("status api", StatusRequest(service="api")),
        ("status production", StatusRequest(env="production")),
        ("status production api", StatusRequest(service="api", env="production")),
        (
            'lock api production "db migration running"',
            LockRequest(service="api", env="production", reason="db migration running"),
        ),
        (
            "lock api production db migration  running",
            LockRequest(service="api", env="production", reason="db migration  running"),
        ),
        (
            "lock api production don't deploy & wait",
            LockRequest(service="api", env="production", reason="don't deploy & wait"),
        ),
        (
            "lock api production \u201cphone quotes\u201d",
            LockRequest(service="api", env="production", reason="phone quotes"),
        ),
        (
            "lock api production a &lt;b&gt; &amp; c",
            LockRequest(service="api", env="production", reason="a <b> & c"),
        ),
        ("unlock api production", UnlockRequest(service="api", env="production")),
        ("audit", AuditRequest()),
        ("audit 50", AuditRequest(count=50)),
        (
            "incident declare sev1 API returning 5xx",
            IncidentDeclareRequest(severity=Severity.SEV1, title="API returning 5xx"),
        ),
        (
            'incident declare SEV2 "login slow"',
            IncidentDeclareRequest(severity=Severity.SEV2, title="login slow"),
        ),
        ("incident update rolled back", IncidentUpdateRequest(text="rolled back")),
        ("incident status monitoring", IncidentStatusRequest(state=IncidentState.MONITORING)),
        ("incident commander <@U0CAROL|carol>", IncidentCommanderRequest(user_id="U0CAROL")),
        ("incident commander <@U0CAROL>", IncidentCommanderRequest(user_id="U0CAROL")),
        ("incident resolve", IncidentResolveRequest()),
        ("incident resolve back to normal", IncidentResolveRequest(summary="back to normal")),
    ],
)
def test_valid_commands(text: str, expected: Request) -> None:
    assert PARSER.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "deplo api production v1",
            'unknown command "deplo" — did you mean deploy? — known: help, deploy',
        ),
        (
            "deploy apii production v1",
            'unknown service "apii" — did you mean api? — known: api, web',
        ),
        (
            "deploy api prod v1",
            'unknown environment "prod" — did you mean production? — known: production, staging',
        ),
        ("deploy api production", "deploy: missing arguments"),
        ("deploy api production v1 extra", 'deploy: unexpected "extra"'),
        ("deploy api production v1!", '"v1!" is not a valid image tag'),
        (
            "deploy api production v1 --force",
            'unknown option "--force" for deploy — valid: --reason, --break-glass',
        ),
        ("deploy api production v1 --reason", "--reason needs a value"),
        ("deploy api production v1 --break-glass --break-glass", "--break-glass given twice"),
        ("deploy api production v1 --break-glass=yes", "--break-glass takes no value"),
        ("rollback api production --to zero", '--to must be a whole number, not "zero"'),
        ("rollback api production --to 0", "--to must be a revision number of 1 or more"),
        ("scale api production", "scale: give at least one of --min, --max, --desired"),
        ("scale api production --min -1", "--min must be 0 or more, not -1"),
        ("scale api production --min 3 --max 2", "--min 3 is above --max 2"),
        ("scale api production --desired 9 --max 5", "--desired 9 is above --max 5"),
        ("scale api production --desired 1 --min 2", "--desired 1 is below --min 2"),
        ("db restore production", "db restore needs --to TIME or --to latest"),
        ("db restore production --to yesterday", '--to must be "latest" or an ISO 8601 time'),
        ("db restore production --to 2026-11-26T09:30:00", "needs a timezone"),
        ("db drop production", 'unknown db command "drop" — known: restore'),
        ("status everything", 'unknown service or environment "everything"'),
        ("lock api production", "lock: missing arguments"),
        ('lock api production ""', "reason must not be empty"),
        ("audit 0", "audit: N must be a number from 1 to 200"),
        ("audit 500", "audit: N must be a number from 1 to 200"),
        ("approvals now", 'approvals: unexpected "now"'),
        (
            "incident",
            'unknown incident command "" — known: declare, update, status, commander, resolve',
        ),
        ("incident declare sev4 things", 'unknown severity "sev4"'),
        ("incident declare sev1", "incident: missing arguments"),
        ("incident status fixed", 'unknown incident status "fixed"'),
        ("incident commander @carol", '"@carol" is not a user — mention them'),
        ('lock api production "unclosed', "unclosed quote"),
        ("help nothing", 'unknown command "nothing"'),
        ("x" * (MAX_COMMAND_LENGTH + 1), "command is too long"),
    ],
)
def test_invalid_commands_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        PARSER.parse(text)
    assert info.value.user_message.startswith(message) or message in info.value.user_message, (
        info.value.user_message
    )


def test_errors_carry_the_command_usage() -> None:
    with pytest.raises(ParseError) as info:
        PARSER.parse("deploy apii production v1")
    assert info.value.usage == COMMANDS["deploy"].usage


def test_tokenize_keeps_offsets_into_the_raw_line() -> None:
    text = 'a  "b c"  d'
    tokens = tokenize(text)
    assert [t.value for t in tokens] == ["a", "b c", "d"]
    assert [text[t.start : t.end] for t in tokens] == ["a", '"b c"', "d"]
    assert [t.quoted for t in tokens] == [False, True, False]


def _fragments() -> st.SearchStrategy[str]:
    words = st.sampled_from(
        [
            "deploy",
            "rollback",
            "scale",
            "db",
            "restore",
            "status",
            "lock",
            "unlock",
            "audit",
            "approvals",
            "incident",
            "declare",
            "update",
            "commander",
            "resolve",
            "help",
            "api",
            "web",
            "production",
            "staging",
            "sev1",
            "sev9",
            "v1.4.2",
            "--reason",
            "--to",
            "--min",
            "--max",
            "--desired",
            "--break-glass",
            "--to=3",
            "latest",
            "2026-11-26T09:30:00Z",
            '"',
            "\u201c",
            "\u201d",
            "<@U0BOB>",
            "&amp;",
            "-1",
            "0",
            "15",
            "--",
            "=",
        ]
    )
    return st.one_of(words, st.text(max_size=12))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_fragments(), max_size=12).map(" ".join))
def test_parser_returns_a_request_or_a_parse_error(text: str) -> None:
    try:
        result = PARSER.parse(text)
    except ParseError as exc:
        assert exc.user_message.strip()
        assert "Traceback" not in exc.user_message
        return
    assert isinstance(result, REQUEST_TYPES)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parser_on_random_unicode(text: str) -> None:
    try:
        assert isinstance(PARSER.parse(text), REQUEST_TYPES)
    except ParseError as exc:
        assert exc.user_message


@settings(max_examples=5, deadline=None)
@given(st.sampled_from(["deploy api production v1 --reason ", "lock api production ", "x"]))
def test_parser_on_100kb_input(prefix: str) -> None:
    text = prefix + ("word \u201cquoted\u201d " * 6000)[:100_000]
    with pytest.raises(ParseError, match="command is too long"):
        PARSER.parse(text)


def test_free_text_at_the_length_limit_is_refused_not_truncated() -> None:
    with pytest.raises(ParseError, match="reason is too long"):
        PARSER.parse("lock api production " + "x" * 600)
