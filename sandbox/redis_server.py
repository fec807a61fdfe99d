"""A real ``redis-server`` on 127.0.0.1 for tests and the sandbox, and an in-process fallback.

``RedisServer`` runs the binary as a child process (never daemonized) with its own data
directory; every started server is stopped at interpreter exit as a safety net.
``FakeRedisServer`` serves ``fakeredis`` over TCP from a thread, with the same surface, for
machines without the binary. ``start_best_redis`` picks one.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fakeredis import TcpFakeServer

START_TIMEOUT = 10.0
_LIVE: set[RedisServer] = set()


class RedisServerError(RuntimeError):
    """redis-server could not be started."""


def find_redis_server() -> str | None:
    """The path of ``redis-server`` on PATH, or None."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(port: int, command: bytes, timeout: float = 1.0) -> bytes:
    """Send one command (RESP) and return the first reply line (b"" if the peer closed)."""
    words = command.split()
    request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _server_pid(port: int, timeout: float = 1.0) -> int | None:
    """The process_id that the server on ``port`` reports in INFO server."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        data = b""
        while b"\r\n" not in data or len(data) < _bulk_end(data):
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


def _bulk_end(data: bytes) -> int:
    header, _, _ = data.partition(b"\r\n")
    if not header.startswith(b"$"):
        return len(data)  # an error or other reply: take what is there
    return len(header) + 2 + int(header[1:]) + 2


class RedisServer:
    """One ``redis-server`` child process bound to 127.0.0.1."""

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        directory: Path | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self._requested_port = port
        self._port = port
        self._appendonly = appendonly
        self._directory = directory
        self._owns_directory = directory is None
        self._extra_args = list(extra_args or [])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RedisServerError("redis-server has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise RedisServerError("redis-server has not been started")
        return self._directory

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Launch the server and wait until it answers PING (at most 10 s)."""
        if self.is_running:
            return
        binary = find_redis_server()
        if binary is None:
            raise RedisServerError("redis-server is not installed (not found on PATH)")
        fresh = self._directory is None
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="dhanam-redis-"))
        attempts = 1 if self._port is not None else 3
        for attempt in range(attempts):
            if self._requested_port is None and (self._port is None or attempt > 0):
                self._port = _free_port()
            try:
                self._launch(binary)
            except RedisServerError:
                # A port picked by us may have been taken meanwhile: try another one.
                if attempt + 1 < attempts and "Address already in use" in self._log_tail():
                    continue
                if fresh:  # nothing worth keeping in a directory made just now
                    self.stop()
                raise
            return

    def _launch(self, binary: str) -> None:
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self._appendonly else "no",
            "--dir", str(self.directory),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self._appendonly:
            # Every acknowledged write is on disk: a SIGKILL loses nothing (fault tests).
            args += ["--appendfsync", "always"]
        args += self._extra_args
        self._process = subprocess.Popen(  # noqa: S603 - our own argument list
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                tail = self._log_tail()
                self._reap()
                raise RedisServerError(
                    f"redis-server exited with status {self._process.returncode} on port "
                    f"{self.port}:\n{tail}"
                )
            # Ask for the pid: another server on this port must not pass for ours.
            with contextlib.suppress(OSError, ValueError):
                if _server_pid(self.port) == self._process.pid:
                    return
            if time.monotonic() > deadline:
                self._terminate(graceful=False)
                raise RedisServerError(
                    f"redis-server did not answer PING on port {self.port} within "
                    f"{START_TIMEOUT:.0f} s:\n{self._log_tail()}"
                )
            time.sleep(0.02)

    def _log_tail(self, lines: int = 20) -> str:
        text = ""
        if self._directory is not None and self.log_path.exists():
            text = self.log_path.read_text(errors="replace")
        if self._process is not None and self._process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                if self._process.poll() is not None:
                    text += self._process.stderr.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(no log output)"

    def _reap(self) -> None:
        _LIVE.discard(self)
        if self._process is not None and self._process.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self._process.stderr.close()

    def _terminate(self, *, graceful: bool) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            if graceful:
                with contextlib.suppress(OSError):
                    _command(self.port, b"SHUTDOWN NOSAVE", timeout=2.0)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        self._reap()

    def stop(self) -> None:
        """Shut the server down (SHUTDOWN NOSAVE, then SIGTERM) and delete its own temp dir."""
        self._terminate(graceful=True)
        self._process = None
        if self._owns_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
            if self._requested_port is None:
                self._port = None

    def shutdown(self) -> None:
        """Shut the server down gracefully but keep its port and directory, for ``restart``:
        an outage, as fault tests need it."""
        self._terminate(graceful=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its directory stays for ``restart``."""
        self._terminate(graceful=False)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and directory."""
        self._terminate(graceful=True)
        if self._port is None:
            self.start()
            return
        binary = find_redis_server()
        if binary is None:
            raise RedisServerError("redis-server is not installed (not found on PATH)")
        self._launch(binary)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


class FakeRedisServer:
    """fakeredis served over TCP on 127.0.0.1 from a background thread."""

    def __init__(self, *, port: int | None = None) -> None:
        self._requested_port = port
        self._port = port
        self._server: TcpFakeServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RedisServerError("the fake Redis server has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._server is not None:
            return
        import fakeredis  # noqa: PLC0415 - sandbox extra, imported only when used

        server = fakeredis.TcpFakeServer(
            ("127.0.0.1", self._requested_port or 0), server_type="redis"
        )
        self._port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-redis-{self._port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                if _command(self._port, b"PING").startswith(b"+PONG"):
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RedisServerError("the fake Redis server did not answer PING")
            time.sleep(0.02)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        if self._requested_port is None:
            self._port = None

    def __enter__(self) -> FakeRedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_best_redis() -> RedisServer | FakeRedisServer:
    """A started ``RedisServer`` when redis-server is installed, else a ``FakeRedisServer``."""
    server: RedisServer | FakeRedisServer
    server = RedisServer() if find_redis_server() is not None else FakeRedisServer()
    server.start()
    return server
