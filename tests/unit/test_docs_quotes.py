"""What docs/runbooks.md quotes the bot saying is what the bot says (issue 14 review).

Each quote is built from the code that writes it, so a change of wording there fails here
until the runbook quotes the new text.
"""

from __future__ import annotations

import re
from pathlib import Path

from approvals.models import State
from commands.operations.card import _STATE_LINES
from core.errors import StoreUnavailableError
from core.text import nothing_changed, words

ROOT = Path(__file__).resolve().parents[2]


def flat(text: str) -> str:
    """Line breaks and runs of spaces as one space; Python's adjacent literals joined."""
    return re.sub(r"\s+", " ", re.sub(r'"\s*\n\s*"', "", text))


RUNBOOKS = flat((ROOT / "docs" / "runbooks.md").read_text())


def test_the_redis_runbook_quotes_the_store_unavailable_refusal() -> None:
    said = nothing_changed(StoreUnavailableError().user_message)
    assert said == "approval store unavailable. Nothing was changed."
    assert f'"{said}"' in RUNBOOKS


def test_the_in_doubt_runbook_quotes_the_card_the_thread_and_the_audit() -> None:
    card = _STATE_LINES[State.IN_DOUBT].split(" ", 1)[1]  # without its :emoji:
    assert f'"{card}"' in RUNBOOKS
    flow = flat((ROOT / "approvals" / "flow.py").read_text())
    thread = re.search(r'"Outcome unknown — the bot lost track[^"]*"', flow)
    assert thread is not None
    assert thread.group(0) in RUNBOOKS
    assert f"the audit shows *{words(State.IN_DOUBT)}*" in RUNBOOKS
    assert "in_doubt" not in RUNBOOKS
