"""`dhanam-bot sandbox` with its lines piped into stdin: each is echoed after the prompt."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.test_sandbox_script import ROOT


def test_piped_lines_are_echoed_after_the_prompt() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox"],
        input=":as bob\n# a comment\n/dhanam help\n:in #deploys\n",
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "\nalice in #ops> :as bob\n" in out
    assert "\nbob in #ops> /dhanam help\n" in out
    assert out.index("bob in #ops> /dhanam help") < out.index("│ Dhanam ChatOps")
    assert "\nbob in #ops> :in #deploys\n" in out
    assert "a comment" not in out
    assert "\x1b[" not in out  # no terminal styling when the output is not a terminal
    assert "Traceback" not in out + result.stderr
