"""The status endpoints (`/status.json`, the `/status` page, the `/tail` stream) and the
`herald status` / `herald tail` verbs, against a real node.

Everything is real: the built `herald` binary serving, the same binary run as the CLI, Debian's
redis-server, Laravel publishing through its RedisBroadcaster and answering
`/broadcasting/auth`, python-socketio and pysher clients, the official `pusher` HTTP library,
and Debian's headless Chromium driven by Selenium for the page (a screenshot is saved to
`Tests/Interop/artifacts/status.png`). Waits are event-driven (a client's reply, a line on a
pipe, the DOM); nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import headless_chromium
from conftest import HERALD_BINARY, LARAVEL_PREFIX, WECHAT_EVENT, auth_args, bearer, free_port, unique, wait_until
from test_pusher import APP_ID, APP_KEY, APP_SECRET, PysherClient, api, laravel_channel_data

TOKEN = "status-token-0123456789abcdef"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Upper bounds for a shared 2-core CI machine, not expectations.
TIMEOUT = 30


def start(herald_factory, redis_server, *extra, token: str | None = TOKEN):
    args = ["--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
            "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET, *extra]
    if token is not None:
        args += ["--status-token", token]
    return herald_factory(*args)


def status_json(herald, token: str = TOKEN) -> dict:
    response = requests.get(herald.url("/status.json"), headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def cli(*args: str, token: str | None = None, url_env: str | None = None) -> subprocess.CompletedProcess:
    """Runs the built binary as a person would; HERALD_STATUS_TOKEN/HERALD_URL only if given."""
    env = {k: v for k, v in os.environ.items() if k not in ("HERALD_STATUS_TOKEN", "HERALD_URL")}
    if token is not None:
        env["HERALD_STATUS_TOKEN"] = token
    if url_env is not None:
        env["HERALD_URL"] = url_env
    return subprocess.run([str(HERALD_BINARY), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def pyshers():
    """`pyshers(herald)` opens a pysher client; all are closed after the test."""
    opened: list[PysherClient] = []

    def make(herald) -> PysherClient:
        client = PysherClient(herald)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def pusher_presence(client: PysherClient, laravel_app, channel: str, user: int) -> None:
    """Joins presence `channel` as `user`, with the channel_data the real Laravel app signs."""
    client.join_presence(channel, laravel_channel_data(laravel_app, channel, client.socket_id, user))
    client.wait_event("pusher_internal:subscription_succeeded", channel)


# --------------------------------------------------------------------------------------------
# /status.json and `herald status`


def test_status_json_and_herald_status_show_the_node(herald_factory, redis_server, laravel, laravel_app, connect, connect_sio4, pyshers):
    herald = start(herald_factory, redis_server, *auth_args(laravel_app.url))
    orders, news, room = unique("orders"), unique("news"), "presence-chat.1"

    # Three Socket.IO 5 clients (two WebSocket, one long-polling), one socket.io 2 client
    # (Engine.IO 3), two Pusher clients.
    first, second, polling = connect(herald, "websocket"), connect(herald, "websocket"), connect(herald, "polling")
    old = connect_sio4(herald, "websocket")
    first.subscribe(orders)
    first.subscribe(news)
    old.subscribe(news)
    second.subscribe(orders)
    polling.subscribe(orders)
    # Presence: a Socket.IO member authorized by Laravel (user 7) and a Pusher one (user 8).
    second.subscribe(room, sync=False, headers=bearer(7))
    second.wait_event("presence:subscribed")
    one, two = pyshers(herald), pyshers(herald)
    one.subscribe(orders)
    pusher_presence(two, laravel_app, room, 8)
    second.wait_event("presence:joining")

    # Four Laravel broadcasts: three on `orders`, one on `news`.
    for index in range(3):
        laravel.publish(redis_server, orders, token=f"t{index}")
    laravel.publish(redis_server, news, token="n")
    wait_until(lambda: len(polling.named(WECHAT_EVENT)) == 3 and len(first.named(WECHAT_EVENT)) == 4
               and len(old.named(WECHAT_EVENT)) == 1,
               timeout=TIMEOUT, message="every broadcast delivered")

    status = status_json(herald)
    assert status["connections"] == {"total": 6, "socketio_v4": 3, "socketio_v3": 1, "pusher": 2}
    assert status["channels"]["count"] == 3
    # Most subscribers first; ties by name ("news.…" before "presence-…").
    assert status["channels"]["busiest"] == [
        {"channel": orders, "subscribers": 4},
        {"channel": news, "subscribers": 2},
        {"channel": room, "subscribers": 2},
    ]
    assert status["presence"] == {"count": 1, "channels": [{"channel": room, "members": 2, "subscribers": 2}]}
    events = status["events"]
    assert events["in_total"] == 4 and events["dropped_total"] == 0
    # 3 x 4 subscribers of `orders` + 2 of `news` (+ presence notices, which are deliveries too).
    assert events["deliveries_total"] >= 14
    assert events["window_seconds"] == 300 and len(events["per_second"]) == 300
    assert sum(events["per_second"]) == 4 and events["last_minute"] == 4
    assert status["redis"] == {"configured": True, "address": f"redis://127.0.0.1:{redis_server.port}/0",
                               "pattern": f"{LARAVEL_PREFIX}*", "subscribed": True, "reconnects": 0,
                               "dropped_messages": 0, "not_laravel": 0}
    assert status["slow_consumer_disconnects"] == 0
    assert status["tail"] == {"clients": 0}
    assert status["uptime_seconds"] > 0 and status["memory_rss_bytes"] > 0
    assert requests.get(herald.url("/status.json?top=1"), headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=5).json()["channels"]["busiest"] == [{"channel": orders, "subscribers": 4}]

    # `herald status --json`: the same document, token from the environment, URL from a flag.
    result = cli("status", "--json", "--url", herald.url(), token=TOKEN)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["connections"] == status["connections"]
    assert document["channels"] == status["channels"]
    assert document["presence"] == status["presence"]
    assert document["events"]["in_total"] == 4

    # `herald status`: the readable summary, token from a flag, URL from HERALD_URL.
    result = cli("status", "--token", TOKEN, url_env=herald.url())
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"Herald at {herald.url()}, up " in text
    assert "Connections     6: 3 Socket.IO v4, 1 Socket.IO v3, 2 Pusher" in text
    assert re.search(r"^Events          4 in the last minute \(0\.07/s\), 4 in total, [\d,]+ deliveries, 0 dropped$", text, re.M), text
    assert f"Redis           subscribed, redis://127.0.0.1:{redis_server.port}/0 (pattern {LARAVEL_PREFIX}*), 0 reconnects" in text
    assert "Channels: 3\n" in text and "Presence channels: 1\n" in text
    assert re.search(rf"^\s+4  {re.escape(orders)}$", text, re.M), text
    assert re.search(rf"^\s+2  {re.escape(news)}$", text, re.M), text
    assert re.search(rf"^\s+2\s+2  {re.escape(room)}$", text, re.M), text

    # The numbers follow the clients: two leave.
    first.close()
    old.close()
    wait_until(lambda: status_json(herald)["connections"] == {"total": 4, "socketio_v4": 2, "socketio_v3": 0, "pusher": 2},
               timeout=TIMEOUT, message="the departures counted")
    after = status_json(herald)
    assert after["channels"]["busiest"][0] == {"channel": orders, "subscribers": 3}
    assert news not in [row["channel"] for row in after["channels"]["busiest"]]
    assert TOKEN not in herald.log


# --------------------------------------------------------------------------------------------
# /tail and `herald tail`


class Tail:
    """A running `herald tail`: its stdout lines in a queue, stderr recorded."""

    def __init__(self, *args: str):
        env = {k: v for k, v in os.environ.items() if k not in ("HERALD_STATUS_TOKEN", "HERALD_URL")}
        self.process = subprocess.Popen([str(HERALD_BINARY), "tail", *args], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, args=(self.process.stdout, self._out), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self._err), daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def _out(self, line: str) -> None:
        self.lines.put(line)

    def _err(self, line: str) -> None:
        with self.cond:
            self.stderr.append(line)
            self.cond.notify_all()

    def wait_stderr(self, text: str) -> str:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(text in line for line in self.stderr) or self.process.poll() is not None,
                                    timeout=TIMEOUT)
            found = [line for line in self.stderr if text in line]
        assert ok and found, f"`herald tail` never said {text!r}; stderr {self.stderr!r}, exit {self.process.poll()}"
        return found[0]

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"`herald tail` printed no line; stderr {self.stderr!r}, exit {self.process.poll()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(10)


@pytest.fixture
def tails():
    started: list[Tail] = []

    def make(*args: str) -> Tail:
        tail = Tail(*args)
        started.append(tail)
        return tail

    yield make
    for tail in started:
        if tail.process.poll() is None:
            tail.process.kill()
            tail.process.wait(5)


def test_herald_tail_shows_matching_events_from_every_source(herald_factory, redis_server, laravel, tails):
    herald = start(herald_factory, redis_server)
    watched, other = unique("watched"), unique("other")

    by_channel = tails("--url", herald.url(), "--token", TOKEN, "--channel", watched.rsplit(".", 1)[0] + ".*")
    by_event = tails("--url", herald.url(), "--token", TOKEN, "--event", "App\\Events\\Order*", "--json")
    by_channel.wait_stderr("tailing")
    by_event.wait_stderr("tailing")
    assert status_json(herald)["tail"] == {"clients": 2}

    # The router keeps publication order, so once the `watched` line is out, an `other` line
    # (published first) would already have been printed had it matched.
    laravel.publish(redis_server, other, token="not-for-you")
    laravel.publish(redis_server, watched, token="qr-123")
    line = by_channel.next_line()
    assert other not in line
    assert re.match(rf"^\d\d:\d\d:\d\d\.\d\d\d  {re.escape(watched)}  {re.escape(WECHAT_EVENT)}  redis  \d+ B  ", line), line
    assert json.loads(line.split(" B  ", 1)[1]) == {"token": "qr-123", "channel": watched, "socket": None}

    # The Pusher HTTP API is another source; a long payload is cut and marked.
    api(herald).trigger(watched, "my-event", {"big": "x" * 5000})
    line = by_channel.next_line()
    assert f"  {watched}  my-event  http  " in line and line.endswith("…"), line[:200]

    # --event and --json: only Laravel's OrderShipped (toOthers()), as the node's JSON line.
    laravel.publish(redis_server, "7", event="OrderShipped", socket_id="123.456")
    record = json.loads(by_event.next_line())
    assert record["channel"] == "private-orders.7" and record["event"] == "App\\Events\\OrderShipped"
    assert record["source"] == "redis" and record["socket"] == "123.456" and record["truncated"] is False
    assert json.loads(record["payload"]) == {"order": {"id": 7}, "socket": "123.456"}
    assert record["size"] == len(record["payload"].encode())
    assert by_event.lines.empty(), "the --event tail printed events it should have filtered out"

    assert by_channel.stop() in (0, -signal.SIGINT, 130)
    wait_until(lambda: status_json(herald)["tail"]["clients"] == 1, timeout=TIMEOUT, message="the tail client gone")

    # Shutting the node down ends the stream; the verb says so and exits 0.
    herald.terminate()
    by_event.wait_stderr("the node closed the stream")
    assert by_event.process.wait(10) == 0


def sse_lines(response):
    """The stream's lines as they arrive (no read-ahead that would wait for more bytes)."""
    pending = b""
    for chunk in response.iter_content(chunk_size=1):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode()


def test_tail_endpoint_is_server_sent_events(herald_factory, redis_server):
    herald = start(herald_factory, redis_server)
    channel = unique("sse")
    with requests.get(herald.url(f"/tail?token={TOKEN}&channel={channel}"), stream=True, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        lines = sse_lines(response)
        assert next(lines) == f": herald tail channel={channel} event=*"
        assert next(lines) == ""
        api(herald).trigger(channel, "hello", {"n": 1})
        data = next(lines)
        assert data.startswith("data: ")
        record = json.loads(data[len("data: "):])
        assert {k: record[k] for k in ("channel", "event", "source", "socket", "truncated")} == {
            "channel": channel, "event": "hello", "source": "http", "socket": None, "truncated": False}
        assert json.loads(record["payload"]) == {"n": 1}
    assert requests.get(herald.url("/tail?token=" + TOKEN + "&channel=" + "x" * 300), timeout=5).status_code == 400


# --------------------------------------------------------------------------------------------
# Access


def test_status_needs_the_token_and_is_off_without_one(herald_factory, redis_server):
    herald = start(herald_factory, redis_server)
    for path in ("/status.json", "/status", "/tail"):
        for headers, query in [({}, ""), ({"Authorization": "Bearer wrong"}, ""), ({}, "?token=wrong"),
                               ({"Authorization": TOKEN}, ""), ({"Authorization": f"Basic {TOKEN}"}, "")]:
            response = requests.get(herald.url(path + query), headers=headers, timeout=5)
            assert response.status_code == 401, (path, headers, query)
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="herald"'
            assert "status token" in response.json()["error"]
    ok = requests.get(herald.url(f"/status.json?token={TOKEN}"), timeout=5)
    assert ok.status_code == 200 and ok.json()["connections"]["total"] == 0
    page = requests.get(herald.url(f"/status?token={TOKEN}"), timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'sha256-" in page.headers["Content-Security-Policy"]
    assert requests.post(herald.url(f"/status.json?token={TOKEN}"), timeout=5).status_code == 405
    bad_top = requests.get(herald.url(f"/status.json?token={TOKEN}&top=0"), timeout=5)
    assert bad_top.status_code == 400 and "top" in bad_top.json()["error"]

    wrong = cli("status", "--url", herald.url(), "--token", "wrong")
    assert wrong.returncode != 0
    assert "refused the status token (401)" in wrong.stderr, wrong.stderr
    missing = cli("status", "--url", herald.url())
    assert missing.returncode != 0 and "wants a status token (401)" in missing.stderr, missing.stderr
    tail = cli("tail", "--url", herald.url(), token="wrong")
    assert tail.returncode != 0 and "refused the status token (401)" in tail.stderr, tail.stderr
    assert TOKEN not in herald.log

    off = start(herald_factory, redis_server, token=None)
    for path in ("/status.json", "/status", "/tail"):
        response = requests.get(off.url(f"{path}?token={TOKEN}"), timeout=5)
        assert response.status_code == 404 and response.json() == {"error": "Not found"}
    result = cli("status", "--url", off.url(), token=TOKEN)
    assert result.returncode != 0
    assert "status endpoints are off" in result.stderr and "--status-token" in result.stderr, result.stderr

    nobody = cli("status", "--url", f"http://127.0.0.1:{free_port()}", token=TOKEN)
    assert nobody.returncode != 0
    assert "cannot reach Herald" in nobody.stderr and "connection refused" in nobody.stderr, nobody.stderr
    bad_url = cli("tail", "--url", "127.0.0.1:6001", token=TOKEN)
    assert bad_url.returncode != 0 and "must start with http://" in bad_url.stderr, bad_url.stderr


# --------------------------------------------------------------------------------------------
# The page, in headless Chromium


@pytest.fixture
def browser(request):
    """Headless Chromium (Debian's) through chromedriver; console errors are printed on failure."""
    yield from headless_chromium(request, "1280,1100")


def page_numbers(driver) -> dict:
    """What the page shows: the cards' data-value attributes, the tables' rows, the chart's."""
    return driver.execute_script("""
        const value = id => document.getElementById(id).dataset.value;
        const rows = id => Array.from(document.querySelectorAll('#' + id + ' tbody tr[data-channel]')).map(tr => {
            const row = {channel: tr.dataset.channel, text: tr.cells[0].textContent};
            tr.querySelectorAll('td[data-subscribers], td[data-members]').forEach(td => Object.assign(row, td.dataset));
            return row;
        });
        const chart = document.getElementById('rate-chart');
        return {
            total: value('conn-total'), v4: value('conn-socketio-v4'), v3: value('conn-socketio-v3'),
            pusher: value('conn-pusher'), channels: value('channel-count'), redis: value('redis-state'),
            eventsIn: value('events-in'), lastMinute: value('events-last-minute'),
            presenceCount: value('presence-count'), busiest: rows('busiest'), presence: rows('presence'),
            chart: {points: +chart.dataset.points, nonzero: +chart.dataset.nonzero, total: +chart.dataset.total,
                    line: document.getElementById('rate-line').getAttribute('points').trim().split(/\\s+/).length},
            error: document.getElementById('error').textContent,
        };
    """)


def wait_page(driver, predicate, message: str) -> dict:
    seen = {}

    def check(d):
        seen["numbers"] = page_numbers(d)
        return predicate(seen["numbers"])

    try:
        WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(check)
    except Exception:
        pytest.fail(f"the status page never showed {message}; it shows {seen.get('numbers')!r}")
    return seen["numbers"]


def test_status_page_in_headless_chromium(herald_factory, redis_server, laravel, laravel_app, connect, pyshers, browser):
    herald = start(herald_factory, redis_server, *auth_args(laravel_app.url))
    lobby = unique("lobby")
    sneaky = '<b id="injected">bold</b>'
    clients = [connect(herald, "websocket") for _ in range(2)]
    for client in clients:
        client.subscribe(lobby)

    browser.get(herald.url(f"/status?token={TOKEN}"))
    numbers = wait_page(browser, lambda n: n["total"] == "2" and n["redis"] == "subscribed"
                        and n["busiest"] == [{"channel": lobby, "text": lobby, "subscribers": "2"}],
                        "2 Socket.IO connections, Redis subscribed, the lobby with 2 subscribers")
    assert numbers["v4"] == "2" and numbers["pusher"] == "0" and numbers["v3"] == "0"
    assert numbers["channels"] == "1" and numbers["presence"] == [] and numbers["error"] == ""

    # More clients: a polling one on the lobby and a channel named like markup, a Pusher client
    # on the lobby, and a Pusher presence member.
    third = connect(herald, "polling")
    third.subscribe(lobby)
    third.subscribe(sneaky)
    pusher_one, pusher_two = pyshers(herald), pyshers(herald)
    pusher_one.subscribe(lobby)
    pusher_presence(pusher_two, laravel_app, "presence-chat.1", 3)
    numbers = wait_page(browser, lambda n: n["total"] == "5" and n["pusher"] == "2" and n["v4"] == "3"
                        and n["presenceCount"] == "1" and n["busiest"][:1] == [{"channel": lobby, "text": lobby, "subscribers": "4"}],
                        "5 connections (2 Pusher), the lobby with 4 subscribers, one presence channel")
    assert numbers["channels"] == "3"
    assert numbers["presence"] == [{"channel": "presence-chat.1", "text": "presence-chat.1", "members": "1", "subscribers": "1"}]
    # The markup-like channel name is shown as text, not parsed as markup.
    assert {"channel": sneaky, "text": sneaky, "subscribers": "1"} in numbers["busiest"]
    assert browser.find_elements(By.ID, "injected") == []

    # Events flow: the chart draws them.
    for index in range(5):
        laravel.publish(redis_server, lobby, token=f"e{index}")
    wait_until(lambda: len(third.named(WECHAT_EVENT)) == 5, timeout=TIMEOUT, message="5 broadcasts delivered")
    numbers = wait_page(browser, lambda n: n["eventsIn"] == "5" and n["chart"]["total"] == 5,
                        "5 events in, on the chart")
    assert numbers["lastMinute"] == "5"
    assert numbers["chart"]["points"] == 300 and numbers["chart"]["line"] == 300
    assert 1 <= numbers["chart"]["nonzero"] <= 5

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "status.png"))
    assert (ARTIFACTS / "status.png").stat().st_size > 10_000
    assert TOKEN not in herald.log
