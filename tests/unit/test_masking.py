"""Secrets in other programs' log lines never reach Slack (core.masking), and the lines stay
text in a code block."""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.masking import BACKTICK_STANDIN, PRIVATE_KEY, code_block, mask, mask_lines
from core.redaction import REDACTED

UPPER_DIGITS = string.ascii_uppercase + string.digits
TOKEN_CHARS = string.ascii_letters + string.digits
SECRET_CHARS = string.ascii_letters + string.digits + "/+=_.~-"


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
    ]
)
fillers = text(string.ascii_letters + " .:,", 0, 20)


@st.composite
def secret_lines(draw: st.DrawFn) -> tuple[str, str]:
    """(the secret, a log line carrying it in one of the shapes logs use)."""
    shape = draw(st.integers(0, 7))
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
    else:
        secret = draw(text(TOKEN_CHARS + "/+", 20, 60))
        line = f"{before} -----BEGIN RSA PRIVATE KEY-----{secret}-----END RSA PRIVATE KEY----- x"
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
