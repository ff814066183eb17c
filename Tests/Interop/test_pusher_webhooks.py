"""Pusher webhooks (PROTOCOLS.md D.14), received by a real HTTP server in this process.

Every request the receiver gets is checked with the official `pusher` library's
`validate_webhook(key, signature, body)` (HMAC of the exact body with the app secret, and a
`time_ms` within five minutes) before its events are recorded. The events come from real
clients: pysher, raw websocket-client connections, python-socketio members authorized by the
real Laravel app's `/broadcasting/auth`.

Webhooks for one URL are delivered one batch at a time, in order, so the arrival of a later
event proves every earlier one has arrived too: "nothing else happened" is asserted behind
such a barrier, never after a sleep.
"""

from __future__ import annotations

import http.server
import json
import threading

import pusher
import pytest

from conftest import auth_args, bearer, unique, wait_until
from test_pusher import (APP_ID, APP_KEY, APP_SECRET, api, laravel_channel_data,  # noqa: F401
                         pusher_clients, start)

VALIDATOR = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)


class WebhookReceiver:
    """A threaded HTTP server on a free loopback port. Answers `fail_first` POSTs with 500,
    then 200. `requests` holds every POST as (status, headers, body); `events` the events of
    accepted, signature-valid requests, in arrival order."""

    def __init__(self, fail_first: int = 0, validator: pusher.Pusher = VALIDATOR, key: str = APP_KEY):
        self.fail_first = fail_first
        self.validator, self.key = validator, key
        self.requests: list[tuple[int, dict, str]] = []
        self.events: list[dict] = []
        self.invalid: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                headers = {name.lower(): value for name, value in self.headers.items()}
                verified = receiver.validator.validate_webhook(headers.get("x-pusher-key", ""),
                                                      headers.get("x-pusher-signature", ""), body)
                with receiver.lock:
                    status = 500 if len(receiver.requests) < receiver.fail_first else 200
                    if verified is None:
                        receiver.invalid.append(body)
                        status = 401
                    receiver.requests.append((status, headers, body))
                    if status == 200:
                        receiver.events.extend(verified["events"])
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook-receiver")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/pusher/webhooks"

    def of(self, channel: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["channel"] == channel]

    def wait_for(self, channel: str, name: str, count: int = 1, timeout: float = 10.0, **fields) -> dict:
        """Waits until `count` events `name` of `channel` (with `fields`) arrived; returns the last."""
        def matching():
            found = [e for e in self.of(channel) if e["name"] == name and all(e.get(k) == v for k, v in fields.items())]
            return found[count - 1] if len(found) >= count else None
        return wait_until(matching, timeout=timeout, message=f"webhook {name} {fields or ''} on {channel}")

    def assert_all_valid(self) -> None:
        with self.lock:
            assert self.invalid == [], f"requests whose signature did not verify: {self.invalid!r}"
            for status, headers, body in self.requests:
                assert headers["content-type"] == "application/json"
                assert headers["x-pusher-key"] == self.key
                assert set(json.loads(body)) == {"time_ms", "events"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


def names(events: list[dict]) -> list[str]:
    return [e["name"] for e in events]


def test_occupied_vacated_client_event_and_cache_miss(herald_factory, redis_server, receiver, pusher_clients):
    herald = start(herald_factory, redis_server, "--webhook", receiver.url)

    # A public channel's first subscriber occupies it; its last one leaving vacates it.
    lobby = unique("lobby")
    first = pusher_clients.pysher(herald)
    first.subscribe(lobby)
    receiver.wait_for(lobby, "channel_occupied")
    second = pusher_clients.raw(herald)
    second.subscribe(lobby)
    second.wait_event("pusher_internal:subscription_succeeded", lobby)
    first.close()
    second.close()
    receiver.wait_for(lobby, "channel_vacated")
    assert receiver.of(lobby) == [{"name": "channel_occupied", "channel": lobby},
                                  {"name": "channel_vacated", "channel": lobby}]

    # Client events carry the sender's socket_id and the data as Pusher sends it: a string.
    chat = "private-chat.8"
    sender, listener = pusher_clients.pysher(herald), pusher_clients.pysher(herald)
    sender_channel = sender.subscribe(chat)
    listener.subscribe(chat)
    sender_channel.trigger("client-typing", {"name": "Ann", "typing": True})
    listener.wait_event("client-typing", chat)
    event = receiver.wait_for(chat, "client_event")
    assert set(event) == {"name", "channel", "event", "data", "socket_id"}  # no user_id off presence
    assert event["event"] == "client-typing" and event["socket_id"] == sender.socket_id
    assert isinstance(event["data"], str) and json.loads(event["data"]) == {"name": "Ann", "typing": True}

    # A cache channel with nothing cached: the subscriber gets pusher:cache_miss, the app a webhook.
    weather = unique("cache-weather")
    cached = pusher_clients.raw(herald)
    cached.subscribe(weather)
    cached.wait_event("pusher:cache_miss", weather)
    receiver.wait_for(weather, "cache_miss")
    assert names(receiver.of(weather)) == ["channel_occupied", "cache_miss"]
    receiver.assert_all_valid()
    herald.assert_healthy()


def test_presence_members_once_per_user_across_pusher_and_socketio(herald_factory, redis_server, laravel_app,
                                                                    receiver, connect, pusher_clients):
    herald = start(herald_factory, redis_server, "--webhook", receiver.url, *auth_args(laravel_app.url))
    channel = "presence-chat.51"

    # User 1 twice over Pusher, user 7 twice over Socket.IO (authorized by Laravel).
    one = pusher_clients.pysher(herald)
    one.join_presence(channel, laravel_channel_data(laravel_app, channel, one.socket_id, 1))
    one.wait_event("pusher_internal:subscription_succeeded", channel)
    one_again = pusher_clients.pysher(herald)
    one_again_channel = one_again.join_presence(channel, laravel_channel_data(laravel_app, channel, one_again.socket_id, 1))
    one_again.wait_event("pusher_internal:subscription_succeeded", channel)
    seven = connect(herald, "websocket")
    seven.subscribe(channel, sync=False, headers=bearer(7))
    seven.wait_event("presence:subscribed")
    seven_again = connect(herald, "websocket")
    seven_again.subscribe(channel, sync=False, headers=bearer(7))
    seven_again.wait_event("presence:subscribed")

    # Client events on the presence channel name their sender's user, whatever its protocol.
    one_again_channel.trigger("client-hello", {"from": "pusher"})
    seven.wait_for(lambda e: e[0] == "client-hello", message="the Pusher client event")
    seven_sid = seven.sid  # python-socketio forgets it once disconnected
    seven.whisper(channel, "client-hello", {"from": "socket.io"})
    one.wait_event("client-hello", channel)
    # Barrier: the whisper's webhook arrived, so every earlier event has too.
    receiver.wait_for(channel, "client_event", count=2)

    one.close()                  # user 1 still has one_again
    seven.close()                # user 7 still has seven_again
    one_again.close()            # user 1 leaves
    seven_again.close()          # user 7 leaves: the channel is empty
    receiver.wait_for(channel, "channel_vacated")

    events = receiver.of(channel)
    assert events[:3] == [
        {"name": "channel_occupied", "channel": channel},
        {"name": "member_added", "channel": channel, "user_id": "1"},
        {"name": "member_added", "channel": channel, "user_id": "7"},
    ]
    client_events = events[3:5]
    assert [(e["event"], e["socket_id"], e["user_id"], json.loads(e["data"])) for e in client_events] == [
        ("client-hello", one_again.socket_id, "1", {"from": "pusher"}),
        ("client-hello", seven_sid, "7", {"from": "socket.io"}),
    ]
    assert all(e["name"] == "client_event" for e in client_events)
    assert events[5:] == [
        {"name": "member_removed", "channel": channel, "user_id": "1"},
        {"name": "member_removed", "channel": channel, "user_id": "7"},
        {"name": "channel_vacated", "channel": channel},
    ]
    receiver.assert_all_valid()
    herald.assert_healthy()


def test_a_refused_batch_is_retried_until_it_arrives(herald_factory, redis_server, pusher_clients):
    failing = WebhookReceiver(fail_first=1)
    try:
        herald = start(herald_factory, redis_server, "--webhook", failing.url)
        lobby = unique("lobby")
        client = pusher_clients.pysher(herald)
        client.subscribe(lobby)
        failing.wait_for(lobby, "channel_occupied")
        with failing.lock:
            requests = list(failing.requests)
        # The 500 and the retry carry the same signed bytes; the event is recorded once.
        assert [status for status, _, _ in requests] == [500, 200]
        assert requests[0][2] == requests[1][2]
        assert requests[0][1]["x-pusher-signature"] == requests[1][1]["x-pusher-signature"]
        assert failing.of(lobby) == [{"name": "channel_occupied", "channel": lobby}]
        failing.assert_all_valid()
        herald.assert_healthy()
    finally:
        failing.stop()


def test_graceful_shutdown_flushes_the_vacated_events(herald_factory, redis_server, receiver, pusher_clients):
    herald = start(herald_factory, redis_server, "--webhook", receiver.url)
    lobby = unique("lobby")
    client = pusher_clients.pysher(herald)
    client.subscribe(lobby)
    receiver.wait_for(lobby, "channel_occupied")
    # SIGTERM closes the connection (4200); its channel_vacated still goes out before exit.
    assert herald.terminate() == 0
    assert receiver.of(lobby) == [{"name": "channel_occupied", "channel": lobby},
                                  {"name": "channel_vacated", "channel": lobby}]
    receiver.assert_all_valid()


def test_a_client_event_a_plugin_drops_makes_no_webhook(herald_factory, redis_server, receiver, pusher_clients, tmp_path):
    """client_event is recorded after the plugins: a whisper the filter drops reaches nobody,
    and the app hears nothing of it either."""
    config = tmp_path / "herald.yaml"
    config.write_text(f"""
plugins:
  - use: filter
    deny_events: ["client-secret*"]
""")
    herald = start(herald_factory, redis_server, "--webhook", receiver.url, "--config", str(config))
    chat = "private-chat.9"
    sender, listener = pusher_clients.pysher(herald), pusher_clients.pysher(herald)
    sender_channel = sender.subscribe(chat)
    listener.subscribe(chat)
    sender_channel.trigger("client-secret-note", {"n": 1})
    sender_channel.trigger("client-typing", {"n": 2})
    # Same sender, same channel: per-channel order holds, so once client-typing has arrived
    # (at the listener and the receiver), the dropped one would have come first.
    listener.wait_event("client-typing", chat)
    receiver.wait_for(chat, "client_event")
    assert [e["event"] for e in receiver.of(chat) if e["name"] == "client_event"] == ["client-typing"]
    assert listener.named("client-secret-note") == []
    receiver.assert_all_valid()
    herald.assert_healthy()
