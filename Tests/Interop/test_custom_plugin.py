"""The `CustomPlugin` example: a relay built around plugins written outside Herald's package.

Real Laravel publishes its events through its RedisBroadcaster (`laravel/publish.php`) and
answers `/broadcasting/auth` (`laravel_app`); python-socketio 5 and a raw Pusher WebSocket
(websocket-client) are the clients. The example's plugins, all from Examples/CustomPlugin:
`DropTestChannels`, `HideSocketIDs` (removes Laravel's `socket` from payloads),
`ServerTimestamp` (adds `relayed_at_ms`), `GuestLobby` (an authorization hook: guests join
`presence-lobby.*` without the app, `internal.*` is refused, the rest goes to the app) and
`ConnectionLog` (a connection observer).

Needs `swift build` (the CustomPlugin binary next to herald).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import HERALD_BINARY, LARAVEL_PREFIX, WECHAT_EVENT, bearer, free_port, unique, wait_until
from test_pusher import RawPusher, pusher_js_data

CUSTOM_PLUGIN = Path(os.environ.get("HERALD_CUSTOM_PLUGIN_BINARY", HERALD_BINARY.parent / "CustomPlugin"))
APP_ID, APP_KEY, APP_SECRET = "77", "custom-plugin-key", "custom-plugin-secret"


class CustomPluginRelay:
    """The example's binary, run like a deployment would: configured by its environment."""

    ca_file = None  # plain HTTP (the conftest clients ask)

    def __init__(self, directory: Path, redis, auth_host: str):
        if not CUSTOM_PLUGIN.is_file():
            pytest.fail(f"{CUSTOM_PLUGIN} not found; run `swift build` first")
        self.port = free_port()
        self.log_path = directory / f"custom-plugin-{self.port}.log"
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(self.port), REDIS_URL=redis.url, KEY_PREFIX=LARAVEL_PREFIX,
                   AUTH_HOST=auth_host, PUSHER_APP_ID=APP_ID, PUSHER_APP_KEY=APP_KEY, PUSHER_APP_SECRET=APP_SECRET,
                   LOG_LEVEL="debug")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(CUSTOM_PLUGIN)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        log.close()
        wait_until(self._ready, timeout=10, message=f"CustomPlugin /ready on port {self.port}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"CustomPlugin exited with {self.process.returncode}:\n{self.log[-3000:]}")
        try:
            return requests.get(self.url("/ready"), timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self, *needles: str) -> list[str]:
        return [line for line in self.log.splitlines() if all(needle in line for needle in needles)]

    def wait_admitted(self, client, channel: str) -> None:
        """Private channels have no success reply on Socket.IO: read the relay's debug log."""
        wait_until(lambda: self.log_lines(" subscribed", f"herald.channel={channel}", f"herald.sid={client.engine_sid}")
                   or client._fail_if_refused(channel), message=f"admission to {channel}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def relay(tmp_path, redis_server, laravel_app):
    relay = CustomPluginRelay(tmp_path, redis_server, laravel_app.url)
    yield relay
    relay.stop()
    assert "Fatal error" not in relay.log


def relayed_at(data: dict) -> int:
    """Checks `relayed_at_ms` is a plausible wall-clock time in ms (not a duration assertion)."""
    stamp = data["relayed_at_ms"]
    assert isinstance(stamp, int)
    assert abs(stamp - time.time() * 1000) < 10 * 60 * 1000
    return stamp


def test_a_real_laravel_event_reaches_the_client_rewritten(relay, redis_server, laravel, connect):
    channel = unique("qr")
    client = connect(relay)
    client.subscribe(channel)

    laravel.publish(redis_server, channel, token="T-1")

    name, got_channel, data = client.wait_event(WECHAT_EVENT)
    assert got_channel == channel
    # Laravel sent {"token":"T-1","channel":…,"socket":null}: the socket is gone, the time added.
    relayed_at(data)
    assert list(data) == ["token", "channel", "relayed_at_ms"]
    assert {key: data[key] for key in ("token", "channel")} == {"token": "T-1", "channel": channel}


def test_to_others_still_excludes_the_sender_after_the_rewrite(relay, redis_server, laravel, connect):
    channel = unique("qr")
    sender, other = connect(relay), connect(relay)
    sender.subscribe(channel)
    other.subscribe(channel)

    laravel.publish(redis_server, channel, token="T-2", socket_id=sender.sid)

    _, _, data = other.wait_event(WECHAT_EVENT)
    assert "socket" not in data and data["token"] == "T-2"
    # The sender is excluded by the envelope's socket, which the plugin does not touch.
    laravel.publish(redis_server, channel, token="T-3")
    sender.wait_for(lambda e: e[0] == WECHAT_EVENT and e[2]["token"] == "T-3", message="T-3")
    assert [e[2]["token"] for e in sender.named(WECHAT_EVENT)] == ["T-3"]


def test_test_channels_never_reach_clients(relay, redis_server, laravel, connect):
    hidden, marker = unique("test.hidden"), unique("marker")
    client = connect(relay)
    client.subscribe(hidden)
    client.subscribe(marker)

    laravel.publish(redis_server, hidden, token="never")
    laravel.publish(redis_server, marker, token="after")

    client.wait_for(lambda e: e[0] == WECHAT_EVENT and e[1] == marker, message="the marker event")
    # Channels are not ordered against each other: the relay's log says the plugin dropped it.
    wait_until(lambda: relay.log_lines("plugin dropped the event", f"herald.channel={hidden}", "herald.plugin=drop-test-channels"),
               message="the drop of the test channel's event")
    assert [e[1] for e in client.named(WECHAT_EVENT)] == [marker]


def test_the_auth_hook_refuses_an_internal_public_channel(relay, connect):
    channel = unique("internal.audit")
    client = connect(relay)
    client.subscribe(channel, sync=False)
    assert client.wait_refusal(channel) == ("subscription_error", channel, 403)
    assert relay.log_lines("subscription refused by a plugin", f"herald.channel={channel}", "herald.status=403")


def test_the_auth_hook_admits_guests_to_the_lobby_with_member_data(relay, connect):
    channel = f"presence-lobby.{unique('room')}"
    guest = connect(relay)
    guest.subscribe(channel, sync=False)

    _, got_channel, members = guest.wait_event("presence:subscribed")
    assert got_channel == channel
    assert [(m["user_id"], m["user_info"]) for m in members] == [(f"guest-{guest.sid}", {"name": "Guest"})]

    # A second guest is announced to the first one as a joining member.
    second = connect(relay)
    second.subscribe(channel, sync=False)
    _, _, joining = guest.wait_event("presence:joining")
    assert joining["user_id"] == f"guest-{second.sid}"


def test_other_private_channels_are_deferred_to_the_laravel_app(relay, redis_server, laravel, connect):
    client = connect(relay)
    # The hook defers; Laravel's own `orders.{id}` rule admits user 7 to orders.7 only.
    client.subscribe("private-orders.7", sync=False, headers=bearer(7))
    relay.wait_admitted(client, "private-orders.7")
    client.subscribe("private-orders.8", sync=False, headers=bearer(7))
    assert client.wait_refusal("private-orders.8") == ("subscription_error", "private-orders.8", 403)

    laravel.publish(redis_server, "7", event="OrderShipped")

    _, channel, data = client.wait_event("App\\Events\\OrderShipped")
    assert channel == "private-orders.7"
    relayed_at(data)
    assert data["order"] == {"id": 7} and "socket" not in data


def test_a_pusher_client_gets_the_hooks_decision_as_subscription_error(relay):
    client = RawPusher(relay, key=APP_KEY)
    try:
        channel = unique("internal.metrics")
        client.subscribe(channel)
        frame = client.wait_event("pusher:subscription_error", channel=channel)
        assert pusher_js_data(frame)["status"] == 403

        lobby = f"presence-lobby.{unique('p')}"
        client.subscribe(lobby)
        frame = client.wait_event("pusher_internal:subscription_succeeded", channel=lobby)
        presence = pusher_js_data(frame)["presence"]
        assert presence["ids"] == [f"guest-{client.socket_id}"]
        assert presence["hash"] == {f"guest-{client.socket_id}": {"name": "Guest"}}
    finally:
        client.close()


def test_connections_are_observed_opening_and_closing(relay, connect):
    client = connect(relay)
    sid = client.sid
    wait_until(lambda: relay.log_lines("client connected", "plugin=connection-log", f"herald.socket={sid}", "protocol=socket.io"),
               message="the connection-log plugin's open line")
    client.close()
    wait_until(lambda: relay.log_lines("client disconnected", f"herald.socket={sid}"),
               message="the connection-log plugin's close line")


def test_whispers_go_through_the_event_plugins_too(relay, connect):
    channel = f"presence-lobby.{unique('chat')}"
    sender, other = connect(relay), connect(relay)
    for client in (sender, other):
        client.subscribe(channel, sync=False)
        client.wait_event("presence:subscribed")

    sender.whisper(channel, "client-typing", {"typing": True, "socket": "someone-else"})

    _, got_channel, data = other.wait_event("client-typing")
    assert got_channel == channel
    # HideSocketIDs and ServerTimestamp rewrote the whisper like any event.
    relayed_at(data)
    assert list(data) == ["typing", "relayed_at_ms"] and data["typing"] is True
