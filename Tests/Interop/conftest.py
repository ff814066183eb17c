"""Fixtures for Herald's interop tests.

Everything here is real: the `herald` binary built by `swift build`, a Debian `redis-server`
started on a free loopback port in a temporary directory, Laravel 8 (Debian packages) publishing
through its RedisBroadcaster (`laravel/publish.php`), and python-socketio / requests /
websocket-client as the clients. A missing tool is a failure, never a skip.

Run from the repository root:  .venv/bin/python -m pytest -q Tests/Interop
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis as redis_py
import requests
import socketio

ROOT = Path(__file__).resolve().parents[2]
LARAVEL = Path(__file__).resolve().parent / "laravel"
HERALD_BINARY = Path(os.environ.get("HERALD_BINARY", ROOT / ".build" / "debug" / "herald"))
LARAVEL_PREFIX = "laravel_database_"
WECHAT_EVENT = "App\\Events\\WechatLoginedEvent"

_counter = itertools.count(1)


def unique(name: str) -> str:
    """A channel name no other test uses (several heralds may share one redis-server)."""
    return f"{name}.{os.getpid()}.{next(_counter)}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02, message: str = "condition"):
    """Polls `predicate` until it returns a truthy value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is not installed (interop tests never skip; run scripts/setup.sh --tests)")
    return path


# --------------------------------------------------------------------------------------------
# redis-server


class RedisServer:
    """A redis-server we own: started on `port` in `directory`, killable and restartable."""

    def __init__(self, directory: Path, port: int | None = None):
        self.binary = require_tool("redis-server")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        assert self.process is None or self.process.poll() is not None, "redis-server already running"
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.directory,
        )
        log.close()

        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited with {self.process.returncode}:\n{self.log_path.read_text()[-2000:]}")
            try:
                return self.client().ping()
            except redis_py.exceptions.ConnectionError:
                return False

        wait_until(ready, timeout=10, message=f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def client(self) -> redis_py.Redis:
        return redis_py.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One redis-server for every test that does not kill its Redis."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server for this test alone (the test may kill and restart it)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


# --------------------------------------------------------------------------------------------
# Laravel


class Laravel:
    """Publishes through the real Laravel app (event() -> RedisBroadcaster -> Redis)."""

    def __init__(self, tmp: Path):
        self.php = require_tool("php")
        self.tmp = tmp

    def publish(self, redis: RedisServer, channel: str, *, token: str = "test-token", private: bool = False,
                socket_id: str | None = None, prefix: str | None = None, event: str = "WechatLoginedEvent") -> None:
        args = [self.php, str(LARAVEL / "publish.php"), event, channel, f"--token={token}"]
        if private:
            args.append("--private")
        if socket_id is not None:
            args.append(f"--socket={socket_id}")
        env = dict(os.environ, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port), HERALD_LARAVEL_TMP=str(self.tmp))
        env.pop("REDIS_PREFIX", None)
        if prefix is not None:
            env["REDIS_PREFIX"] = prefix  # "" = no prefix; unset = Laravel's laravel_database_
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30, cwd=LARAVEL)
        assert result.returncode == 0, f"publish.php failed ({result.returncode}): {result.stderr}{result.stdout}"


@pytest.fixture(scope="session")
def laravel(tmp_path_factory):
    return Laravel(tmp_path_factory.mktemp("laravel"))


# --------------------------------------------------------------------------------------------
# herald


class Herald:
    """One herald process; its stderr/stdout go to `log_path`."""

    def __init__(self, directory: Path, args: list[str]):
        if not HERALD_BINARY.is_file() or not os.access(HERALD_BINARY, os.X_OK):
            pytest.fail(f"herald binary not found at {HERALD_BINARY}; run `swift build` first")
        self.port = free_port()
        self.log_path = directory / f"herald-{self.port}.log"
        self.args = [str(HERALD_BINARY), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                     "--log-level", "debug", *args]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        log.close()
        self.stopped_on_purpose = False
        wait_until(self._healthy, timeout=10, message=f"herald /health on port {self.port}")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"herald exited with {self.process.returncode} during start-up:\n{self.log_tail()}")
        try:
            return requests.get(self.url("/health"), timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 5.0) -> None:
        wait_until(lambda: self.log.count(text) >= count, timeout=timeout, message=f"{count}x {text!r} in the herald log")

    def assert_healthy(self) -> None:
        assert self.process.poll() is None, f"herald died with {self.process.returncode}"
        assert "Fatal error" not in self.log, "herald log has a Swift 'Fatal error'"
        assert requests.get(self.url("/health"), timeout=2).status_code == 200

    def terminate(self) -> int:
        self.stopped_on_purpose = True
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def herald_factory(request, tmp_path):
    """`start(*args)` runs a herald with extra CLI args; all are killed after the test, and
    their log tails are printed if the test failed. A herald that crashed or logged a Swift
    'Fatal error' fails the test."""
    started: list[Herald] = []

    def start(*args: str) -> Herald:
        herald = Herald(tmp_path, list(args))
        started.append(herald)
        return herald

    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for herald in started:
        if not herald.stopped_on_purpose:
            if herald.process.poll() is not None:
                problems.append(f"herald on port {herald.port} died with exit code {herald.process.returncode}")
        if "Fatal error" in herald.log:
            problems.append(f"herald on port {herald.port} logged 'Fatal error'")
        herald.kill()
        if failed or problems:
            print(f"\n----- herald log tail ({' '.join(herald.args[1:])}) -----\n{herald.log_tail()}")
    assert not problems, "; ".join(problems)


# --------------------------------------------------------------------------------------------
# Socket.IO clients (python-socketio 5)


class Client:
    """A python-socketio client that records every event it receives."""

    TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}

    def __init__(self, herald: Herald, mode: str = "websocket", headers: dict | None = None):
        self.herald = herald
        self.mode = mode
        self.sio = socketio.Client(reconnection=False)
        self.events: list[tuple] = []
        self.disconnected = threading.Event()
        self.cond = threading.Condition()
        self._sync = itertools.count(1)

        @self.sio.on("*")
        def catch_all(event, *args):
            with self.cond:
                self.events.append((event, *args))
                self.cond.notify_all()

        @self.sio.event
        def disconnect(*_):
            self.disconnected.set()

        self.sio.connect(herald.url(), transports=self.TRANSPORTS[mode], socketio_path="socket.io",
                         headers=headers or {}, wait_timeout=5)
        if mode == "upgrade":
            wait_until(lambda: self.sio.transport() == "websocket", timeout=5, message="polling -> websocket upgrade")

    @property
    def sid(self) -> str:
        """The Socket.IO sid from the CONNECT reply (socket.io-client's `socket.id`, which Echo
        sends as X-Socket-ID). python-socketio's `sio.sid` is the *Engine.IO* sid instead."""
        return self.sio.get_sid("/")

    @property
    def engine_sid(self) -> str:
        return self.sio.sid

    def received(self, *, include_sync: bool = False) -> list[tuple]:
        with self.cond:
            return [e for e in self.events if include_sync or not self._is_sync(e)]

    @staticmethod
    def _is_sync(event: tuple) -> bool:
        return event[0] == "subscription_error" and len(event) > 1 and str(event[1]).startswith("private-sync.")

    def wait_for(self, predicate, timeout: float = 5.0, message: str = "event"):
        """Waits until some received event satisfies `predicate`; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"timed out after {timeout}s waiting for {message}; got {self.events!r}")
                self.cond.wait(remaining)

    def wait_event(self, name: str, timeout: float = 5.0):
        return self.wait_for(lambda e: e[0] == name, timeout, f"event {name!r}")

    def sync(self) -> None:
        """Barrier: waits until herald processed every packet this client sent so far.

        Herald answers a private-channel subscribe with `subscription_error` and handles a
        socket's packets in order, so that reply proves the earlier packets were handled."""
        channel = f"private-sync.{next(self._sync)}"
        self.sio.emit("subscribe", {"channel": channel, "auth": {"headers": {}}})
        self.wait_for(lambda e: e == ("subscription_error", channel, 403), message=f"sync reply for {channel}")

    def subscribe(self, channel: str, sync: bool = True) -> None:
        self.sio.emit("subscribe", {"channel": channel, "auth": {"headers": {}}})
        if sync:
            self.sync()

    def unsubscribe(self, channel: str) -> None:
        self.sio.emit("unsubscribe", {"channel": channel, "auth": {"headers": {}}})
        self.sync()

    def close(self) -> None:
        try:
            self.sio.disconnect()
        except Exception:
            pass


@pytest.fixture
def connect():
    """`connect(herald, mode)` opens a recording client; all are disconnected after the test."""
    clients: list[Client] = []

    def make(herald: Herald, mode: str = "websocket", **kwargs) -> Client:
        client = Client(herald, mode, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def wechat_data(channel: str, token: str = "test-token", socket_id: str | None = None) -> dict:
    """What WechatLoginedEvent's `data` is (Laravel keeps `socket` inside data too)."""
    return {"token": token, "channel": channel, "socket": socket_id}
