"""`herald publish` from the built binary: through Redis in Laravel's format, and through a node's
signed Pusher HTTP API (verified by herald with the app's secret)."""

from __future__ import annotations

import json
import subprocess

from conftest import HERALD_BINARY, LARAVEL_PREFIX, unique
from test_pusher import APP_ID, APP_KEY, APP_SECRET, PysherClient, start


def publish(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HERALD_BINARY), "publish", *args], capture_output=True, text=True, timeout=30)


def test_publish_through_redis_and_through_the_api(herald_factory, connect, redis_server):
    herald = start(herald_factory, redis_server)
    channel = unique("cli")
    sio = connect(herald, "websocket")
    sio.subscribe(channel)
    pusher_client = PysherClient(herald)
    pusher_client.subscribe(channel)

    # Through Redis, in Laravel's format, with Laravel's prefix.
    result = publish("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, channel, "order.shipped", '{"id":1}')
    assert result.returncode == 0, result.stderr
    assert "published to 1 subscriber(s)" in result.stdout
    assert sio.wait_event("order.shipped") == ("order.shipped", channel, {"id": 1})
    assert json.loads(pusher_client.wait_event("order.shipped", channel)["data"]) == {"id": 1}

    # Through the node's Pusher HTTP API, signed with the app's secret.
    result = publish("--api", herald.url(), "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET,
                     channel, "order.delivered", '{"id":2}')
    assert result.returncode == 0, result.stderr
    assert "HTTP 200" in result.stdout
    sio.wait_for(lambda e: e == ("order.delivered", channel, {"id": 2}), message="order.delivered over Socket.IO")
    assert json.loads(pusher_client.wait_event("order.delivered", channel)["data"]) == {"id": 2}

    # A wrong secret: herald refuses the signature, the command says so and fails.
    result = publish("--api", herald.url(), "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", "wrong",
                     channel, "order.lost", "{}")
    assert result.returncode != 0
    assert "the node answered 401" in result.stderr and "Invalid signature" in result.stderr
    # Bad JSON never leaves the machine.
    result = publish("--api", herald.url(), "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET,
                     channel, "order.bad", "{not json")
    assert result.returncode != 0
    assert "the payload is not valid JSON" in result.stderr
    herald.assert_healthy()


def test_http_api_requests_carry_a_request_id(herald_factory, redis_server):
    """Each HTTP API answer names its request id (the proxy's X-Request-Id, else a fresh one),
    and herald's log lines about that request carry it."""
    import requests

    herald = start(herald_factory, redis_server)
    given = "nginx-7f3a9c"
    refused = requests.post(herald.url(f"/apps/{APP_ID}/events?auth_key={APP_KEY}&auth_signature=bad"),
                            json={"name": "x", "channels": ["c"], "data": "{}"}, headers={"X-Request-Id": given}, timeout=5)
    assert refused.status_code == 401
    assert refused.headers["X-Request-Id"] == given
    herald.wait_for_log(f"herald.request={given}")
    assert any("Pusher API request refused" in line and f"herald.request={given}" in line for line in herald.log.splitlines())

    fresh = requests.get(herald.url(f"/apps/{APP_ID}/channels?auth_key={APP_KEY}&auth_signature=bad"), headers={"X-Request-Id": "bad id\twith spaces"}, timeout=5)
    generated = fresh.headers["X-Request-Id"]
    assert generated != "bad id\twith spaces" and len(generated) == 16
    int(generated, 16)  # hex
