"""Pusher user authentication (PROTOCOLS.md D.9, D.10, D.11): `pusher:signin`,
`#server-to-user-<id>` channels, `POST /apps/<id>/users/<uid>/terminate_connections` and the
optional signin deadline (`--signin-timeout`).

Real herald binary, raw websocket-client connections for exact frames and close codes, the
official `pusher` library to sign `user_data` (`authenticate_user`) and to call the HTTP API
(`send_to_user`, `terminate_user_connections`), python-socketio next to them. Helpers come from
test_pusher.py / conftest.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pusher
import requests
from pusher.http import Request

from conftest import unique
from test_pusher import APP_ID, APP_KEY, APP_SECRET, api, compact, pusher_clients, pusher_js_data, start  # noqa: F401

SIGNER = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
UNAUTHORIZED = {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}


def signin(raw, user_data: dict, signer: pusher.Pusher = SIGNER) -> dict:
    """Sends `pusher:signin` as pusher-js does with what the app's `/broadcasting/user-auth`
    (here: the `pusher` library) returned; returns that `{auth, user_data}`."""
    signed = signer.authenticate_user(raw.socket_id, user_data)
    raw.send({"event": "pusher:signin", "data": signed})
    return signed


def signed_in(pusher_clients, herald, user_id: str, subscribe_own: bool = False):
    """A raw connection signed in as `user_id` (and subscribed to its server-to-user channel)."""
    raw = pusher_clients.raw(herald)
    signed = signin(raw, {"id": user_id, "user_info": {"name": f"user {user_id}"}})
    assert raw.wait_event("pusher:signin_success")["data"] == {"user_data": signed["user_data"]}
    if subscribe_own:
        raw.subscribe(f"#server-to-user-{user_id}")
        raw.wait_event("pusher_internal:subscription_succeeded", f"#server-to-user-{user_id}")
    return raw


def hand_signed(socket_id: str, user_data: str, secret: str = APP_SECRET) -> dict:
    """`{auth, user_data}` signed by hand (for user_data the `pusher` library refuses to sign)."""
    digest = hmac.new(secret.encode(), f"{socket_id}::user::{user_data}".encode(), hashlib.sha256).hexdigest()
    return {"auth": f"{APP_KEY}:{digest}", "user_data": user_data}


def assert_closed_unauthorized(raw, message: str | None = None, timeout: float = 5.0) -> None:
    error = raw.wait_event("pusher:error", timeout=timeout)
    data = pusher_js_data(error)
    assert data["code"] == 4009, error
    if message is not None:
        assert data["message"] == message, error
    assert raw.closed.wait(timeout), "connection was not closed"
    assert raw.close_code == 4009


# --------------------------------------------------------------------------------------------
# pusher:signin


def test_signin_success_echoes_user_data_and_keeps_the_connection(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    raw = pusher_clients.raw(herald)
    user_data = {"id": "12345", "user_info": {"name": "Ann"}, "watchlist": ["7"]}
    signed = signin(raw, user_data)
    frame = raw.wait_event("pusher:signin_success")
    # The exact signed string comes back (pusher-js parses it for `user.user_data`).
    assert frame == {"event": "pusher:signin_success", "data": {"user_data": signed["user_data"]}}
    assert json.loads(frame["data"]["user_data"]) == user_data
    raw.ping()
    assert not raw.closed.is_set()
    assert not raw.named("pusher:error")
    herald.assert_healthy()


def test_signin_with_a_bad_signature_is_4009_and_closed(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    forger = pusher_clients.raw(herald)
    signin(forger, {"id": "7"}, signer=pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret="not-the-secret"))
    assert_closed_unauthorized(forger)
    assert not forger.named("pusher:signin_success")

    # Signed for another socket: refused too.
    other = pusher_clients.raw(herald)
    thief = pusher_clients.raw(herald)
    thief.send({"event": "pusher:signin", "data": SIGNER.authenticate_user(other.socket_id, {"id": "7"})})
    assert_closed_unauthorized(thief)

    # The tampered user_data of a valid signature.
    tamper = pusher_clients.raw(herald)
    signed = SIGNER.authenticate_user(tamper.socket_id, {"id": "8"})
    tamper.send({"event": "pusher:signin", "data": {"auth": signed["auth"], "user_data": compact({"id": "1"})}})
    assert_closed_unauthorized(tamper)

    # Other connections are untouched.
    other.ping()
    assert not other.closed.is_set()


def test_signin_user_data_needs_a_non_empty_string_id(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    for user_data in [compact({"user_info": {"name": "Ann"}}), compact({"id": ""}), compact({"id": 7}),
                      "not json", compact(["7"])]:
        raw = pusher_clients.raw(herald)
        raw.send({"event": "pusher:signin", "data": hand_signed(raw.socket_id, user_data)})
        assert_closed_unauthorized(raw)
        assert not raw.named("pusher:signin_success"), user_data

    # Missing auth or user_data altogether.
    for data in [{"user_data": compact({"id": "7"})}, {"auth": f"{APP_KEY}:00"}]:
        raw = pusher_clients.raw(herald)
        raw.send({"event": "pusher:signin", "data": data})
        assert_closed_unauthorized(raw)
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# #server-to-user-<id>


def test_server_to_user_channel_only_for_the_signed_in_user(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    channel = "#server-to-user-7"

    anonymous = pusher_clients.raw(herald)
    anonymous.subscribe(channel)
    assert anonymous.wait_event("pusher:subscription_error", channel) == {
        "event": "pusher:subscription_error", "channel": channel, "data": UNAUTHORIZED,
    }

    stranger = signed_in(pusher_clients, herald, "8")
    stranger.subscribe(channel)
    assert stranger.wait_event("pusher:subscription_error", channel)["data"] == UNAUTHORIZED
    # Its own is fine, and a refusal does not close anything.
    stranger.subscribe("#server-to-user-8")
    stranger.wait_event("pusher_internal:subscription_succeeded", "#server-to-user-8")

    owner = signed_in(pusher_clients, herald, "7")
    owner.subscribe(channel)  # pusher-js sends auth ""
    assert owner.wait_event("pusher_internal:subscription_succeeded", channel)["channel"] == channel
    assert not owner.named("pusher:subscription_error")
    for raw in (anonymous, stranger, owner):
        raw.ping()
        assert not raw.closed.is_set()


def test_send_to_user_reaches_only_that_users_connections(herald_factory, redis_server, pusher_clients, connect):
    herald = start(herald_factory, redis_server)
    seven_a = signed_in(pusher_clients, herald, "7", subscribe_own=True)
    seven_b = signed_in(pusher_clients, herald, "7", subscribe_own=True)
    eight = signed_in(pusher_clients, herald, "8", subscribe_own=True)
    anonymous = pusher_clients.raw(herald)
    # A Socket.IO client may not listen in on a user's channel as if it were public.
    sio = connect(herald)
    sio.subscribe("#server-to-user-7", sync=False)
    assert sio.wait_refusal("#server-to-user-7")[2] == 403

    event = unique("notice")
    assert api(herald).send_to_user("7", event, {"text": "for seven"}) == {}
    for raw in (seven_a, seven_b):
        frame = raw.wait_event(event, "#server-to-user-7")
        assert pusher_js_data(frame) == {"text": "for seven"}

    # Also through a plain trigger on the channel.
    assert api(herald).trigger("#server-to-user-7", event + "-2", {"n": 2}) == {}
    seven_a.wait_event(event + "-2", "#server-to-user-7")

    for raw in (eight, anonymous):
        raw.ping()
        assert not [f for f in raw.received() if f.get("event", "").startswith(event)]
    time.sleep(0.1)
    assert not [e for e in sio.received() if str(e[0]).startswith(event)]


# --------------------------------------------------------------------------------------------
# terminate_connections


def test_terminate_user_connections_closes_exactly_that_user(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    seven_a = signed_in(pusher_clients, herald, "7", subscribe_own=True)
    seven_b = signed_in(pusher_clients, herald, "7")
    eight = signed_in(pusher_clients, herald, "8", subscribe_own=True)
    anonymous = pusher_clients.raw(herald)

    assert api(herald).terminate_user_connections("7") == {}
    for raw in (seven_a, seven_b):
        assert_closed_unauthorized(raw, "You got disconnected by the app.")

    for raw in (eight, anonymous):
        raw.ping()
        assert not raw.closed.is_set()
        assert not raw.named("pusher:error")
    # User 8 still gets its events; terminating an unknown user is a no-op.
    assert api(herald).send_to_user("8", "still-here", {}) == {}
    eight.wait_event("still-here", "#server-to-user-8")
    assert api(herald).terminate_user_connections("nobody") == {}
    eight.ping(count=2)
    assert not eight.closed.is_set()

    # A new connection of user 7 works again (the index forgot the closed ones).
    again = signed_in(pusher_clients, herald, "7", subscribe_own=True)
    assert api(herald).terminate_user_connections("7") == {}
    assert_closed_unauthorized(again, "You got disconnected by the app.")
    herald.assert_healthy()


def terminate_documented_path(herald, user_id: str, secret: str = APP_SECRET) -> requests.Response:
    """`POST /apps/<id>/users/<uid>/terminate_connections` (the documented path; pusher-http-php
    and Laravel use it), signed by the `pusher` library's request signer."""
    client = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=secret, host="127.0.0.1", port=herald.port, ssl=False)
    request = Request(client._pusher_client, "POST", f"/apps/{APP_ID}/users/{user_id}/terminate_connections", {})
    return requests.post(request.url, data=request.body, headers={"Content-Type": "application/json"}, timeout=5)


def test_terminate_connections_on_the_documented_apps_path(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    seven = signed_in(pusher_clients, herald, "7")
    eight = signed_in(pusher_clients, herald, "8")
    refused = terminate_documented_path(herald, "7", secret="wrong")
    assert refused.status_code == 401
    seven.ping()
    assert not seven.closed.is_set()

    reply = terminate_documented_path(herald, "7")
    assert reply.status_code == 200 and reply.json() == {}
    assert_closed_unauthorized(seven, "You got disconnected by the app.")
    eight.ping()
    assert not eight.closed.is_set()


def test_terminate_connections_needs_a_signature(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    seven = signed_in(pusher_clients, herald, "7")
    forged = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret="wrong", host="127.0.0.1", port=herald.port, ssl=False)
    try:
        forged.terminate_user_connections("7")
    except Exception as error:  # PusherBadAuth (401)
        assert "401" in str(error) or type(error).__name__ == "PusherBadAuth", error
    else:
        raise AssertionError("terminate_connections with a bad signature was accepted")
    seven.ping()
    assert not seven.closed.is_set()


# --------------------------------------------------------------------------------------------
# Signin deadline


def test_signin_timeout_closes_connections_that_do_not_sign_in(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server, "--signin-timeout", "1")
    lazy = pusher_clients.raw(herald)
    prompt = signed_in(pusher_clients, herald, "7")
    started = time.monotonic()
    assert_closed_unauthorized(lazy, "Connection not authorized within timeout", timeout=5)
    assert time.monotonic() - started < 3
    time.sleep(0.5)  # past the deadline of `prompt` too
    prompt.ping()
    assert not prompt.closed.is_set()
    assert not prompt.named("pusher:error")


def test_no_signin_deadline_by_default(herald_factory, redis_server, pusher_clients):
    herald = start(herald_factory, redis_server)
    raw = pusher_clients.raw(herald)
    time.sleep(1.5)
    raw.ping()
    assert not raw.closed.is_set()
    assert not raw.named("pusher:error")
