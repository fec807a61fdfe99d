"""RedisServer runs a real redis-server; FakeRedisServer stands in when there is none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from sandbox.redis_server import (
    FakeRedisServer,
    RedisServer,
    RedisServerError,
    find_redis_server,
    start_best_redis,
)

needs_binary = pytest.mark.skipif(find_redis_server() is None, reason="redis-server not installed")


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it must have been reaped by us.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@needs_binary
def test_start_ping_stop_leaves_nothing_behind() -> None:
    server = RedisServer()
    server.start()
    try:
        assert server.is_running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        client.close()
        pid, directory = server.pid, server.directory
        assert pid is not None
        assert (directory / "redis.log").exists()
    finally:
        server.stop()
    assert not server.is_running
    assert not process_exists(pid)
    assert not directory.exists()


@needs_binary
async def test_async_client_and_context_manager() -> None:
    with RedisServer() as server:
        client: Redis = Redis.from_url(server.url)
        assert await client.ping()
        await client.aclose()
        pid = server.pid
    assert pid is not None
    assert not process_exists(pid)


@needs_binary
def test_kill_and_restart_with_appendonly_keeps_acknowledged_writes() -> None:
    with RedisServer(appendonly=True) as server:
        port, directory = server.port, server.directory
        client = redis.Redis.from_url(server.url)
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        client.set("approval:1", "pending")
        client.hset("approval:2", mapping={"state": "approved", "by": "U0BOB"})
        client.close()
        old_pid = server.pid
        assert old_pid is not None

        server.kill()
        assert not server.is_running
        assert not process_exists(old_pid)
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()

        server.restart()
        assert server.is_running
        assert (server.port, server.directory) == (port, directory)
        client = redis.Redis.from_url(server.url)
        assert client.get("approval:1") == b"pending"
        assert client.hgetall("approval:2") == {b"state": b"approved", b"by": b"U0BOB"}
        client.close()

        # A graceful restart keeps them too.
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("approval:1") == b"pending"
        client.close()
    assert not directory.exists()


@needs_binary
def test_without_appendonly_a_restart_forgets() -> None:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.get("k") is None
        client.close()


@needs_binary
def test_given_port_directory_and_extra_args(tmp_path: Path) -> None:
    with RedisServer() as first:
        taken = first.port
        # The same port twice fails with the log tail, and leaves no process.
        clash = RedisServer(port=taken, directory=tmp_path / "clash")
        (tmp_path / "clash").mkdir()
        with pytest.raises(RedisServerError, match=r"(?s)exited.*Address already in use"):
            clash.start()
        assert not clash.is_running
    with RedisServer(directory=tmp_path, extra_args=["--maxmemory", "10mb"]) as server:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("maxmemory")["maxmemory"] == str(10 * 1024 * 1024)
        assert client.config_get("dir")["dir"] == str(tmp_path)
        client.close()
    assert tmp_path.exists()  # not ours to delete


@needs_binary
def test_bad_arguments_fail_clearly() -> None:
    server = RedisServer(extra_args=["--no-such-option", "1"])
    with pytest.raises(RedisServerError, match="no-such-option"):
        server.start()
    assert not server.is_running
    server.stop()


@needs_binary
def test_atexit_stops_a_server_that_was_never_stopped() -> None:
    script = (
        "from sandbox.redis_server import RedisServer\n"
        "s = RedisServer(appendonly=True)\n"
        "s.start()\n"
        "print(s.pid, s.directory, flush=True)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pid, directory = done.stdout.split()
    assert not process_exists(int(pid))
    assert not Path(directory).exists()


def test_fake_redis_server_answers_redis_py() -> None:
    with FakeRedisServer() as server:
        assert server.is_running
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.incr("n") == 1
        client.close()
    assert not server.is_running


async def test_fake_redis_server_answers_the_async_client() -> None:
    with FakeRedisServer() as server:
        client: Redis = Redis.from_url(server.url)
        assert await client.ping()
        await client.set("k", "v", ex=60)
        assert await client.get("k") == b"v"
        await client.aclose()


def test_start_best_redis() -> None:
    server = start_best_redis()
    try:
        expected = RedisServer if find_redis_server() else FakeRedisServer
        assert isinstance(server, expected)
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()
