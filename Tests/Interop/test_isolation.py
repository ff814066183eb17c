"""Adversarial isolation of private and presence channels (issue #7, "Bad input and abuse").

Every test here has a positive control in the same test: an authorized client on the same
herald receives what the attacker must not, so a test that "receives nothing" cannot pass
because nothing was sent. "Nothing else arrived" is asserted behind a barrier, never after a
sleep: the router routes events in the order it accepted them and each event loop runs its
deliveries in that order, so once a barrier event published *after* the owners received
theirs has reached a client, anything routed to it earlier has too.

Clients are ones nobody here wrote: python-socketio (and raw `websocket-client` frames where a
test needs exact Engine.IO bytes), pysher and raw websocket-client connections speaking Pusher
protocol 7, the official `pusher` HTTP library, `requests` against laravel-echo-server's API,
and real Laravel: its `/broadcasting/auth` (`laravel_app`) and its Redis wire format
(`{"event","data","socket"}` PUBLISHed under `laravel_database_`).

Already covered elsewhere, and not repeated here:

* test_private_presence.py: owner/stranger/anonymous on `private-orders.1` with Laravel's auth,
  the handshake cookie, presence joining and leaving.
* test_channels.py: private subscriptions refused without an auth host; `--emit-to-all` never
  sends private events to everyone.
* test_auth_failures.py: a misbehaving auth endpoint (hang, 500, redirect, non-JSON 200),
  malformed subscribe payloads (a 10 KB name among them), channel limits.
* test_whisper.py: Socket.IO whisper refusals (public channel, name without `client-`, sender not
  a member, no event name, garbage) and the rate limit.
* test_pusher.py: pysher signing with a wrong secret, another socket's signature on a private
  channel, invalid names, client events on public channels (4301) and the rate limit, the 10 KB
  HTTP `data` limit, wrong secret/key/app id and stale timestamps on the HTTP API, garbage
  frames (5,000 unclosed `{` among them).
* test_pusher_apps.py: one app's signatures and API credentials on another app's channels.
* test_bad_input.py: Engine.IO HTTP errors, the polling body limit (413), a garbage WebSocket
  packet, non-Laravel Redis payloads.
* test_echo_server_compat.py: laravel-echo-server API refusals, a 10,000-deep body among them.

What this file adds:

1. Guessed and look-alike names (case variants, leading/trailing spaces, NUL and control
   characters, Cyrillic/fullwidth/zero-width look-alikes, a combining mark after `private-`,
   `private-orders.1` vs `private-orders.10`, 200- and 201-byte names), over Socket.IO and
   Pusher, with events from Redis, the Pusher HTTP API and laravel-echo-server's API.
2. Unicode twins: names Swift's `String ==` calls equal (U+212A KELVIN SIGN vs "K", precomposed
   vs decomposed "é") that Laravel, Redis and the app's auth see as different channels. This
   found a leak, now fixed (see ChannelKey.swift).
3. Forged and replayed Pusher signatures: another socket's, another channel's, the encrypted
   twin's, wrong secret, another app's key and secret, truncated/uppercase/extended hex, spoofed
   or re-serialized presence `channel_data`.
4. Client events from outside the membership, both protocols. On refusal a Pusher sender gets
   `pusher:error` 4301 and stays connected; a Socket.IO sender gets nothing on the wire (as with
   laravel-echo-server, which ignored them too): herald logs `client event refused: …` at info.
   Pusher events without the `client-` prefix (`pusher_internal:*` forgeries included) are
   ignored without an error; a `user_id` a client puts in its frame is replaced by its own.
5. Oversized and 10,000-deep JSON on every input while bystanders (Socket.IO over WebSocket and
   polling, pysher) on the same herald keep receiving events. JSON deeper than 256 levels is
   refused everywhere. Socket.IO: a deep packet closes the session (close packet `1`, then close
   1000; polling: the next GET is 400 "Session ID unknown"), logged "bad Socket.IO packet"; a
   WebSocket frame over `--max-payload` is logged with close code 1009. Pusher: a deep frame is
   `pusher:error` with code null and the connection stays; a client event over 10 KB is 4301; a
   presence member over 2 KB is subscription error 4100; a frame over `--max-payload` is 1009.
   Pusher HTTP API: deep body or over 100 channels 400 `{"error","code"}`; body over
   `--max-payload` 413. laravel-echo-server API: the same, 400 `{"error"}` and 413. Redis: a deep
   payload is dropped with a warning; a 1 MB one is relayed intact, as laravel-echo-server did.
6. Regressions this suite found at the boundaries, each fixed: the 1009 close frame now reaches
   the client (it used to lose to a TCP reset), a 413 answers in the API's own error form (it
   was Engine.IO's everywhere), a Socket.IO whisper over the first Pusher app's client-event
   limit is refused (it reached Pusher members), and one socket can hold both Unicode twins
   (the second subscribe went unanswered).
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse
from urllib.parse import urlencode

import pusher
import pytest
import requests
import websocket
from pusher.signature import sign

from conftest import LARAVEL_PREFIX, auth_args, bearer, unique, wait_until
from test_pusher import APP_ID, APP_KEY, APP_SECRET, api, laravel_channel_data, members_of, pusher_clients  # noqa: F401

LES_APP = "isolation-app"
LES_KEY = "isolation-api-key-0123456789"
SIGNER = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
ORDER_EVENT = "App\\Events\\OrderShipped"
DEEP = "[" * 10_000 + "]" * 10_000
EIO = "/socket.io/?EIO=4"


def start(herald_factory, redis_server, tmp_path, *extra):
    """herald with Redis (Laravel's prefix), the Pusher app, and laravel-echo-server's API."""
    config = tmp_path / "herald-isolation.yaml"
    config.write_text(f'api:\n  clients:\n    - {{ app_id: "{LES_APP}", key: "{LES_KEY}" }}\n')
    return herald_factory("--config", str(config), "--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
                          "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET, *extra)


def redis_publish(redis_server, channel: str, event: str, data) -> None:
    """What Laravel's RedisBroadcaster PUBLISHes (raw bytes, so any channel name can be sent)."""
    payload = json.dumps({"event": event, "data": data, "socket": None})
    redis_server.client().publish((LARAVEL_PREFIX + channel).encode(), payload.encode())


def les_publish(herald, channel: str, name: str, data) -> requests.Response:
    """laravel-echo-server's `POST /apps/:appId/events`."""
    response = requests.post(herald.url(f"/apps/{LES_APP}/events"), headers={"Authorization": f"Bearer {LES_KEY}"},
                             json={"channel": channel, "name": name, "data": data}, timeout=5)
    assert (response.status_code, response.json()) == (200, {"message": "ok"}), response.text
    return response


def sio_events(client, names) -> list[tuple]:
    return [e for e in client.received() if e[0] in names]


def pusher_events(client, names) -> list[dict]:
    return [f for f in client.received() if f.get("event") in names]


def got_all(client, expected: list) -> None:
    """Waits until `client` (Socket.IO tuples or Pusher frames) received every item of
    `expected`. Events from different sources (Redis, either HTTP API) may interleave, so
    tests compare what arrived without regard to order across sources."""
    for item in expected:
        client.wait_for(lambda e: e == item, message=repr(item))


def in_any_order(items: list) -> list:
    return sorted(items, key=repr)


def sio_barrier(clients, redis_server, channel: str, tag: str) -> None:
    """Every client is subscribed to public `channel`: publish `tag` there and wait for it."""
    redis_publish(redis_server, channel, "barrier", {"tag": tag})
    for client in clients:
        client.wait_for(lambda e: e == ("barrier", channel, {"tag": tag}), message=f"barrier {tag}")


def hex_of(auth: str) -> str:
    return auth.split(":", 1)[1]


def hand_signed(channel: str, socket_id: str, channel_data: str | None = None, key: str = APP_KEY,
                secret: str = APP_SECRET) -> str:
    """`<key>:<hex HMAC>` computed here (the `pusher` library refuses to sign invalid names)."""
    message = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{key}:" + hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# 1. Guessed and look-alike names


def test_guessed_and_look_alike_names_never_hear_private_events(herald_factory, redis_server, laravel_app, tmp_path,
                                                                 connect, pusher_clients):
    herald = start(herald_factory, redis_server, tmp_path, *auth_args(laravel_app.url))
    http = api(herald)
    orders, room = "private-orders.1", "presence-chat.iso"
    barrier = unique("iso-barrier")

    # The owners: Laravel admits user 1 to private-orders.1 and user 7 to the room; pysher signs
    # its own private subscription, and the Pusher member carries Laravel's channel_data.
    owner = connect(herald, "websocket")
    owner.subscribe(orders, sync=False, headers=bearer(1))
    herald.wait_admitted(owner, orders)
    member = connect(herald, "polling")
    member.subscribe(room, sync=False, headers=bearer(7))
    member.wait_event("presence:subscribed")
    pusher_owner = pusher_clients.pysher(herald)
    pusher_owner.subscribe(orders)
    pusher_owner.join_presence(room, laravel_channel_data(laravel_app, room, pusher_owner.socket_id, 1))
    pusher_owner.wait_event("pusher_internal:subscription_succeeded", room)
    for client in (owner, member):
        client.subscribe(barrier)
    pusher_owner.subscribe(barrier)

    # Socket.IO: names Laravel refuses (403: no rule, wrong user or no user) and names herald
    # refuses before asking (control characters: 403).
    refused_for_user_2 = [
        orders, "private-orders.1 ", "private-orders.01", "private-orders.1\u200b", "private-orders.\uff11",
        "private-ord\u0435rs.1", "private-Orders.1", "private-orders.*", "private-*", "presence-Chat.iso",
        "private-\u0301orders.1",  # a combining mark after the prefix is still `private-` to Laravel
        "private-orders.1" + "0" * 184,  # 200 bytes, the longest name herald takes
        "private-orders.1\x00", "private-orders.1\n", "private-orders.1\x7f", "private-orders.1\u0085",
    ]
    refused_anonymous = [orders, room, "private-orders.1 ", "presence-chat.iso "]
    stranger = connect(herald, "websocket")
    anonymous = connect(herald, "polling")
    for name in refused_for_user_2:
        stranger.subscribe(name, sync=False, headers=bearer(2))
    for name in refused_anonymous:
        anonymous.subscribe(name, sync=False)
    too_long = "private-orders.1" + "0" * 185  # 201 bytes: not a channel name at all
    stranger.subscribe(too_long, sync=False, headers=bearer(2))
    for client, names in ((stranger, refused_for_user_2), (anonymous, refused_anonymous)):
        for name in names:
            assert client.wait_refusal(name, timeout=10) == ("subscription_error", name, 403), name
    herald.wait_for_log("subscribe refused: no valid channel name")
    herald.wait_for_log("subscription refused: control character in the channel name", count=4)

    # Names that are *other* channels, and admitted as such: public by prefix (case, a leading
    # space), Laravel-authorized twins (user 10's order, any user's room with a trailing space
    # or a dotless i). Each must hear only its own events (its positive control).
    lookalikes = {"Private-orders.1": None, "PRIVATE-ORDERS.1": None, " private-orders.1": None,
                  "private-orders.10": 10, "presence-chat.iso ": 2, "presence-chat.\u0131so": 2}
    twins = {}
    for name, user in lookalikes.items():
        client = connect(herald, "websocket")
        client.subscribe(barrier)
        client.subscribe(name, sync=False, headers=bearer(user) if user else None)
        if name.startswith("presence-"):
            subscribed = client.wait_event("presence:subscribed")
            assert subscribed[1] == name and [m["user_id"] for m in subscribed[2]] == [user]
        else:
            herald.wait_admitted(client, name)
        twins[name] = client
    for client in (stranger, anonymous):
        client.subscribe(barrier)

    # Pusher: unsigned, public look-alikes (admitted), invalid names (4009), twin with a
    # valid signature for *its* channel.
    raw = pusher_clients.raw(herald)
    raw.subscribe(orders)
    raw.subscribe(room, auth=SIGNER.authenticate(room, raw.socket_id)["auth"])  # no channel_data
    for name in ("private-orders.1 ", "private-orders.1\x00", "private-orders.\u212a", "private-orders.1" + "0" * 149):
        raw.subscribe(name)
    raw.subscribe("Private-orders.1")
    raw.subscribe("private-orders.10", auth=SIGNER.authenticate("private-orders.10", raw.socket_id)["auth"])
    raw.subscribe(barrier)
    raw.ping()
    errors = {f["channel"]: f["data"] for f in raw.named("pusher:subscription_error")}
    assert errors[orders]["status"] == 401 and errors[room]["status"] == 401
    for name in ("private-orders.1 ", "private-orders.1\x00", "private-orders.\u212a", "private-orders.1" + "0" * 149):
        assert errors[name]["status"] == 4009 and errors[name]["type"] == "InvalidChannel", name
    assert {f["channel"] for f in raw.named("pusher_internal:subscription_succeeded")} == {
        "Private-orders.1", "private-orders.10", barrier}

    # Events for the real channels from every source, and one for each look-alike.
    redis_publish(redis_server, orders, ORDER_EVENT, {"order": {"id": 1}})
    http.trigger(orders, "order.http", {"via": "pusher-api"})
    les_publish(herald, orders, "order.les", {"via": "echo-api"})
    redis_publish(redis_server, room, "chat.redis", {"text": "members only"})
    http.trigger(room, "chat.http", {"via": "pusher-api"})
    for name in lookalikes:
        redis_publish(redis_server, name, "twin.event", {"for": name})
    secret_names = {ORDER_EVENT, "order.http", "order.les", "chat.redis", "chat.http"}

    owner_expected = [(ORDER_EVENT, orders, {"order": {"id": 1}}), ("order.http", orders, {"via": "pusher-api"}),
                      ("order.les", orders, {"via": "echo-api"})]
    got_all(owner, owner_expected)
    member_expected = [("chat.redis", room, {"text": "members only"}), ("chat.http", room, {"via": "pusher-api"})]
    got_all(member, member_expected)
    pusher_expected = [{"event": e, "channel": c, "data": json.dumps(d)}  # bytes as published
                       for e, c, d in owner_expected + member_expected]
    got_all(pusher_owner, pusher_expected)
    assert in_any_order(sio_events(owner, secret_names)) == in_any_order(owner_expected)
    assert in_any_order(sio_events(member, secret_names)) == in_any_order(member_expected)
    assert in_any_order(pusher_events(pusher_owner, secret_names)) == in_any_order(pusher_expected)
    for name, client in twins.items():  # positive control: each look-alike was live
        assert client.wait_event("twin.event") == ("twin.event", name, {"for": name})

    sio_barrier([owner, member, stranger, anonymous, *twins.values()], redis_server, barrier, "after")
    raw.wait_for(lambda f: f.get("event") == "barrier", message="barrier on the raw Pusher connection")
    for client in (stranger, anonymous, *twins.values()):
        assert sio_events(client, secret_names) == [], client.received()
        assert [e for e in client.received() if e[0] not in ("subscription_error", "barrier", "twin.event",
                                                                     "presence:subscribed")] == []
    for name, client in twins.items():
        assert client.named("twin.event") == [("twin.event", name, {"for": name})]
    assert pusher_events(raw, secret_names | {"twin.event"}) == [
        {"event": "twin.event", "channel": "Private-orders.1", "data": json.dumps({"for": "Private-orders.1"})},
        {"event": "twin.event", "channel": "private-orders.10", "data": json.dumps({"for": "private-orders.10"})}]
    assert owner.named("twin.event") == [] and member.named("twin.event") == [] and pusher_owner.named("twin.event") == []
    # The look-alike rooms' members are not the room's: users 7 and 1 only, no joining notice.
    assert sorted(u["id"] for u in http.users_info(room)["users"]) == ["1", "7"]
    assert [e[2]["user_id"] for e in member.named("presence:joining")] == ["1"]
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 2. Unicode twins


class ExactAuth:
    """An auth endpoint that, like Laravel, authorizes exactly the bytes it is asked about:
    200 only for (bearer token, channel) pairs in `grants` (presence: with that user's
    channel_data), 403 for anything else. Records every channel asked about."""

    def __init__(self, grants: dict[tuple[str, str], str]):
        self.grants = grants
        self.asked: list[str] = []
        auth = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                channel = urllib.parse.parse_qs(body).get("channel_name", [""])[0]
                auth.asked.append(channel)
                user = auth.grants.get((self.headers.get("Authorization") or "", channel))
                if user is None:
                    status, answer = 403, b'{"message":""}'
                elif channel.startswith("presence-"):
                    status, answer = 200, json.dumps({"channel_data": {"user_id": user, "user_info": {"name": user}}}).encode()
                else:
                    status, answer = 200, b"true"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


KATE, KELVIN_KATE = "private-user.Kate", "private-user.\u212aate"  # U+212A KELVIN SIGN == "K" for Swift
JOSE_NFC, JOSE_NFD = "private-user.Jos\u00e9", "private-user.Jose\u0301"
TEAM, KELVIN_TEAM = "presence-team.Kate", "presence-team.\u212aate"


@pytest.fixture
def exact_auth():
    server = ExactAuth({
        ("Bearer kate", KATE): "kate", ("Bearer kate", TEAM): "kate",
        ("Bearer kelvin", KELVIN_KATE): "kelvin", ("Bearer kelvin", KELVIN_TEAM): "kelvin",
        ("Bearer jose-nfc", JOSE_NFC): "jose-nfc", ("Bearer jose-nfd", JOSE_NFD): "jose-nfd",
    })
    yield server
    server.stop()


def test_unicode_twins_are_different_channels(herald_factory, redis_server, exact_auth, tmp_path, connect, pusher_clients):
    """Users named "Kate" and "\u212aate" (or "José" precomposed and decomposed) each own a
    private channel the app authorizes byte for byte. Before the fix herald keyed channels by
    Swift String equality, so each twin received the other's private events, could whisper
    into the other's channel, and a leave of one twin removed the other's registry entry."""
    herald = start(herald_factory, redis_server, tmp_path, *auth_args(exact_auth.url))
    barrier = unique("twin-barrier")
    owners = {}
    for name, token in ((KATE, "kate"), (KELVIN_KATE, "kelvin"), (JOSE_NFC, "jose-nfc"), (JOSE_NFD, "jose-nfd")):
        client = connect(herald, "websocket")
        client.subscribe(barrier)
        client.subscribe(name, sync=False, headers={"Authorization": f"Bearer {token}"})
        herald.wait_admitted(client, name)
        owners[name] = client
    kelvin_tab = connect(herald, "polling")  # a second connection of the Kelvin-sign user
    kelvin_tab.subscribe(barrier)
    kelvin_tab.subscribe(KELVIN_KATE, sync=False, headers={"Authorization": "Bearer kelvin"})
    herald.wait_admitted(kelvin_tab, KELVIN_KATE)
    kate, kelvin = owners[KATE], owners[KELVIN_KATE]
    # The app refuses each twin the other's name (it compares bytes).
    prober = connect(herald, "websocket")
    prober.subscribe(KATE, sync=False, headers={"Authorization": "Bearer kelvin"})
    assert prober.wait_refusal(KATE) == ("subscription_error", KATE, 403)
    # Pusher names are ASCII: the Kelvin sign is not a channel name there (4009); Kate's
    # channel over Pusher is a third member of Kate's channel only.
    pusher_kate = pusher_clients.pysher(herald)
    pusher_kate.subscribe(KATE)
    pusher_kate.subscribe(barrier)
    raw = pusher_clients.raw(herald)
    raw.subscribe(KELVIN_KATE, auth=hand_signed(KELVIN_KATE, raw.socket_id))
    assert raw.wait_event("pusher:subscription_error", KELVIN_KATE)["data"]["status"] == 4009

    # Presence twins: each team has its own member list.
    kate_team, kelvin_team = connect(herald, "websocket"), connect(herald, "websocket")
    kate_team.subscribe(TEAM, sync=False, headers={"Authorization": "Bearer kate"})
    assert kate_team.wait_event("presence:subscribed")[1:] == (
        TEAM, [{"user_id": "kate", "user_info": {"name": "kate"}, "socketId": kate_team.sid}])
    kelvin_team.subscribe(KELVIN_TEAM, sync=False, headers={"Authorization": "Bearer kelvin"})
    subscribed = kelvin_team.wait_event("presence:subscribed")
    assert subscribed[1] == KELVIN_TEAM and [m["user_id"] for m in subscribed[2]] == ["kelvin"]

    # Events to each name, from Redis (Laravel's format) and laravel-echo-server's API.
    for name in owners:
        redis_publish(redis_server, name, "private.note", {"for": name})
    les_publish(herald, KATE, "private.api", {"for": KATE})
    les_publish(herald, KELVIN_KATE, "private.api", {"for": KELVIN_KATE})
    redis_publish(redis_server, TEAM, "team.note", {"for": TEAM})
    # Whispers: into the twin's channel (refused: not a member of those bytes), and into its own.
    kelvin.whisper(KATE, "client-psst", {"from": "kelvin", "into": "kate"})
    kelvin.whisper(KELVIN_KATE, "client-psst", {"from": "kelvin", "into": "own"})
    kelvin_tab.wait_for(lambda e: e[0] == "client-psst", message="the Kelvin user's own whisper")
    def own_events(name: str) -> list[tuple]:
        expected = [("private.note", name, {"for": name})]
        if name in (KATE, KELVIN_KATE):
            expected.append(("private.api", name, {"for": name}))
        return expected

    for name, client in owners.items():
        got_all(client, own_events(name))
    pusher_kate.wait_event("private.api", KATE)
    sio_barrier([*owners.values(), kelvin_tab], redis_server, barrier, "after")
    pusher_kate.wait_for(lambda f: f.get("event") == "barrier", message="barrier on pysher")

    herald.wait_for_log("client event refused: the sender is not subscribed")
    for name, client in owners.items():
        own = [e for e in client.received() if e[0] in ("private.note", "private.api", "client-psst")]
        assert in_any_order(own) == in_any_order(own_events(name)), (name, own)
        others = [e for e in client.received() if e[0] != "subscription_error" and e[1] not in (name, barrier)]
        assert others == [], others
    assert in_any_order([e for e in kelvin_tab.received() if e[0] != "barrier"]) == in_any_order(
        own_events(KELVIN_KATE) + [("client-psst", KELVIN_KATE, {"from": "kelvin", "into": "own"})])
    heard = pusher_events(pusher_kate, {"private.note", "private.api", "client-psst"})
    assert in_any_order([(f["event"], f["channel"]) for f in heard]) == [("private.api", KATE), ("private.note", KATE)]
    kelvin_team.sync()
    assert kelvin_team.named("team.note") == [] and kelvin_team.named("presence:joining") == []
    assert kate_team.wait_event("team.note") == ("team.note", TEAM, {"for": TEAM})
    assert kate_team.named("presence:joining") == []

    # Leaving never touches the twin: an unsubscribe naming Kate's channel (String-equal to
    # its own) and the Kelvin user's disconnects leave Kate's two members, and no registry
    # entry of the Kelvin channel behind.
    def subscribers(name: str) -> int:
        response = requests.get(herald.url(f"/apps/{LES_APP}/channels/{urllib.parse.quote(name)}"),
                                headers={"Authorization": f"Bearer {LES_KEY}"}, timeout=5)
        return response.json()["subscription_count"]

    assert (subscribers(KATE), subscribers(KELVIN_KATE)) == (2, 2)
    kelvin_tab.unsubscribe(KATE)
    assert subscribers(KATE) == 2
    kelvin.close()
    kelvin_tab.close()
    wait_until(lambda: subscribers(KELVIN_KATE) == 0, message="the Kelvin twin's channel empty")
    assert subscribers(KATE) == 2
    redis_publish(redis_server, KATE, "private.note", {"again": True})
    kate.wait_for(lambda e: e == ("private.note", KATE, {"again": True}), message="Kate's event after the twin left")
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 3. Forged and replayed Pusher signatures


def test_forged_and_replayed_pusher_signatures_are_refused(herald_factory, redis_server, tmp_path, pusher_clients):
    herald = start(herald_factory, redis_server, tmp_path)
    http = api(herald)
    ledger = "private-" + unique("ledger")
    room = "presence-" + unique("room")
    barrier = unique("sig-barrier")
    owner_data = json.dumps({"user_id": "1", "user_info": {"name": "Owner"}})

    owner = pusher_clients.pysher(herald)
    owner.subscribe(ledger)  # pysher signs with the app secret
    owner.subscribe(barrier)
    owner_auth = SIGNER.authenticate(room, owner.socket_id, json.loads(owner_data))
    owner.pusher.connection.send_event("pusher:subscribe", {"channel": room, **owner_auth})
    assert members_of(owner.wait_event("pusher_internal:subscription_succeeded", room))["ids"] == ["1"]

    thief = pusher_clients.raw(herald)
    thief.subscribe(barrier)
    sid = thief.socket_id
    good_ledger = SIGNER.authenticate(ledger, sid)["auth"]
    other_app = pusher.Pusher(app_id="9999", key="other-app-key", secret="other-app-secret")
    forged_ledger = {
        "another socket's (replayed)": SIGNER.authenticate(ledger, owner.socket_id)["auth"],
        "another channel's": SIGNER.authenticate("private-" + unique("mine"), sid)["auth"],
        "the encrypted twin's": hand_signed("private-encrypted-" + ledger[len("private-"):], sid),
        "the presence form's": hand_signed(ledger, sid, channel_data=owner_data),
        "wrong secret": pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret="not-the-secret").authenticate(ledger, sid)["auth"],
        "another app's key and secret": other_app.authenticate(ledger, sid)["auth"],
        "truncated hex": good_ledger[:-1],
        "uppercase hex": APP_KEY + ":" + hex_of(good_ledger).upper(),
        "hex plus a digit": good_ledger + "0",
        "hex of zeros": APP_KEY + ":" + "0" * 64,
        "key only": APP_KEY + ":",
        "the key": APP_KEY,
        "empty": "",
        "the socket id signed with a space": hand_signed(ledger, sid + " "),
    }
    for auth in forged_ledger.values():
        thief.subscribe(ledger, auth=auth)

    signed_for_2 = json.dumps({"user_id": "2", "user_info": {"name": "Eve"}})
    eve_auth = hand_signed(room, sid, channel_data=signed_for_2)
    forged_room = {
        "user id spoofed after signing": (eve_auth, signed_for_2.replace('"2"', '"1"')),
        "user_info changed after signing": (eve_auth, signed_for_2.replace("Eve", "Owner")),
        "channel_data re-serialized": (eve_auth, json.dumps(json.loads(signed_for_2), separators=(",", ":"))),
        "the owner's auth and channel_data replayed": (owner_auth["auth"], owner_auth["channel_data"]),
        "a private signature": (hand_signed(room, sid), signed_for_2),
        "no channel_data": (eve_auth, None),
        "signed for another room": (hand_signed(room + "x", sid, channel_data=signed_for_2), signed_for_2),
    }
    for auth, channel_data in forged_room.values():
        thief.subscribe(room, auth=auth, channel_data=channel_data)
    thief.ping()
    refusals = [(f["channel"], f["data"]) for f in thief.named("pusher:subscription_error")]
    unauthorized = {"type": "AuthError", "error": "The connection is unauthorized.", "status": 401}
    assert refusals == [(ledger, unauthorized)] * len(forged_ledger) + [(room, unauthorized)] * len(forged_room)
    assert [f["channel"] for f in thief.named("pusher_internal:subscription_succeeded")] == [barrier]
    herald.wait_for_log("Pusher subscription refused: bad signature", count=len(forged_ledger) + len(forged_room))

    # Events on both channels from the HTTP API and Redis: the owner gets them, the thief not.
    http.trigger(ledger, "ledger.http", {"n": 1})
    redis_publish(redis_server, ledger, "ledger.redis", {"n": 2})
    http.trigger(room, "room.http", {"n": 3})
    for event, channel in (("ledger.http", ledger), ("ledger.redis", ledger), ("room.http", room)):
        owner.wait_event(event, channel)
    assert sorted(f["event"] for f in owner.received() if f.get("event", "").startswith(("ledger.", "room."))) == [
        "ledger.http", "ledger.redis", "room.http"]
    http.trigger(barrier, "barrier", {})
    thief.wait_event("barrier", barrier)
    assert [f for f in thief.received() if f.get("channel") in (ledger, room) and f["event"] != "pusher:subscription_error"] == []
    # Nobody joined the room: no member_added, and the API lists the owner alone.
    assert owner.named("pusher_internal:member_added") == []
    assert http.users_info(room) == {"users": [{"id": "1"}]}

    # Positive controls on the same connection: a signature for this socket and this channel
    # admits it, and only then do events arrive. Reverb-style forms carrying the right HMAC are
    # accepted too (PROTOCOLS.md D.6: herald checks `<key>:<hex>` whole and the part after the
    # first `:`); the HMAC, which needs the secret, is what admits, not the key before it.
    thief.subscribe(ledger, auth=good_ledger)
    thief.wait_event("pusher_internal:subscription_succeeded", ledger)
    thief.subscribe(room, auth=eve_auth, channel_data=signed_for_2)
    assert members_of(thief.wait_event("pusher_internal:subscription_succeeded", room))["ids"] in (["1", "2"], ["2", "1"])
    assert json.loads(owner.wait_event("pusher_internal:member_added", room)["data"]) == {
        "user_id": "2", "user_info": {"name": "Eve"}}
    for form in (hex_of(good_ledger), "other-app-key:" + hex_of(good_ledger)):
        extra = "private-" + unique("reverb-form")
        thief.subscribe(extra, auth=form.replace(hex_of(good_ledger), hex_of(SIGNER.authenticate(extra, sid)["auth"])))
        thief.wait_event("pusher_internal:subscription_succeeded", extra)
    http.trigger(ledger, "ledger.http", {"n": 4})
    assert json.loads(thief.wait_event("ledger.http", ledger)["data"]) == {"n": 4}
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 4. Client events from outside the membership


def test_client_events_from_outside_the_membership_reach_no_one(herald_factory, redis_server, laravel_app, tmp_path,
                                                                 connect, pusher_clients):
    herald = start(herald_factory, redis_server, tmp_path, *auth_args(laravel_app.url))
    chat, room, encrypted = "private-chat.iso", "presence-chat.iso", "private-encrypted-chat.iso"
    pusher_only = "private-" + unique("pusher-only")

    # Members: Socket.IO users 7 and 8 (Laravel's chat rule), a pysher member (signed), and on
    # the presence room a Socket.IO user 7 and two Pusher users with Laravel's channel_data.
    sio_a, sio_b = connect(herald, "websocket"), connect(herald, "polling")
    for client, user in ((sio_a, 7), (sio_b, 8)):
        client.subscribe(chat, sync=False, headers=bearer(user))
        herald.wait_admitted(client, chat)
    sio_room = connect(herald, "websocket")
    sio_room.subscribe(room, sync=False, headers=bearer(7))
    sio_room.wait_event("presence:subscribed")
    pusher_member = pusher_clients.pysher(herald)
    pusher_member.subscribe(chat)
    pusher_member.subscribe(pusher_only)
    pusher_member.subscribe(encrypted)
    room_one, room_two = pusher_clients.raw(herald), pusher_clients.raw(herald)
    for client, user in ((room_one, 1), (room_two, 2)):
        data = laravel_channel_data(laravel_app, room, client.socket_id, user)
        signed = SIGNER.authenticate(room, client.socket_id, data)
        client.subscribe(room, auth=signed["auth"], channel_data=signed["channel_data"])
        client.wait_event("pusher_internal:subscription_succeeded", room)

    # Socket.IO senders outside: refused by Laravel (no user), still authorizing (the whisper
    # follows the subscribe at once, before Laravel can answer), never subscribed; and a member
    # of the chat whispering to channels it is not in (Pusher-only, encrypted, the room).
    anonymous = connect(herald, "websocket")
    anonymous.subscribe(chat, sync=False)
    assert anonymous.wait_refusal(chat) == ("subscription_error", chat, 403)
    anonymous.whisper(chat, "client-sneak", {"from": "anonymous"})
    early = connect(herald, "websocket")
    early.subscribe(chat, sync=False, headers=bearer(9))
    early.whisper(chat, "client-sneak", {"from": "early"})
    herald.wait_admitted(early, chat)
    stranger = connect(herald, "polling")
    stranger.whisper(room, "client-sneak", {"from": "stranger"})
    sio_a.whisper(pusher_only, "client-sneak", {"from": "sio_a to pusher-only"})
    sio_a.whisper(encrypted, "client-sneak", {"from": "sio_a to encrypted"})
    sio_a.whisper(room, "client-sneak", {"from": "sio_a to the room"})
    for client in (anonymous, early, stranger, sio_a):
        client.sync()
    herald.wait_for_log("client event refused: the sender is not subscribed", count=4)
    herald.wait_for_log("client event refused: only private and presence channels take client events")

    # Pusher senders outside: never subscribed, refused by signature, and members sending to
    # the encrypted channel, with names that are not client events, and a forged user_id.
    outsider = pusher_clients.raw(herald)
    outsider.send({"event": "client-sneak", "channel": chat, "data": {"from": "outsider"}})
    refused = pusher_clients.raw(herald)
    refused.subscribe(chat, auth=SIGNER.authenticate(chat, outsider.socket_id)["auth"])
    refused.wait_event("pusher:subscription_error", chat)
    refused.send({"event": "client-sneak", "channel": chat, "data": {"from": "refused"}})
    outsider.ping()
    refused.ping()
    for client in (outsider, refused):
        [error] = client.named("pusher:error")
        assert error["channel"] == chat and error["data"]["code"] == 4301 and "not subscribed" in error["data"]["message"]
    pusher_member.pusher.connection.send_event("client-sneak", {"from": "pusher to encrypted"}, encrypted)
    for event in ("order.shipped", "pusher_internal:member_added", "pusher_internal:subscription_succeeded", "pusher:error"):
        room_one.send({"event": event, "channel": room, "data": json.dumps({"user_id": "666", "user_info": {}})})
    room_one.send({"event": "client-hello", "channel": room, "data": {"from": "one"}, "user_id": "666"})
    room_one.ping()
    assert room_one.named("pusher:error") == []  # not client events: ignored, no error
    encrypted_error = pusher_member.wait_for(lambda f: f.get("event") == "pusher:error", message="4301 on encrypted")
    assert encrypted_error["data"]["code"] == 4301 and encrypted_error["channel"] == encrypted

    # The forged user_id was replaced by the sender's own; the Socket.IO member hears the data.
    hello = room_two.wait_event("client-hello", room)
    assert (hello["data"], hello["user_id"]) == ({"from": "one"}, "1")
    assert sio_room.wait_event("client-hello") == ("client-hello", room, {"from": "one"})

    # Positive controls, last: member whispers from both protocols reach the others.
    early.whisper(chat, "client-legit", {"from": "early"})
    pusher_member.pusher.connection.send_event("client-legit", {"from": "pysher"}, chat)
    for client in (sio_a, sio_b):
        client.wait_for(lambda e: e == ("client-legit", chat, {"from": "pysher"}), message="the pysher whisper")
        client.wait_for(lambda e: e == ("client-legit", chat, {"from": "early"}), message="the early member's whisper")
    pusher_member.wait_for(lambda f: f.get("event") == "client-legit" and f["data"] == {"from": "early"},
                           message="early's whisper")
    room_one.send({"event": "client-legit", "channel": room, "data": {"from": "one"}})
    room_two.wait_for(lambda f: f.get("event") == "client-legit", message="room_one's whisper")
    sio_room.wait_for(lambda e: e[0] == "client-legit", message="room_one's whisper on Socket.IO")

    sneaks = lambda client: [e for e in client.received() if e[0] == "client-sneak"]
    for client in (sio_a, sio_b, sio_room, anonymous, early, stranger):
        assert sneaks(client) == [], client.received()
    for client in (pusher_member, room_one, room_two):
        assert [f for f in client.received() if f.get("event") in ("client-sneak", "order.shipped")] == []
        assert [json.loads(f["data"]) for f in client.named("pusher_internal:member_added")
                if json.loads(f["data"])["user_id"] == "666"] == []
    assert sorted(u["id"] for u in api(herald).users_info(room)["users"]) == ["1", "2", "7"]
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 5. Oversized and deeply nested JSON


def closing_frames(ws) -> tuple[list, int | str]:
    """Reads what herald sends until the connection ends: (text frames, close code or "reset").

    An oversized frame is refused as soon as its header is read; herald writes close 1009,
    half-closes and discards the rest of the frame, so the close frame arrives (it used to
    close with the rest unread, and the kernel's TCP reset usually beat the close frame; see
    test_oversized_websocket_frames_close_with_1009_every_time)."""
    frames = []
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return frames, int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            frames.append(data)
    except (ConnectionResetError, BrokenPipeError, websocket.WebSocketConnectionClosedException):
        return frames, "reset"


def signed_post(herald, path: str, body: bytes) -> requests.Response:
    """A correctly signed Pusher HTTP API request with `body` as is (the library would re-encode it)."""
    query = {"auth_key": APP_KEY, "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
             "body_md5": hashlib.md5(body).hexdigest()}
    query["auth_signature"] = sign(APP_SECRET, "\n".join(["POST", path, "&".join(f"{k}={query[k]}" for k in sorted(query))]))
    return requests.post(herald.url(path + "?" + urlencode(query)), data=body,
                         headers={"Content-Type": "application/json"}, timeout=10)


def test_oversized_and_deeply_nested_json_is_refused_and_bystanders_carry_on(herald_factory, redis_server, tmp_path,
                                                                            connect, pusher_clients):
    herald = start(herald_factory, redis_server, tmp_path, "--max-payload", "65536")
    public = unique("bystanders")
    chat = "private-" + unique("chat")
    sio_ws, sio_poll = connect(herald, "websocket"), connect(herald, "polling")
    for client in (sio_ws, sio_poll):
        client.subscribe(public)
    pysher_client = pusher_clients.pysher(herald)
    pysher_client.subscribe(public)
    pysher_client.subscribe(chat)
    ticks = iter(range(1, 100))

    def bystanders_still_served() -> None:
        n = next(ticks)
        redis_publish(redis_server, public, "tick", {"n": n})
        for client in (sio_ws, sio_poll):
            client.wait_for(lambda e: e == ("tick", public, {"n": n}), message=f"tick {n}")
        pysher_client.wait_for(lambda f: f.get("event") == "tick" and json.loads(f["data"]) == {"n": n}, message=f"tick {n}")
        assert not sio_ws.disconnected.is_set() and not sio_poll.disconnected.is_set() and not pysher_client.closed.is_set()

    # Socket.IO over WebSocket: a 10,000-deep packet is a parse error (close packet, close);
    # a frame over --max-payload is closed with 1009.
    ws = websocket.create_connection(herald.ws_url(f"{EIO}&transport=websocket"), timeout=5)
    assert ws.recv().startswith("0{")
    ws.send("40")
    assert ws.recv().startswith("40{")
    ws.send('42["subscribe",' + DEEP + "]")
    frames, code = closing_frames(ws)
    assert (frames, code) == ([b"1"], 1000)
    herald.wait_for_log("bad Socket.IO packet; closing the session")
    assert "nesting deeper than 256" in [l for l in herald.log.splitlines() if "bad Socket.IO packet" in l][-1]
    bystanders_still_served()

    ws = websocket.create_connection(herald.ws_url(f"{EIO}&transport=websocket"), timeout=5)
    ws.recv()
    ws.send("40")
    ws.recv()
    ws.send('42["client event",{"channel":"' + chat + '","event":"client-big","data":"' + "x" * 70_000 + '"}]')
    frames, code = closing_frames(ws)
    assert (frames, code) == ([], 1009)
    herald.wait_for_log("herald.close_code=1009")
    bystanders_still_served()

    # Socket.IO over polling: the same deep packet closes the session (the POST is taken, the
    # session is gone), a body over the limit is 413 (test_bad_input.py).
    opened = requests.get(herald.url(f"{EIO}&transport=polling"), timeout=5)
    sid = json.loads(opened.text[1:])["sid"]
    poll = herald.url(f"{EIO}&transport=polling&sid={sid}")
    assert requests.post(poll, data="40", timeout=5).text == "ok"
    assert requests.get(poll, timeout=5).text.startswith("40")
    assert requests.post(poll, data='42["client event",' + DEEP + "]", timeout=5).text == "ok"
    gone = requests.get(poll, timeout=5)
    assert (gone.status_code, gone.json()) == (400, {"code": 1, "message": "Session ID unknown"})
    herald.wait_for_log("bad Socket.IO packet; closing the session", count=2)
    bystanders_still_served()

    # Pusher: a deep frame is pusher:error (code null) and the connection stays; a client event
    # over 10 KB is 4301 and reaches no one; a presence member over 2 KB is 4100; a frame over
    # --max-payload is closed with 1009.
    raw = pusher_clients.raw(herald)
    raw.subscribe(chat, auth=SIGNER.authenticate(chat, raw.socket_id)["auth"])
    raw.wait_event("pusher_internal:subscription_succeeded", chat)
    raw.send_text('{"event":"client-deep","channel":"' + chat + '","data":' + DEEP + "}")
    raw.send_text('{"event":"pusher:subscribe","data":' + DEEP + "}")
    raw.send({"event": "client-big", "channel": chat, "data": {"x": "y" * 11_000}})
    room = "presence-" + unique("big-members")
    big_member = json.dumps({"user_id": "1", "user_info": {"bio": "z" * 3000}})
    raw.subscribe(room, auth=hand_signed(room, raw.socket_id, channel_data=big_member), channel_data=big_member)
    raw.ping()
    errors = raw.named("pusher:error")
    assert [e["data"]["code"] for e in errors] == [None, None, 4301]
    assert all("nesting deeper than 256" in e["data"]["message"] for e in errors[:2])
    assert "payload over 10240 bytes" in errors[2]["data"]["message"]
    limit = raw.wait_event("pusher:subscription_error", room)["data"]
    assert (limit["status"], limit["type"]) == (4100, "LimitReached")
    assert not raw.closed.is_set()
    raw.send({"event": "client-small", "channel": chat, "data": {"ok": True}})  # positive control
    assert pysher_client.wait_event("client-small", chat)["data"] == {"ok": True}
    assert pysher_client.named("client-deep") == [] and pysher_client.named("client-big") == []

    pusher_ws = websocket.create_connection(herald.ws_url(f"/app/{APP_KEY}?protocol=7&client=js&version=8.4.0"), timeout=5)
    assert json.loads(pusher_ws.recv())["event"] == "pusher:connection_established"
    pusher_ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": public, "auth": "x" * 70_000}}))
    frames, code = closing_frames(pusher_ws)
    assert (frames, code) == ([], 1009)
    herald.wait_for_log("herald.close_code=1009", count=2)
    bystanders_still_served()

    # The Pusher HTTP API: deep bodies 400 with Pusher's JSON error; more than 100 channels
    # 400; a body over --max-payload 413 (before it is read, so before its signature).
    events, batch = f"/apps/{APP_ID}/events", f"/apps/{APP_ID}/batch_events"
    deep_event = b'{"name":"deep","channel":"' + public.encode() + b'","data":' + DEEP.encode() + b"}"
    wide_event = json.dumps({"name": "wide", "channels": [f"c{i}" for i in range(101)], "data": "{}"}).encode()
    for path, body in ((events, deep_event), (batch, b'{"batch":' + DEEP.encode() + b"}"), (events, wide_event)):
        refused = signed_post(herald, path, body)
        assert refused.status_code == 400 and refused.headers["Content-Type"].startswith("application/json"), refused.text
        assert refused.json()["code"] == 400 and refused.json()["error"]
    assert "nesting deeper than 256" in signed_post(herald, events, deep_event).json()["error"]
    huge = signed_post(herald, events, json.dumps({"name": "huge", "channel": public, "data": "h" * 70_000}).encode())
    assert huge.status_code == 413 and huge.headers["Content-Type"].startswith("application/json")
    bystanders_still_served()

    # laravel-echo-server's API: a 200-deep `data` is fine and relayed as is; deeper is 400;
    # more than 100 channels 400; a body over --max-payload 413.
    nested = json.loads("[" * 200 + "]" * 200)
    les_publish(herald, public, "nested", nested)
    assert sio_ws.wait_event("nested") == ("nested", public, nested)
    les = lambda body: requests.post(herald.url(f"/apps/{LES_APP}/events"), data=body, timeout=10,
                                     headers={"Authorization": f"Bearer {LES_KEY}", "Content-Type": "application/json"})
    deep = les(b'{"channel":"' + public.encode() + b'","name":"deep","data":' + DEEP.encode() + b"}")
    assert deep.status_code == 400 and "nesting deeper than 256" in deep.json()["error"]
    wide = les(json.dumps({"channels": [f"c{i}" for i in range(101)], "name": "wide", "data": {}}).encode())
    assert (wide.status_code, wide.json()) == (400, {"error": "at most 100 channels per event"})
    assert les(json.dumps({"channel": public, "name": "huge", "data": "h" * 70_000}).encode()).status_code == 413
    assert herald.log.count("request body over the limit") == 2
    bystanders_still_served()

    # Redis: a deep Laravel payload is dropped with a warning; a 1 MB one (Laravel may send
    # that, laravel-echo-server relayed it) reaches every subscriber intact.
    redis_server.client().publish(LARAVEL_PREFIX + public, '{"event":"deep","data":' + DEEP + ',"socket":null}')
    large = {"blob": "b" * 1_000_000}
    redis_publish(redis_server, public, "large", large)
    herald.wait_for_log("dropped a Redis message that is not a Laravel broadcast")
    assert "nesting deeper than 256" in [l for l in herald.log.splitlines() if "not a Laravel broadcast" in l][-1]
    assert sio_ws.wait_event("large") == ("large", public, large)
    assert sio_poll.wait_event("large") == ("large", public, large)
    assert json.loads(pysher_client.wait_event("large", public)["data"]) == large
    bystanders_still_served()
    for client in (sio_ws, sio_poll):
        assert [e[0] for e in client.received()] == ["tick"] * 5 + ["nested", "tick", "large", "tick"], client.received()
    relayed = [f["event"] for f in pysher_client.received() if f.get("channel") == public and not f["event"].startswith("pusher")]
    assert relayed == [
        "tick"] * 5 + ["nested", "tick", "large", "tick"]
    herald.assert_healthy()


# --------------------------------------------------------------------------------------------
# 6. Regressions at the boundaries: close codes that arrive, errors in each API's form, whisper
#    size across protocols, both Unicode twins on one socket


def close_of(ws) -> tuple[list, int, str]:
    """Reads until herald's close frame: (frames before it, close code, reason). A TCP reset
    fails the test, and so does a connection herald leaves open: after its close frame it
    half-closes, so the next read is the end of the stream."""
    frames = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)  # answers the close frame with one
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            assert ws.sock.recv(1) == b"", "herald's close frame was not followed by the end of the stream"
            return frames, int.from_bytes(data[:2], "big"), data[2:].decode()
        frames.append(data)


def test_oversized_websocket_frames_close_with_1009_every_time(herald_factory, redis_server, tmp_path, connect,
                                                               pusher_clients):
    """A frame (or fragmented message) over --max-payload is refused as soon as its header is
    read. Herald used to close the socket with the rest of it unread, so the kernel reset the
    connection and the client saw a reset instead of the 1009 close frame. Now herald sends
    the close frame, half-closes and discards the rest until the client closes (at most 2 s):
    the 1009 and its reason arrive on every run, over Socket.IO and Pusher connections alike
    (1009 for Pusher too: protocol 7 has no code for it; Soketi and Reverb close with 1009)."""
    herald = start(herald_factory, redis_server, tmp_path, "--max-payload", "65536")
    public = unique("oversized-bystanders")
    bystander = connect(herald, "websocket")
    bystander.subscribe(public)
    pysher_bystander = pusher_clients.pysher(herald)
    pysher_bystander.subscribe(public)

    def socket_io():
        ws = websocket.create_connection(herald.ws_url(f"{EIO}&transport=websocket"), timeout=5)
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith("40{")
        return ws

    def pusher_protocol():
        ws = websocket.create_connection(herald.ws_url(f"/app/{APP_KEY}?protocol=7&client=js&version=8.4.0"), timeout=5)
        assert json.loads(ws.recv())["event"] == "pusher:connection_established"
        return ws

    def one_frame(size: int):
        return lambda ws: ws.send("x" * size)

    def fragmented(ws) -> None:  # every frame under the limit, the message over it
        ws.send_frame(websocket.ABNF.create_frame("a" * 30_000, websocket.ABNF.OPCODE_TEXT, 0))
        ws.send_frame(websocket.ABNF.create_frame("b" * 30_000, websocket.ABNF.OPCODE_CONT, 0))
        ws.send_frame(websocket.ABNF.create_frame("c" * 30_000, websocket.ABNF.OPCODE_CONT, 1))

    runs = 0
    for open_connection in (socket_io, pusher_protocol):
        for send in (one_frame(65_537), one_frame(200_000), one_frame(2_000_000), fragmented):
            for _ in range(4):
                ws = open_connection()
                send(ws)
                assert close_of(ws) == ([], 1009, "Message over 65536 bytes")
                ws.close()
                runs += 1
    herald.wait_for_log("herald.close_code=1009", count=runs)
    # Any other bad frame (here a ping longer than 125 bytes) is 1002, delivered the same way.
    for open_connection in (socket_io, pusher_protocol):
        ws = open_connection()
        ws.send_frame(websocket.ABNF.create_frame("p" * 200, websocket.ABNF.OPCODE_PING))
        assert close_of(ws) == ([], 1002, "Invalid frame")
        ws.close()
    herald.wait_for_log("herald.close_code=1002", count=2)

    redis_publish(redis_server, public, "tick", {"n": 1})
    assert bystander.wait_event("tick") == ("tick", public, {"n": 1})
    assert json.loads(pysher_bystander.wait_event("tick", public)["data"]) == {"n": 1}
    assert not bystander.disconnected.is_set() and not pysher_bystander.closed.is_set()
    herald.assert_healthy()


def test_bodies_over_the_limit_get_413_in_each_apis_error_form(herald_factory, redis_server, tmp_path):
    """A body over --max-payload is 413 before it is read; the answer used to be Engine.IO's
    `{"code":3,…}` on every path. Now each API answers in its own form: Pusher's HTTP API
    `{"error","code":413}` (what the `pusher` library reports), laravel-echo-server's
    `{"error"}`, Engine.IO keeps its own. The rest of the body is read and discarded before the
    connection closes, so the 413 arrives even for a body far larger than the socket buffers."""
    herald = start(herald_factory, redis_server, tmp_path, "--max-payload", "4096")
    channel = unique("too-large")
    message = "Request body over the limit of 4096 bytes"

    # Pusher's API through its official library (data under its own 10 KB check, so it is sent).
    http = api(herald)
    pad = {"pad": "x" * 5000}
    for call in (lambda: http.trigger(channel, "big", pad),
                 lambda: http.trigger_batch([{"channel": channel, "name": "big", "data": pad}])):
        with pytest.raises(pusher.errors.PusherBadStatus) as refused:
            call()
        status, _, body = str(refused.value).partition(": ")
        assert (status, json.loads(body)) == ("413", {"error": message, "code": 413})

    # laravel-echo-server's API, with its bearer key.
    les = lambda body: requests.post(herald.url(f"/apps/{LES_APP}/events"), data=body, timeout=10,
                                     headers={"Authorization": f"Bearer {LES_KEY}", "Content-Type": "application/json"})
    refused = les(json.dumps({"channel": channel, "name": "big", "data": pad}).encode())
    assert (refused.status_code, refused.json()) == (413, {"error": message})
    assert refused.headers["Content-Type"].startswith("application/json") and refused.headers["X-Request-Id"]

    # Engine.IO polling keeps Engine.IO's.
    opened = requests.get(herald.url(f"{EIO}&transport=polling"), timeout=5)
    sid = json.loads(opened.text[1:])["sid"]
    polled = requests.post(herald.url(f"{EIO}&transport=polling&sid={sid}"), data="4" + "x" * 5000, timeout=5)
    assert (polled.status_code, polled.json()) == (413, {"code": 3, "message": "Payload too large"})

    # Bodies far over the socket buffers, several times: the 413, never a reset.
    for size in (1_000_000, 4_000_000, 4_000_000, 8_000_000):
        refused = les(b"x" * size)
        assert (refused.status_code, refused.json()) == (413, {"error": message})
        refused = signed_post(herald, f"/apps/{APP_ID}/events", b"y" * size)
        assert (refused.status_code, refused.json()) == (413, {"error": message, "code": 413})
    herald.assert_healthy()


def test_socketio_whispers_respect_the_pusher_apps_client_event_limit(herald_factory, redis_server, laravel_app,
                                                                      tmp_path, connect, pusher_clients):
    """The shared channels are also the first Pusher app's, so a Socket.IO whisper can reach
    Pusher members, and a Pusher client must never receive a client event over its app's limit
    (Pusher: 10 KB; its own connections get 4301 beyond it). Herald refuses a bigger Socket.IO
    whisper for everyone (logged, nothing on the wire, like its other whisper refusals) rather
    than deliver it to Socket.IO members only: one rule a client of either protocol can rely
    on. Before, a 20 KB whisper reached the pysher member. Without Pusher apps there is no
    such limit (laravel-echo-server had none)."""
    herald = start(herald_factory, redis_server, tmp_path, *auth_args(laravel_app.url))
    chat = "private-chat.bigwhisper"
    sender, listener = connect(herald, "websocket"), connect(herald, "polling")
    for client, user in ((sender, 7), (listener, 8)):
        client.subscribe(chat, sync=False, headers=bearer(user))
        herald.wait_admitted(client, chat)
    pusher_member = pusher_clients.pysher(herald)
    pusher_member.subscribe(chat)

    at_limit, over = {"pad": "a" * 10_230}, {"pad": "b" * 10_231}  # `{"pad":"…"}`: 10,240 and 10,241 bytes
    sender.whisper(chat, "client-over", over)
    sender.whisper(chat, "client-huge", {"pad": "c" * 20_000})
    sender.whisper(chat, "client-at-limit", at_limit)
    assert listener.wait_event("client-at-limit") == ("client-at-limit", chat, at_limit)
    assert pusher_member.wait_event("client-at-limit", chat)["data"] == at_limit
    # Whispers are routed in the order sent, so the refused ones would have arrived first.
    assert [e[0] for e in listener.received() if e[0].startswith("client-")] == ["client-at-limit"]
    assert [f["event"] for f in pusher_member.received() if f["event"].startswith("client-")] == ["client-at-limit"]
    herald.wait_for_log("client event refused: payload over the first Pusher app's limit", count=2)
    herald.assert_healthy()

    # The app's configured limit is the one that counts.
    config = tmp_path / "herald-small-events.yaml"
    config.write_text(f'pusher:\n  apps:\n    - {{ id: "{APP_ID}", key: "{APP_KEY}", secret: "{APP_SECRET}", max_event_payload: 1000 }}\n')
    small = herald_factory("--config", str(config), *auth_args(laravel_app.url))
    sender, listener = connect(small, "websocket"), connect(small, "websocket")
    for client, user in ((sender, 7), (listener, 8)):
        client.subscribe(chat, sync=False, headers=bearer(user))
        small.wait_admitted(client, chat)
    sender.whisper(chat, "client-over", {"pad": "d" * 991})  # 1,001 bytes
    sender.whisper(chat, "client-at-limit", {"pad": "e" * 990})
    assert listener.wait_event("client-at-limit") == ("client-at-limit", chat, {"pad": "e" * 990})
    assert listener.named("client-over") == []
    small.wait_for_log("client event refused: payload over the first Pusher app's limit")

    # No Pusher app: a 20 KB whisper is relayed, as laravel-echo-server did.
    plain = herald_factory(*auth_args(laravel_app.url))
    sender, listener = connect(plain, "websocket"), connect(plain, "polling")
    for client, user in ((sender, 7), (listener, 8)):
        client.subscribe(chat, sync=False, headers=bearer(user))
        plain.wait_admitted(client, chat)
    sender.whisper(chat, "client-huge", {"pad": "f" * 20_000})
    assert listener.wait_event("client-huge") == ("client-huge", chat, {"pad": "f" * 20_000})
    for instance in (small, plain):
        instance.assert_healthy()


def test_one_socket_on_both_unicode_twins_has_two_subscriptions(herald_factory, redis_server, exact_auth, tmp_path,
                                                               connect):
    """A socket on `private-user.Kate` that subscribes to `private-user.\u212aate` (the app
    grants it both) is a member of both. The session kept its channels in a Swift
    `Set<String>`, which took the second for a repeat of the first: no subscription, no answer
    at all. Each twin (private, presence, public) now delivers its own events under its own name,
    and leaving one keeps the other, presence membership included."""
    herald = start(herald_factory, redis_server, tmp_path, *auth_args(exact_auth.url))
    barrier = unique("twins-barrier")
    client = connect(herald, "websocket")
    client.subscribe(barrier)
    news, kelvin_news = "news.Kate", "news.\u212aate"
    tokens = {KATE: "kate", KELVIN_KATE: "kelvin", JOSE_NFC: "jose-nfc", JOSE_NFD: "jose-nfd"}
    for name, token in tokens.items():
        client.subscribe(name, sync=False, headers={"Authorization": f"Bearer {token}"})
        herald.wait_admitted(client, name)
    for name in (news, kelvin_news):
        client.subscribe(name, sync=False)
        herald.wait_admitted(client, name)
    client.subscribe(TEAM, sync=False, headers={"Authorization": "Bearer kate"})
    assert client.wait_for(lambda e: e[0] == "presence:subscribed" and e[1] == TEAM)[2][0]["user_id"] == "kate"
    client.subscribe(KELVIN_TEAM, sync=False, headers={"Authorization": "Bearer kelvin"})
    joined = client.wait_for(lambda e: e[0] == "presence:subscribed" and e[1] == KELVIN_TEAM)
    assert [m["user_id"] for m in joined[2]] == ["kelvin"]
    names = [*tokens, news, kelvin_news, TEAM, KELVIN_TEAM]

    def publish_to_all(round_: int) -> None:
        for name in names:
            redis_publish(redis_server, name, "twin.note", {"for": name, "round": round_})
        sio_barrier([client], redis_server, barrier, f"round {round_}")

    publish_to_all(1)
    notes = lambda round_: in_any_order([e for e in client.named("twin.note") if e[2]["round"] == round_])
    assert notes(1) == in_any_order([("twin.note", name, {"for": name, "round": 1}) for name in names])

    # Leaving one twin keeps the other.
    leaving = [KELVIN_KATE, JOSE_NFD, kelvin_news, KELVIN_TEAM]
    for name in leaving:
        client.unsubscribe(name)
    publish_to_all(2)
    staying = [name for name in names if name not in leaving]
    assert notes(2) == in_any_order([("twin.note", name, {"for": name, "round": 2}) for name in staying])

    def members(name: str) -> list:
        answer = requests.get(herald.url(f"/apps/{LES_APP}/channels/{urllib.parse.quote(name)}/users"),
                              headers={"Authorization": f"Bearer {LES_KEY}"}, timeout=5)
        assert answer.status_code == 200, answer.text
        return [user["id"] for user in answer.json()["users"]]

    assert (members(TEAM), members(KELVIN_TEAM)) == (["kate"], [])
    client.unsubscribe(TEAM)
    assert members(TEAM) == []  # no member left behind by the twin's leave
    herald.assert_healthy()


def test_server_to_user_channels_compare_user_ids_by_bytes(herald_factory, redis_server, tmp_path, pusher_clients):
    """`#server-to-user-<id>` is only for the connection signed in as `<id>`. The check compared
    user ids with Swift's `String ==`, so a user the app signed in as "\u212aate" (KELVIN SIGN)
    was admitted to `#server-to-user-Kate` and received Kate's events."""
    from test_pusher_signin import UNAUTHORIZED, signed_in
    from test_pusher_signin import hand_signed as signed_user_data  # the `pusher` library takes ASCII ids only

    herald = start(herald_factory, redis_server, tmp_path)
    kate = signed_in(pusher_clients, herald, "Kate", subscribe_own=True)
    kelvin = pusher_clients.raw(herald)
    kelvin.send({"event": "pusher:signin", "data": signed_user_data(kelvin.socket_id, json.dumps({"id": "\u212aate"}))})
    kelvin.wait_event("pusher:signin_success")
    kelvin.subscribe("#server-to-user-Kate")
    assert kelvin.wait_event("pusher:subscription_error", "#server-to-user-Kate")["data"] == UNAUTHORIZED
    api(herald).send_to_user("Kate", "note", {"for": "Kate"})
    assert json.loads(kate.wait_event("note", "#server-to-user-Kate")["data"]) == {"for": "Kate"}
    kelvin.ping()
    assert kelvin.named("note") == [] and kelvin.named("pusher_internal:subscription_succeeded") == []
    herald.assert_healthy()
