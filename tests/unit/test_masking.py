"""Secrets in other programs' log lines never reach Slack (core.masking), and the lines stay
text in a code block."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.masking import (
    BACKTICK_STANDIN,
    PRIVATE_KEY,
    LineMasker,
    code_block,
    mask,
    mask_lines,
)
from core.redaction import REDACTED, redact_text

UPPER_DIGITS = string.ascii_uppercase + string.digits
TOKEN_CHARS = string.ascii_letters + string.digits
SECRET_CHARS = string.ascii_letters + string.digits + "/+=_.~-"
B64 = string.ascii_letters + string.digits + "/+"
B64URL = string.ascii_letters + string.digits + "_-"


def text(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=high)


# (strategy of the secret, how it appears in a line)
aws_key_ids = st.builds(
    lambda p, rest: p + rest, st.sampled_from(["AKIA", "ASIA"]), text(UPPER_DIGITS, 16, 16)
)
slack_tokens = st.builds(
    lambda kind, rest: f"xox{kind}-{rest}", st.sampled_from("bpaers"), text(TOKEN_CHARS, 10, 40)
)
values = text(SECRET_CHARS, 8, 40).filter(lambda v: v[0].isalnum())
keys = st.sampled_from(
    [
        "password",
        "secret",
        "token",
        "aws_secret_access_key",
        "DB_PASSWORD",
        "client_secret",
        "api_key",
        "access_token",
        "apiKey",
        "x-api-key",
        "X-Api-Key",
        "privateKey",
        "private-key",
        "clientSecret",
        "pwd",
        "pass",
        "DB_PASS",
        "jwt",
    ]
)
jwts = st.builds(
    lambda header, payload, sig: f"eyJ{header}.eyJ{payload}.{sig}",
    text(B64URL, 10, 40),
    text(B64URL, 10, 80),
    text(B64URL, 10, 60),
)
vendor_tokens = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(
        [
            "sk_live_",
            "sk_test_",
            "rk_live_",
            "whsec_",
            "ghp_",
            "github_pat_11ABCDEFG0",
            "access-production-",
            "access-sandbox-",
            "access-development-",
        ]
    ),
    text(TOKEN_CHARS, 24, 40),
)
url_passwords = text(TOKEN_CHARS + "@/!", 6, 30).filter(lambda v: v[0].isalnum())
aws_secrets = text(B64, 40, 40)
fillers = text(string.ascii_letters + " .:,", 0, 20)


@st.composite
def secret_lines(draw: st.DrawFn) -> tuple[str, str]:
    """(the secret, a log line carrying it in one of the shapes logs use)."""
    shape = draw(st.integers(0, 13))
    before, after = draw(fillers), draw(fillers)
    if shape == 0:
        secret = draw(aws_key_ids)
        line = f"{before} {secret} {after}"
    elif shape == 1:
        secret = draw(slack_tokens)
        line = f"{before} {secret} {after}"
    elif shape == 2:
        secret = draw(values)
        line = f"{before} {draw(keys)}={secret} {after}"
    elif shape == 3:
        secret = draw(values)
        line = f'{{"msg": "{before}", "{draw(keys)}": "{secret}", "level": "info"}}'
    elif shape == 4:
        secret = draw(values)
        line = f"{before} Authorization: Bearer {secret} {after}"
    elif shape == 5:
        secret = draw(text(TOKEN_CHARS, 8, 30))
        line = f"{before} postgres://dhanam:{secret}@db.internal:5432/app {after}"
    elif shape == 6:
        secret = draw(values)
        line = f"{before} {draw(keys)}: {secret}"
    elif shape == 7:
        secret = draw(text(TOKEN_CHARS + "/+", 20, 60))
        line = f"{before} -----BEGIN RSA PRIVATE KEY-----{secret}-----END RSA PRIVATE KEY----- x"
    elif shape == 8:
        secret = draw(jwts)
        line = f"{before} cookie=session={secret}; Path=/ {after}"
    elif shape == 9:
        secret = draw(vendor_tokens)
        line = f"{before} {secret} {after}"
    elif shape == 10:
        secret = draw(url_passwords)
        line = f"{before} postgres://dhanam:{secret}@db.internal:5432/app {after}"
    elif shape == 11:
        secret = draw(text(TOKEN_CHARS + '"\\', 8, 30).filter(lambda v: v[0].isalnum()))
        line = json.dumps({"msg": before, draw(keys): secret, "level": "info"})
        secret = json.dumps(secret)[1:-1]  # as it appears in the line
    elif shape == 12:
        secret = draw(aws_secrets)
        key_id = draw(aws_key_ids)
        line = f"{before} creds {key_id} {secret} {after}"
    else:
        secret = draw(values)
        line = f"{before} {draw(keys)} = '{secret}' {after}"
    assume(secret not in before + after)  # the secret, not filler that happens to spell it
    return secret, line


@settings(max_examples=400, deadline=None)
@given(secret_lines())
def test_no_generated_secret_survives(case: tuple[str, str]) -> None:
    secret, line = case
    masked = mask(line)
    assert secret not in masked
    assert secret not in code_block([masked])


def test_each_shape_is_masked_and_the_rest_kept() -> None:
    lines = [
        "login ok user=alice key AKIAIOSFODNN7EXAMPLE region us-east-1",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "GET /v1/accounts Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "connect postgres://dhanam:hunter2hunter2@db.internal:5432/dhanam",
        "slack xoxb-123456789012-abcdefABCDEF posted",
        '{"level":"warn","msg":"retry","password":"s3cr3t-pass"}',
    ]
    masked = mask_lines(lines)
    assert masked[0] == f"login ok user=alice key {REDACTED} region us-east-1"
    assert masked[1] == f"aws_secret_access_key={REDACTED}"
    assert masked[2] == f"GET /v1/accounts Authorization: Bearer {REDACTED}"
    assert masked[3] == f"connect postgres://dhanam:{REDACTED}@db.internal:5432/dhanam"
    assert masked[4] == f"slack {REDACTED} posted"
    assert masked[5] == f'{{"level":"warn","msg":"retry","password":"{REDACTED}"}}'


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMTIzIiwiZXhwIjo5OTk5OTk5OTk5fQ"
    ".c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /v1/accounts cookie=session={JWT}", f"GET /v1/accounts cookie=session={REDACTED}"),
        (f'{{"msg":"refresh","jwt":"{JWT}"}}', f'{{"msg":"refresh","jwt":"{REDACTED}"}}'),
        (
            "stripe init with sk_live_51H8abcDEFghiJKLmnopQRstuVWxyz0123456789",
            f"stripe init with {REDACTED}",
        ),
        ("rk_test_51H8abcDEFghiJKLmnop restricted", f"{REDACTED} restricted"),
        ("verifying with whsec_5f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c", f"verifying with {REDACTED}"),
        (
            "plaid item linked access-production-7f0a3c1e-2b4d-4e5f-9a8b-0c1d2e3f4a5b ok",
            f"plaid item linked {REDACTED} ok",
        ),
        ("token access-sandbox-de3ce8ef-33f8-452c-a685", f"token {REDACTED}"),
        ("clone with ghp_16C7e42F292c6912E7710c838347Ae178B4a", f"clone with {REDACTED}"),
        ("pat github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuv", f"pat {REDACTED}"),
        (
            '{"provider":"belvo","apiKey":"bv_live_9f8e7d6c5b4a39281706"}',
            f'{{"provider":"belvo","apiKey":"{REDACTED}"}}',
        ),
        (
            "headers: x-api-key: 9f8e7d6c5b4a392817069f8e7d6c5b4a",
            f"headers: x-api-key: {REDACTED}",
        ),
        ("API-KEY=abc123def456 next", f"API-KEY={REDACTED} next"),
        (
            '{"privateKey":"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}',
            f'{{"privateKey":"{REDACTED}"}}',
        ),
        (
            "connecting postgres://dhanam:p@ssw0rd!@db.internal:5432/dhanam",
            f"connecting postgres://dhanam:{REDACTED}@db.internal:5432/dhanam",
        ),
        (
            "DATABASE_URL=postgres://dhanam:ab/cd3fSecret@db.internal:5432/dhanam",
            f"DATABASE_URL=postgres://dhanam:{REDACTED}@db.internal:5432/dhanam",
        ),
        (r'{"password":"hunt\"er2secret"}', f'{{"password":"{REDACTED}"}}'),
        (
            "dsn: host=db.internal user=dhanam pwd=Sup3rS3cretPw dbname=dhanam",
            f"dsn: host=db.internal user=dhanam pwd={REDACTED} dbname=dhanam",
        ),
        ("login user=bob pass=hunter2hunter2", f"login user=bob pass={REDACTED}"),
        (
            "creds AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"creds {REDACTED} {REDACTED}",
        ),
        # after its key id, any 40-character secret goes (this one has no digit, no slash)
        (
            "ASIAY34FZKBOKMUTVV7A, abcdefghijABCDEFGHIJabcdefghijABCDEFGHIJ",
            f"{REDACTED}, {REDACTED}",
        ),
        ("secret key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.", f"secret key {REDACTED}."),
    ],
)
def test_secret_shapes_logs_carry_are_masked(line: str, expected: str) -> None:
    assert mask_lines([line]) == [expected]


@pytest.mark.parametrize(
    "line",
    [
        "deployed commit 3f2a9c1b7e4d5a6f8091b2c3d4e5f60718293a4b to production",
        "request 3f2a9c1b-7e4d-5a6f-8091-b2c3d4e5f607 done",
        "GET https://example.com:8443/users/@alice 200",
        "passenger=bob bypass=1 compass=north passed=12",
        "GET /api/v1/Accounts/Transactions/Export/2026/12/05/Summary 200",
        '{"msg": "my token: ", "b": "c"}',
        "ERROR prisma: connection reset by peer after 30000 ms",
    ],
)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    """A git SHA (40 hex), a UUID, a port then a path, words holding `pass`, a path: kept."""
    assert mask_lines([line]) == [line]


def test_a_json_log_line_stays_json_when_an_escaped_quote_is_masked() -> None:
    line = json.dumps({"event": r'login password="hu\"nt er2" ok', "password": 'a"b\\c'})
    out = redact_text(line)
    parsed = json.loads(out)
    assert "hu" not in out
    assert parsed["password"] == REDACTED
    assert parsed["event"] == f'login password="{REDACTED}" ok'
    # a backslash before a letter inside the inner quotes (`a\\nb` once JSON-encoded)
    other = redact_text(json.dumps({"event": r'password="a\nb" ok'}))
    assert json.loads(other) == {"event": f'password="{REDACTED}" ok'}


def test_a_key_body_whose_begin_is_cut_off_is_masked_from_its_end_back() -> None:
    """`logs --limit 5` newest first: the END line and 4 body lines; BEGIN is older."""
    body = [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
        "MIIBkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKjXXXXXXX",
        "gSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dV",
        "oIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu==",
    ]
    shown = mask_lines(["starting worker", *body, "-----END PRIVATE KEY-----", "ready"])
    assert shown == ["starting worker", *[PRIVATE_KEY] * 5, "ready"]
    # the base64 before the END on its own line goes too, the words before it stay
    assert mask_lines(["ts 12:00:01 Us8cKjMz==-----END RSA PRIVATE KEY----- loaded"]) == [
        f"ts 12:00:01 {PRIVATE_KEY} loaded"
    ]


def test_a_64_character_body_line_is_masked_on_its_own() -> None:
    line = "gSjAgEAAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVx"
    assert len(line) == 64
    assert mask_lines(["before", line, "after"]) == ["before", PRIVATE_KEY, "after"]


def test_line_masker_keeps_an_open_key_block_across_pages() -> None:
    masker = LineMasker()
    first = masker.mask(["boot", "-----BEGIN EC PRIVATE KEY-----", "MHcCAQEEIBkg4LVWM9nuw"])
    second = masker.mask(["Zm9vYmFyYmF6cXV4", "-----END EC PRIVATE KEY----- ok", "serving"])
    assert first == ["boot", PRIVATE_KEY, PRIVATE_KEY]
    assert second == [PRIVATE_KEY, f"{PRIVATE_KEY} ok", "serving"]
    # a stateless mask_lines per page would show the second page's body line
    assert mask_lines(["Zm9vYmFyYmF6cXV4 trailing words"]) == ["Zm9vYmFyYmF6cXV4 trailing words"]


def test_a_private_key_spread_over_several_lines_is_masked_up_to_its_end() -> None:
    lines = [
        "loading key",
        "-----BEGIN PRIVATE KEY-----",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "",
        "bm90IGEgcmVhbCBrZXk=",
        "-----END PRIVATE KEY----- loaded",
        "next line",
    ]
    masked = mask_lines(lines)
    assert masked == [
        "loading key",
        PRIVATE_KEY,
        PRIVATE_KEY,
        "",
        PRIVATE_KEY,
        f"{PRIVATE_KEY} loaded",
        "next line",
    ]


def test_code_block_lines_are_inert_and_cannot_close_it() -> None:
    block = code_block(["<!channel> see <https://evil.example|docs> & <@U0BOB>", "x ``` *bold*"])
    assert block.startswith("```\n")
    assert block.endswith("\n```")
    inner = block[4:-4]
    assert "`" not in inner
    assert "<" not in inner
    assert ">" not in inner
    assert "&lt;!channel&gt;" in inner
    assert "&amp;" in inner
    assert f"x {BACKTICK_STANDIN * 3} *bold*" in inner


@given(st.lists(st.text(max_size=60), max_size=8))
def test_code_block_never_holds_a_backtick_or_an_angle_bracket(lines: list[str]) -> None:
    inner = code_block(lines)[4:-4]
    assert "`" not in inner
    assert "<" not in inner
    assert ">" not in inner
