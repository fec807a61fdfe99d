"""A local Redis Cluster (3 masters, no replicas) from redis-server processes on free ports,
for the tests that prove the bot runs on ElastiCache in cluster mode."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time

from sandbox.redis_server import RedisServer, RedisServerError, _command

CLUSTER_TIMEOUT = 20.0


def _cluster_port() -> int:
    """A free port a cluster node may use: its bus port (port + 10000) must exist too, so the
    OS's ephemeral ports above 55535 will not do."""
    for _ in range(200):
        port = random.randint(20_000, 55_000)  # noqa: S311 - not for security
        with socket.socket() as first, socket.socket() as bus:
            try:
                first.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
            return port
    raise RedisServerError("no free port pair for a cluster node")


class RedisClusterServer:
    def __init__(self, masters: int = 3) -> None:
        self._nodes = [
            RedisServer(
                port=_cluster_port(),
                appendonly=True,
                extra_args=["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"],
            )
            for _ in range(masters)
        ]

    @property
    def nodes(self) -> list[RedisServer]:
        return list(self._nodes)

    @property
    def url(self) -> str:
        """Any node's URL: the cluster client discovers the rest."""
        return self._nodes[0].url

    def start(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RedisServerError("redis-cli is not installed (needed to create the cluster)")
        for node in self._nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self._nodes]
        created = subprocess.run(  # noqa: S603 - our own argument list
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=CLUSTER_TIMEOUT,
            check=False,
        )
        if created.returncode != 0:
            self.stop()
            raise RedisServerError(f"redis-cli --cluster create failed:\n{created.stdout}")
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in _command(n.port, b"CLUSTER INFO") for n in self._nodes):
                return
            time.sleep(0.1)
        self.stop()
        raise RedisServerError("the cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self._nodes:
            node.stop()

    def __enter__(self) -> RedisClusterServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
