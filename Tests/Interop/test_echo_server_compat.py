"""Herald as a drop-in replacement for laravel-echo-server (LES).

Herald is started with `--config laravel-echo-server.json`, a file written exactly as LES's
`init` wizard writes it (tab-indented JSON, every default key present), pointing at the test
redis-server with Laravel's `laravel_database_` key prefix. Events come from the real Laravel
app (`laravel/publish.php`) and from LES's HTTP API (`POST /apps/:appId/events`); the clients
are python-socketio.

Subscriptions are confirmed through the HTTP API itself (`GET /apps/:appId/channels/:name`)
rather than through the private-channel sync barrier of conftest.py, because an LES file always
configures an auth host, so private subscriptions are no longer refused locally.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import HERALD_BINARY, LARAVEL_PREFIX, WECHAT_EVENT, free_port, unique, wait_until, wechat_data

APP_ID = "a1b2c3d4e5f60718"
APP_KEY = "00112233445566778899aabbccddeeff"


def les_config(redis_port: int, **overrides) -> dict:
    """What `laravel-echo-server init` writes (defaults accepted, one API client), pointed at
    the test Redis with Laravel's key prefix. The auth host is a closed port: these tests use
    public channels only."""
    config = {
        "authHost": f"http://127.0.0.1:{free_port()}",
        "authEndpoint": "/broadcasting/auth",
        "clients": [{"appId": APP_ID, "key": APP_KEY}],
        "database": "redis",
        "databaseConfig": {
            "redis": {"host": "127.0.0.1", "port": str(redis_port), "keyPrefix": LARAVEL_PREFIX},
            "sqlite": {"databasePath": "/database/laravel-echo-server.sqlite"},
        },
        "devMode": False,
        "host": None,
        "port": "6001",
        "protocol": "http",
        "socketio": {},
        "secureOptions": 67108864,
        "sslCertPath": "",
        "sslKeyPath": "",
        "sslCertChainPath": "",
        "sslPassphrase": "",
        "subscribers": {"http": True, "redis": True},
        "apiOriginAllow": {
            "allowCors": True,
            "allowOrigin": "http://localhost:80",
            "allowMethods": "GET, POST",
            "allowHeaders": "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, "
                            "X-CSRF-TOKEN, X-Socket-Id",
        },
    }
    config.update(overrides)
    return config


def write_config(directory: Path, config: dict, name: str = "laravel-echo-server.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(config, indent="\t"))  # LES: JSON.stringify(config, null, '\t')
    return path


@pytest.fixture
def les_herald(tmp_path, redis_server, herald_factory):
    """A herald started from an LES configuration file, subscribed to Redis."""
    herald = herald_factory("--config", str(write_config(tmp_path, les_config(redis_server.port))))
    wait_until(lambda: requests.get(herald.url("/ready"), timeout=1).status_code == 200, timeout=10,
               message="herald subscribed to Redis")
    return herald


def api(herald, path: str, key: str | None = APP_KEY, method: str = "GET", app_id: str = APP_ID, **kwargs):
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, herald.url(f"/apps/{app_id}{path}"), headers=headers, timeout=5, **kwargs)


def wait_subscribers(herald, channel: str, count: int) -> None:
    def ok():
        body = api(herald, f"/channels/{channel}").json()
        return body["subscription_count"] == count
    wait_until(ok, message=f"{count} subscriber(s) on {channel}")


def subscribe(client, channel: str) -> None:
    client.subscribe(channel, sync=False)


# --------------------------------------------------------------------------------------------


def test_laravel_event_reaches_socketio_client(les_herald, connect, laravel, redis_server):
    channel = unique("orders")
    client = connect(les_herald)
    subscribe(client, channel)
    wait_subscribers(les_herald, channel, 1)

    laravel.publish(redis_server, channel)  # RedisBroadcaster -> laravel_database_<channel>

    event = client.wait_event(WECHAT_EVENT)
    assert event == (WECHAT_EVENT, channel, wechat_data(channel))
    les_herald.assert_healthy()


def test_api_lists_channels_and_counts(les_herald, connect):
    prefix = unique("api")
    a, b = f"{prefix}.a", f"{prefix}.b"
    first, second = connect(les_herald), connect(les_herald, "polling")
    for client in (first, second):
        subscribe(client, a)
    subscribe(second, b)
    wait_subscribers(les_herald, a, 2)
    wait_subscribers(les_herald, b, 1)

    response = api(les_herald, "/channels", params={"filter_by_prefix": prefix})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"channels": {
        a: {"subscription_count": 2, "occupied": True},
        b: {"subscription_count": 1, "occupied": True},
    }}
    everything = api(les_herald, "/channels").json()["channels"]
    assert a in everything and b in everything

    assert api(les_herald, f"/channels/{a}").json() == {"subscription_count": 2, "occupied": True}
    assert api(les_herald, f"/channels/{prefix}.none").json() == {"subscription_count": 0, "occupied": False}
    assert api(les_herald, f"/channels/presence-{prefix}").json() == \
        {"subscription_count": 0, "occupied": False, "user_count": 0}
    assert api(les_herald, f"/channels/presence-{prefix}/users").json() == {"users": []}
    users = api(les_herald, f"/channels/{a}/users")
    assert users.status_code == 400
    assert users.json() == {"error": "User list is only possible for Presence Channels"}

    status = api(les_herald, "/status")
    assert status.status_code == 200
    body = status.json()
    assert set(body) == {"subscription_count", "uptime", "memory_usage"}
    assert body["subscription_count"] >= 2
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0
    assert body["memory_usage"]["rss"] > 0
    assert set(body["memory_usage"]) >= {"rss", "heapTotal", "heapUsed", "external"}

    # apiOriginAllow: CORS headers on API answers, and the preflight.
    assert status.headers["Access-Control-Allow-Origin"] == "http://localhost:80"
    assert status.headers["Access-Control-Allow-Methods"] == "GET, POST"
    preflight = requests.options(les_herald.url(f"/apps/{APP_ID}/events"), timeout=5,
                                 headers={"Origin": "http://localhost", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (200, 204)
    assert "X-Socket-Id" in preflight.headers["Access-Control-Allow-Headers"]


def test_api_publish_reaches_subscribers_with_data_decoded(les_herald, connect):
    channel, other = unique("news"), unique("news")
    sender, receiver = connect(les_herald), connect(les_herald, "polling")
    for client in (sender, receiver):
        subscribe(client, channel)
    subscribe(receiver, other)
    wait_subscribers(les_herald, channel, 2)
    wait_subscribers(les_herald, other, 1)

    # `data` as a JSON string (what Laravel's HTTP clients of LES send): decoded before emitting.
    response = api(les_herald, "/events", method="POST",
                   json={"channel": channel, "name": "news.published", "data": json.dumps({"id": 7, "title": "Hi"})})
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "ok"}
    for client in (sender, receiver):
        assert client.wait_event("news.published") == ("news.published", channel, {"id": 7, "title": "Hi"})

    # `channels` list, `data` as an object, key in ?auth_key=.
    response = requests.post(les_herald.url(f"/apps/{APP_ID}/events"), params={"auth_key": APP_KEY}, timeout=5,
                             json={"channels": [channel, other], "name": "multi", "data": {"n": [1, 2.5, None]}})
    assert response.json() == {"message": "ok"}
    receiver.wait_for(lambda e: e == ("multi", other, {"n": [1, 2.5, None]}), message="multi on the second channel")
    receiver.wait_for(lambda e: e == ("multi", channel, {"n": [1, 2.5, None]}), message="multi on the first channel")

    # socket_id: every subscriber but that socket (toOthers()).
    response = api(les_herald, "/events", method="POST",
                   json={"channel": channel, "name": "others", "data": "{\"x\":1}", "socket_id": sender.sid})
    assert response.json() == {"message": "ok"}
    assert receiver.wait_event("others") == ("others", channel, {"x": 1})
    api(les_herald, "/events", method="POST", json={"channel": channel, "name": "marker", "data": {"m": 1}})
    sender.wait_event("marker")  # events are delivered in order: "others" would have come first
    assert not [e for e in sender.received() if e[0] == "others"]

    # A string that is not JSON stays a string (LES: try { JSON.parse } catch {}).
    api(les_herald, "/events", method="POST", json={"channel": channel, "name": "plain", "data": "hello"})
    assert receiver.wait_event("plain") == ("plain", channel, "hello")
    les_herald.assert_healthy()


def test_api_refuses_wrong_keys_and_bad_bodies(les_herald, connect):
    channel = unique("guarded")
    client = connect(les_herald)
    subscribe(client, channel)
    wait_subscribers(les_herald, channel, 1)
    event = {"channel": channel, "name": "nope", "data": {"a": 1}}

    for response in (
        api(les_herald, "/events", key="wrong-key", method="POST", json=event),
        api(les_herald, "/events", key=None, method="POST", json=event),
        api(les_herald, "/events", app_id="ffffffffffffffff", method="POST", json=event),
        requests.post(les_herald.url(f"/apps/{APP_ID}/events"), params={"auth_key": "wrong"}, json=event, timeout=5),
        api(les_herald, "/status", key="wrong-key"),
        api(les_herald, "/channels", key=None),
    ):
        assert response.status_code == 403
        assert response.json() == {"error": "Unauthorized"}

    missing = api(les_herald, "/events", method="POST", json={"channel": channel, "name": "nope"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "Event must include channel, event name and data"}
    for body in (b"{not json", b"", b"[1,2]", b"\xff\xfe", b"{\"channel\":" + b"[" * 10000):
        bad = api(les_herald, "/events", method="POST", data=body, headers={"Content-Type": "application/json"})
        assert bad.status_code == 400, body
        assert "error" in bad.json()

    api(les_herald, "/events", method="POST", json={"channel": channel, "name": "after", "data": {"ok": True}})
    client.wait_event("after")
    assert not [e for e in client.received() if e[0] == "nope"]
    les_herald.assert_healthy()


def test_unsupported_keys_are_warned_about(tmp_path, redis_server, herald_factory):
    config = les_config(
        redis_server.port,
        protocol="https",
        sslCertPath="/etc/ssl/certs/echo.pem",
        sslKeyPath="/etc/ssl/private/echo.key",
        database="sqlite",
        socketio={"pingInterval": 1000},
        headers={"X-Served-By": "herald-test"},
        someFutureOption=True,
    )
    config["databaseConfig"]["redis"]["sentinels"] = [{"host": "127.0.0.1", "port": 26379}]
    herald = herald_factory("--config", str(write_config(tmp_path, config)))
    log = herald.log
    warnings = [line for line in log.splitlines() if " warning " in line]
    text = "\n".join(warnings)
    assert "https" in text and "not supported" in text
    for key in ("sslCertPath", "sslKeyPath", "sslCertChainPath", "sslPassphrase", "secureOptions", "sqlite",
                "socketio.pingInterval", "databaseConfig.redis.sentinels", "someFutureOption"):
        assert key in text, f"no warning names {key}:\n{text}"

    # `headers` go on every HTTP answer.
    assert requests.get(herald.url("/"), timeout=5).headers.get("X-Served-By") == "herald-test"
    assert api(herald, "/status").headers.get("X-Served-By") == "herald-test"
    herald.assert_healthy()


def test_file_port_env_override_and_http_subscriber_off(tmp_path, redis_server):
    """Without herald flags: the file's port (LES strips trailing non-digits) is overridden by
    LARAVEL_ECHO_SERVER_PORT, and `subscribers.http: false` removes the publish endpoint."""
    port = free_port()
    config = les_config(redis_server.port, port="1/", subscribers={"http": False, "redis": True})
    path = write_config(tmp_path, config)
    log_path = tmp_path / "herald.log"
    env = dict(os.environ, LARAVEL_ECHO_SERVER_PORT=str(port), LARAVEL_ECHO_SERVER_HOST="127.0.0.1")
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(HERALD_BINARY), "--config", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, cwd=tmp_path)
    try:
        def healthy():
            assert process.poll() is None, log_path.read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        wait_until(healthy, timeout=10, message="herald on LARAVEL_ECHO_SERVER_PORT")
        base = f"http://127.0.0.1:{port}/apps/{APP_ID}"
        auth = {"Authorization": f"Bearer {APP_KEY}"}
        assert requests.get(f"{base}/channels", headers=auth, timeout=5).status_code == 200
        post = requests.post(f"{base}/events", headers=auth, timeout=5, json={"channel": "c", "name": "n", "data": {}})
        assert post.status_code == 404
    finally:
        process.terminate()
        process.wait(5)


@pytest.mark.parametrize("content, expected", [
    ('{"databaseConfig": {"redis": {"port": true}}}', "databaseConfig.redis.port: expected a number"),
    ('{"clients": [{"appId": "x", "key": 5}]}', "clients[0].key: expected a string"),
    ("not json at all", "not valid JSON"),
])
def test_bad_config_file_fails_naming_the_key(tmp_path, content, expected):
    path = tmp_path / "laravel-echo-server.json"
    path.write_text(content)
    started = time.monotonic()
    result = subprocess.run([str(HERALD_BINARY), "--config", str(path)], capture_output=True, text=True, timeout=10)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert time.monotonic() - started < 10


def test_no_clients_means_no_api_but_headers_still_apply(tmp_path, redis_server, herald_factory):
    config = les_config(redis_server.port, clients=[], headers={"X-Served-By": "herald-test"})
    herald = herald_factory("--config", str(write_config(tmp_path, config)))
    assert api(herald, "/status").status_code == 404
    root = requests.get(herald.url("/"), timeout=5)
    assert root.text == "OK"
    assert root.headers.get("X-Served-By") == "herald-test"
    assert root.headers.get("Access-Control-Allow-Origin") == "http://localhost:80"
