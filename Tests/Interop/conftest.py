"""Fixtures for Herald's interop tests.

Everything here is real: the `herald` binary built by `swift build`, a Debian `redis-server`
started on a free loopback port in a temporary directory, Laravel 8 (Debian packages) publishing
through its RedisBroadcaster (`laravel/publish.php`) and answering `/broadcasting/auth` with its
own code (`php -S`, fixture `laravel_app`), and python-socketio 5 / requests / websocket-client as
the clients, plus python-socketio 4.6 (socket.io 2.x, Engine.IO 3) from `.venv-sio4` driven
through `clients/sio4_client.py` (fixture `connect_sio4`). `fake_auth` is a deliberately
misbehaving auth endpoint. A missing tool is a failure, never a skip.

Run from the repository root:  .venv/bin/python -m pytest -q Tests/Interop
"""

from __future__ import annotations

import itertools
import json
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
        # With --tls-cert: https/wss, and the certificate file is the CA clients verify against.
        self.ca_file = args[args.index("--tls-cert") + 1] if "--tls-cert" in args else None
        self.scheme = "https" if self.ca_file else "http"
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
            return requests.get(self.url("/health"), timeout=1, verify=self.ca_file or True).status_code == 200
        except requests.ConnectionError:
            return False

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"{'wss' if self.ca_file else 'ws'}://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.splitlines()[-lines:])

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 5.0) -> None:
        wait_until(lambda: self.log.count(text) >= count, timeout=timeout, message=f"{count}x {text!r} in the herald log")

    def subscribed_lines(self, channel: str, engine_sid: str) -> list[str]:
        """Herald's debug log lines saying the session `engine_sid` joined `channel`."""
        return [line for line in self.log.splitlines()
                if line.rstrip().endswith(" subscribed") and f"herald.channel={channel}" in line
                and f"herald.sid={engine_sid}" in line]

    def wait_admitted(self, client, channel: str, timeout: float = 5.0) -> None:
        """Waits until herald admitted `client` to `channel` (private channels have no success
        reply on the wire, so this reads herald's debug log)."""
        wait_until(lambda: self.subscribed_lines(channel, client.engine_sid) or
                   client._fail_if_refused(channel), timeout=timeout,
                   message=f"herald admitting {client.engine_sid} to {channel}")

    def assert_healthy(self) -> None:
        assert self.process.poll() is None, f"herald died with {self.process.returncode}"
        assert "Fatal error" not in self.log, "herald log has a Swift 'Fatal error'"
        assert requests.get(self.url("/health"), timeout=2, verify=self.ca_file or True).status_code == 200

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


class Recording:
    """What every test client shares: the events it received, waits on them, and the Echo
    subscribe/unsubscribe/whisper messages. Subclasses provide `emit(event, data)`."""

    def _init_recording(self) -> None:
        self.events: list[tuple] = []
        self.disconnected = threading.Event()
        self.cond = threading.Condition()
        self._sync = itertools.count(1)

    def _record(self, event: tuple) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def emit(self, event: str, data) -> None:
        raise NotImplementedError

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
        self.emit("subscribe", {"channel": channel, "auth": {"headers": {}}})
        self.wait_for(lambda e: e == ("subscription_error", channel, 403), message=f"sync reply for {channel}")

    def subscribe(self, channel: str, sync: bool = True, headers: dict | None = None) -> None:
        """Echo's subscribe; `headers` go in `auth.headers` (e.g. `bearer(7)`). `sync` only
        proves the packet was handled: a private/presence subscription's auth answer may come
        later (see `Herald.wait_admitted`)."""
        self.emit("subscribe", {"channel": channel, "auth": {"headers": headers or {}}})
        if sync:
            self.sync()

    def unsubscribe(self, channel: str) -> None:
        self.emit("unsubscribe", {"channel": channel, "auth": {"headers": {}}})
        self.sync()

    def whisper(self, channel: str, event: str, data) -> None:
        """Echo's `whisper()`: a `client event` packet."""
        self.emit("client event", {"channel": channel, "event": event, "data": data})

    def wait_refusal(self, channel: str, timeout: float = 5.0) -> tuple:
        """Waits for `subscription_error` about `channel`; returns it."""
        return self.wait_for(lambda e: e[0] == "subscription_error" and e[1] == channel, timeout,
                             f"subscription_error for {channel}")

    def named(self, name: str) -> list[tuple]:
        return [e for e in self.received() if e[0] == name]

    def _fail_if_refused(self, channel: str) -> bool:
        refused = [e for e in self.received() if e[0] == "subscription_error" and e[1] == channel]
        if refused:
            pytest.fail(f"expected admission to {channel}, got {refused[0]!r}")
        return False


class Client(Recording):
    """A python-socketio 5 client (Socket.IO 5 / Engine.IO 4) that records every event it receives."""

    TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": ["polling", "websocket"]}

    def __init__(self, herald: Herald, mode: str = "websocket", headers: dict | None = None):
        self.herald = herald
        self.mode = mode
        session = None
        if herald.ca_file:
            session = requests.Session()
            session.verify = herald.ca_file  # verified against the test's own certificate
            session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, replaces `verify`
        self.sio = socketio.Client(reconnection=False, http_session=session)
        self._init_recording()

        @self.sio.on("*")
        def catch_all(event, *args):
            self._record((event, *args))

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

    def emit(self, event: str, data) -> None:
        self.sio.emit(event, data)

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


def bearer(user_id: int) -> dict:
    """`auth.headers` that authenticate `user_id` with the test Laravel app."""
    return {"Authorization": f"Bearer user-{user_id}"}


def member(user_id: int) -> dict:
    """The presence member Laravel's `chat.{room}` rule describes for `user_id`."""
    return {"user_id": user_id, "user_info": {"id": user_id, "name": f"User {user_id}"}}


def auth_args(url: str, *extra: str) -> list[str]:
    return ["--auth-host", url, "--auth-endpoint", "/broadcasting/auth", *extra]


# --------------------------------------------------------------------------------------------
# Laravel answering /broadcasting/auth (php -S)


class LaravelApp:
    """`php -S` serving the test Laravel app; its `/broadcasting/auth` is Laravel's own code."""

    def __init__(self, tmp: Path, redis: RedisServer, prefix: str | None = None):
        php = require_tool("php")
        self.port = free_port()
        self.log_path = tmp / f"php-{self.port}.log"
        env = dict(os.environ, REDIS_HOST="127.0.0.1", REDIS_PORT=str(redis.port), HERALD_LARAVEL_TMP=str(tmp),
                   PHP_CLI_SERVER_WORKERS="4")
        env.pop("REDIS_PREFIX", None)
        if prefix is not None:
            env["REDIS_PREFIX"] = prefix
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen([php, "-S", f"127.0.0.1:{self.port}", "-t", "public", "public/index.php"],
                                        cwd=LARAVEL, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"php -S exited with {self.process.returncode}:\n{self.log_path.read_text()[-2000:]}")
            try:
                return requests.get(self.url + "/", timeout=1).text.strip() == "herald-laravel ok"
            except requests.ConnectionError:
                return False

        wait_until(ready, timeout=10, message=f"php -S on port {self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture(scope="session")
def laravel_app(tmp_path_factory, redis_server):
    """The Laravel app answering `/broadcasting/auth`, with Laravel's default Redis prefix
    (`laravel_database_`, matching `--key-prefix LARAVEL_PREFIX`)."""
    app = LaravelApp(tmp_path_factory.mktemp("laravel-app"), redis_server)
    yield app
    app.stop()


# --------------------------------------------------------------------------------------------
# A misbehaving auth endpoint


class FakeAuth:
    """A tiny auth server whose answer depends on the channel name:
    `...hang...` never answers (until the test ends), `...slow...` answers like Laravel's
    presence rule for the bearer's user after 0.3 s, `...error500...` 500, `...redirect...`
    302 to `/elsewhere`, `...nonjson...` 200 with a non-JSON body, anything else 403.
    Every request is recorded as (method, path, headers, body)."""

    def __init__(self):
        import http.server
        import urllib.parse

        self.requests: list[tuple] = []
        self.release = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                fake.requests.append(("POST", self.path, dict(self.headers), body))
                channel = urllib.parse.parse_qs(body).get("channel_name", [""])[0]
                if "hang" in channel:
                    fake.release.wait(30)
                    return
                if "slow" in channel:
                    fake.release.wait(0.3)
                    user = (self.headers.get("Authorization") or "user-0").rsplit("-", 1)[-1]
                    data = {"channel_data": {"user_id": int(user), "user_info": {"id": int(user), "name": f"User {user}"}}}
                    self.answer(200, json.dumps(data).encode())
                    return
                if "error500" in channel:
                    self.answer(500, b'{"message":"Server Error"}')
                elif "redirect" in channel:
                    self.answer(302, b"", location="/elsewhere")
                elif "nonjson" in channel:
                    self.answer(200, b"<html>yes</html>", content_type="text/html")
                else:
                    self.answer(403, b'{"message":""}')

            def do_GET(self):
                fake.requests.append(("GET", self.path, dict(self.headers), ""))
                self.answer(200, b"true")

            def answer(self, status, body, content_type="application/json", location=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_auth():
    server = FakeAuth()
    yield server
    server.stop()


# --------------------------------------------------------------------------------------------
# python-socketio 4 (socket.io 2.x / Engine.IO 3) in its own virtualenv


SIO4_PYTHON = Path(os.environ.get("HERALD_SIO4_PYTHON", ROOT / ".venv-sio4" / "bin" / "python"))
SIO4_CLIENT = Path(__file__).resolve().parent / "clients" / "sio4_client.py"


class Sio4Client(Recording):
    """A python-socketio 4.6 client in a subprocess (`clients/sio4_client.py`)."""

    def __init__(self, herald: Herald, mode: str = "websocket", headers: dict | None = None):
        if not SIO4_PYTHON.is_file():
            pytest.fail(f"{SIO4_PYTHON} not found (run scripts/setup.sh to create .venv-sio4)")
        self.herald = herald
        self.mode = mode
        self._init_recording()
        self.records: list[dict] = []
        self.process = subprocess.Popen([str(SIO4_PYTHON), str(SIO4_CLIENT)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self._command({"op": "connect", "url": herald.url(), "transports": Client.TRANSPORTS[mode],
                       "headers": headers or {}})
        connected = self._wait_record(lambda r: r["type"] in ("connected", "error"), "connect reply", timeout=10)
        if connected["type"] == "error":
            pytest.fail(f"socket.io 2 client could not connect: {connected['message']}")
        self.engine_sid = connected["sid"]
        self._wait_record(lambda r: r["type"] == "connect", "namespace / connect")
        if mode == "upgrade":
            wait_until(lambda: self.transport() == "websocket", timeout=5, message="EIO3 polling -> websocket upgrade")
        else:
            assert self.transport() == mode

    @property
    def sid(self) -> str:
        """socket.io-client 2.x's `socket.id` for `/`: the Engine.IO sid."""
        return self.engine_sid

    def _read(self) -> None:
        for line in self.process.stdout:
            record = json.loads(line)
            with self.cond:
                self.records.append(record)
                if record["type"] == "event":
                    self.events.append((record["event"], *record["args"]))
                elif record["type"] == "disconnect":
                    self.disconnected.set()
                self.cond.notify_all()

    def _wait_record(self, predicate, message: str, timeout: float = 5.0, start: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for record in self.records[start:]:
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self.reader.is_alive()):
                    pytest.fail(f"socket.io 2 client: timed out waiting for {message}; records {self.records!r}; "
                                f"stderr {self._stderr()}")
                self.cond.wait(min(remaining, 0.1))

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(running)"
        return self.process.stderr.read()[-2000:]

    def _command(self, command: dict) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def transport(self) -> str:
        with self.cond:
            start = len(self.records)
        self._command({"op": "transport"})
        return self._wait_record(lambda r: r["type"] == "transport", "transport reply", start=start)["value"]

    def emit(self, event: str, data) -> None:
        self._command({"op": "emit", "event": event, "data": data})

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self._command({"op": "disconnect"})
                self.process.wait(5)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def connect_sio4():
    """`connect_sio4(herald, mode)` opens a socket.io 2.x client; all are closed after the test."""
    clients: list[Sio4Client] = []

    def make(herald: Herald, mode: str = "websocket", **kwargs) -> Sio4Client:
        client = Sio4Client(herald, mode, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
