"""Shared helpers for the benchmarks: child processes, readiness, statistics, machine facts.

Run as a script, it is the Slack emulator in its own process::

    python bench/_common.py emulator [--port P]

which prints the emulator's ``api_url`` on the first line of stdout and serves until
SIGTERM/SIGINT, so a benchmark's load generator never shares an event loop with it. On exit
it writes ``emulator-calls: {"method": count, ...}`` to stderr (see ``emulator_calls``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
CALLS_PREFIX = "emulator-calls: "


# ---- machine -------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """nproc (CPUs this process may run on), CPU model, Python, OS."""
    try:
        nproc = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        nproc = os.cpu_count() or 0
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model", "Hardware"):
                model = " ".join(value.split())
                break
    return {
        "nproc": nproc,
        "cpu_model": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


# ---- statistics ----------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an ascending sequence."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    frac = rank - low
    return sorted_values[low] * (1 - frac) + sorted_values[high] * frac


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# ---- ports and readiness -------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


# ---- child processes -----------------------------------------------------------------


class ChildError(RuntimeError):
    """A child process did not start or died."""


@dataclass
class Child:
    """A child process in its own session, its output in a log file."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    capture_stdout: bool = False
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # our own argument list
            self.args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.capture_stdout else self._log,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )

    def read_line(self, timeout: float = START_TIMEOUT) -> str:
        """The first stdout line (capture_stdout=True), waiting at most ``timeout`` s."""
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        os.set_blocking(stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            chunk = stdout.read()
            if chunk:
                buf += chunk
                continue
            if self.process.poll() is not None:
                raise ChildError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise ChildError(f"{self.name} printed nothing within {timeout:.0f} s")
            time.sleep(0.02)
        return buf.split(b"\n", 1)[0].decode().strip()

    def wait_healthy(self, url: str, timeout: float = START_TIMEOUT) -> None:
        """Poll GET url until 200; fail if the process dies or the time is up."""
        deadline = time.monotonic() + timeout
        last: int | None = None
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ChildError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            last = http_status(url)
            if last == 200:
                return
            if time.monotonic() > deadline:
                raise ChildError(
                    f"{self.name}: GET {url} gave {last} for {timeout:.0f} s:\n{self.tail()}"
                )
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; always reaps and closes the log."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=STOP_TIMEOUT)
            if process.stdout is not None:
                with contextlib.suppress(OSError):
                    process.stdout.close()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def raise_on_sigterm() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt so ``finally`` blocks clean up (SIGINT
    too, even when started with it ignored, as background jobs of a script are)."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ---- the emulator process ------------------------------------------------------------


async def _serve_emulator(port: int) -> None:
    from sandbox.slack_emulator import SlackEmulator  # noqa: PLC0415 - child only

    emulator = SlackEmulator.dhanam_defaults()
    await emulator.start(port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(emulator.api_url, flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()
        counts: dict[str, int] = {}
        for call in emulator.calls:
            counts[call.method] = counts.get(call.method, 0) + 1
        print(CALLS_PREFIX + json.dumps(counts, sort_keys=True), file=sys.stderr, flush=True)


def emulator_calls(child: Child) -> dict[str, int] | None:
    """The Web API call counts a stopped emulator child wrote to its log."""
    for line in reversed(child.tail(50).splitlines()):
        if line.startswith(CALLS_PREFIX):
            counts: dict[str, int] = json.loads(line.removeprefix(CALLS_PREFIX))
            return counts
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bench helpers")
    sub = parser.add_subparsers(dest="what", required=True)
    emu = sub.add_parser("emulator", help="serve the Slack emulator until SIGTERM")
    emu.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "emulator":
        asyncio.run(_serve_emulator(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
