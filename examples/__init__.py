"""Examples shipped with the repository: the example config (the Dhanam world, every key
documented) and the sandbox scripts (`*.txt`, one console line each).

A data package, so the sandbox finds them with importlib.resources wherever the checkout's
packages are importable (`make install` puts the repository on the virtualenv's path), never
through a path relative to another module's file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_HERE = resources.files(__name__)

EXAMPLE_CONFIG = Path(str(_HERE / "dhanam.example.toml"))


def scripts() -> list[Path]:
    """The sandbox scripts, by name."""
    return sorted(Path(str(_HERE)).glob("*.txt"))
