"""What Herald does when the auth endpoint misbehaves, and with bad or too many subscriptions."""

import json
import time

from conftest import LARAVEL_PREFIX, auth_args, bearer, member, unique


def publish_raw(redis_server, channel: str, event: str, data) -> None:
    payload = json.dumps({"event": event, "data": data, "socket": None})
    redis_server.client().publish(LARAVEL_PREFIX + channel, payload)


def start(herald_factory, redis_server, url, *extra):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, *auth_args(url), *extra)


def test_hanging_auth_times_out_with_status_0_and_blocks_nobody(herald_factory, connect, fake_auth, redis_server):
    herald = start(herald_factory, redis_server, fake_auth.url, "--auth-timeout", "500")
    waiting = connect(herald, "websocket")
    other = connect(herald, "polling")
    public = unique("unaffected")
    other.subscribe(public)

    began = time.monotonic()
    waiting.subscribe("private-hang.1", sync=False, headers=bearer(1))
    # While that call hangs, the same and other connections are served at once.
    other.subscribe("private-error500.1", sync=False)
    assert other.wait_refusal("private-error500.1", timeout=0.4) == ("subscription_error", "private-error500.1", 500)
    publish_raw(redis_server, public, "Ping", {"n": 1})
    assert other.wait_event("Ping", timeout=0.4) == ("Ping", public, {"n": 1})
    waiting.subscribe(public, sync=False)
    publish_raw(redis_server, public, "Ping", {"n": 2})
    assert waiting.wait_event("Ping", timeout=0.4) == ("Ping", public, {"n": 2})
    assert waiting.named("subscription_error") == []

    assert waiting.wait_refusal("private-hang.1", timeout=2) == ("subscription_error", "private-hang.1", 0)
    elapsed = time.monotonic() - began
    assert 0.4 <= elapsed <= 1.2, elapsed
    herald.wait_for_log("subscription refused by the app")
    waiting.sync()
    other.sync()
    assert not waiting.disconnected.is_set() and not other.disconnected.is_set()
    herald.assert_healthy()


def test_auth_error_statuses_and_what_herald_sends(herald_factory, connect, fake_auth, redis_server):
    herald = start(herald_factory, redis_server, fake_auth.url)
    client = connect(herald, "websocket", headers={"Cookie": "session=abc"})
    client.subscribe("private-error500.2", sync=False, headers={"Authorization": "Bearer user-3", "X-CSRF-TOKEN": "tok"})
    assert client.wait_refusal("private-error500.2") == ("subscription_error", "private-error500.2", 500)
    client.subscribe("private-redirect.3", sync=False)
    assert client.wait_refusal("private-redirect.3") == ("subscription_error", "private-redirect.3", 302)

    # A 200 that is not JSON admits to a private channel (laravel-echo-server did too) ...
    client.subscribe("private-nonjson.4", sync=False)
    herald.wait_admitted(client, "private-nonjson.4")
    publish_raw(redis_server, "private-nonjson.4", "Secret", {"x": 1})
    assert client.wait_event("Secret") == ("Secret", "private-nonjson.4", {"x": 1})
    # ... and to a presence channel, without a member (nothing to list).
    client.subscribe("presence-nonjson.5", sync=False)
    herald.wait_admitted(client, "presence-nonjson.5")
    herald.wait_for_log("presence auth answer has no channel_data.user_id; joined without presence")
    client.sync()
    assert client.named("presence:subscribed") == []
    assert client.named("subscription_error") == [("subscription_error", "private-error500.2", 500),
                                                  ("subscription_error", "private-redirect.3", 302)]

    # The redirect was not followed; the calls looked like laravel-echo-server's.
    assert [r for r in fake_auth.requests if r[0] == "GET"] == []
    first = next(r for r in fake_auth.requests if "error500.2" in r[3])
    method, path, headers, body = first
    assert (method, path, body) == ("POST", "/broadcasting/auth", "channel_name=private-error500.2")
    assert headers["Authorization"] == "Bearer user-3"
    assert headers["X-CSRF-TOKEN"] == "tok"
    assert headers["X-Requested-With"] == "XMLHttpRequest"
    assert headers["Cookie"] == "session=abc"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    # Public channels never cause an auth call.
    client.subscribe(unique("public-no-auth"))
    assert all("public-no-auth" not in r[3] for r in fake_auth.requests)
    herald.assert_healthy()


def test_malformed_subscribe_payloads_are_refused_and_the_session_lives(herald_factory, connect, fake_auth, redis_server):
    herald = start(herald_factory, redis_server, fake_auth.url)
    client = connect(herald, "upgrade")
    client.emit("subscribe", {"auth": {"headers": {}}})                       # no channel
    client.emit("subscribe", {"channel": 42, "auth": {"headers": {}}})        # not a string
    client.emit("subscribe", {"channel": "private-" + "x" * 10_240})         # 10 KB name
    client.emit("subscribe", {"channel": ["a"], "auth": "nope"})             # list
    client.emit("subscribe", None)
    client.emit("subscribe", {"channel": "ok-channel", "auth": {"headers": "not an object"}})
    client.sync()
    herald.wait_for_log("subscribe refused: no valid channel name", count=5)
    assert [r for r in fake_auth.requests if "x" * 300 in r[3]] == []
    assert client.named("subscription_error") == []
    publish_raw(redis_server, "ok-channel", "Still", {"alive": True})
    assert client.wait_event("Still") == ("Still", "ok-channel", {"alive": True})
    assert not client.disconnected.is_set()
    herald.assert_healthy()


def test_channel_limit_per_connection(herald_factory, connect, fake_auth, redis_server):
    herald = start(herald_factory, redis_server, fake_auth.url)
    client = connect(herald, "websocket")
    bystander = connect(herald, "websocket")
    base = unique("many")
    names = [f"{base}-{i}" for i in range(150)]
    for name in names:
        client.emit("subscribe", {"channel": name, "auth": {"headers": {}}})
    refused = [("subscription_error", name, 429) for name in names[100:]]
    client.wait_for(lambda e: e == refused[-1], message="the 150th subscription's 429")
    assert client.named("subscription_error") == refused
    wait_log = lambda: len([line for line in herald.log.splitlines()
                            if line.rstrip().endswith(" subscribed") and base in line])
    assert wait_log() == 100
    publish_raw(redis_server, names[99], "In", {"i": 99})
    publish_raw(redis_server, names[100], "Out", {"i": 100})
    publish_raw(redis_server, names[0], "In", {"i": 0})
    client.wait_for(lambda e: e == ("In", names[0], {"i": 0}), message="event on the first channel")
    assert client.named("In") == [("In", names[99], {"i": 99}), ("In", names[0], {"i": 0})]
    assert client.named("Out") == []
    # Leaving one frees a slot; the limit is per connection.
    client.emit("unsubscribe", {"channel": names[0], "auth": {"headers": {}}})
    client.emit("subscribe", {"channel": names[100], "auth": {"headers": {}}})
    client.emit("subscribe", {"channel": names[101], "auth": {"headers": {}}})
    client.wait_for(lambda e: e == ("subscription_error", names[101], 429), message="429 for a second retry")
    publish_raw(redis_server, names[100], "Out", {"i": 100})
    client.wait_for(lambda e: e == ("Out", names[100], {"i": 100}), message="event on the freed slot")
    bystander.subscribe(names[120])
    publish_raw(redis_server, names[120], "Other", {"ok": True})
    assert bystander.wait_event("Other") == ("Other", names[120], {"ok": True})
    herald.assert_healthy()


def test_max_channels_flag(herald_factory, connect, fake_auth, redis_server):
    herald = start(herald_factory, redis_server, fake_auth.url, "--max-channels", "3")
    client = connect(herald, "polling")
    base = unique("few")
    for i in range(3):
        client.subscribe(f"{base}-{i}", sync=False)
    client.subscribe("private-error500.9", sync=False)  # counts against the limit too
    assert client.wait_refusal("private-error500.9") == ("subscription_error", "private-error500.9", 429)
    assert not any("error500.9" in r[3] for r in fake_auth.requests)
    herald.assert_healthy()


def test_leaving_while_the_app_answers(herald_factory, connect, fake_auth, redis_server):
    """An unsubscribe or a disconnect during the auth call: no error, no admission, no ghost member."""
    herald = start(herald_factory, redis_server, fake_auth.url, "--auth-timeout", "500")
    channel = "presence-slow.1"
    watcher = connect(herald, "websocket")
    watcher.subscribe(channel, sync=False, headers=bearer(8))
    watcher.wait_event("presence:subscribed")

    quitter = connect(herald, "websocket")
    quitter.subscribe(channel, sync=False, headers=bearer(7))
    quitter.close()
    changer = connect(herald, "polling")
    changer.subscribe(channel, sync=False, headers=bearer(6))
    changer.emit("unsubscribe", {"channel": channel, "auth": {"headers": {}}})
    changer.subscribe("private-hang.2", sync=False)
    changer.emit("unsubscribe", {"channel": "private-hang.2", "auth": {"headers": {}}})
    time.sleep(0.8)  # both slow answers (0.3 s) and the hang's timeout (0.5 s) are over
    changer.sync()
    assert changer.received() == []
    assert changer.named("presence:subscribed") == []
    assert not any(line.rstrip().endswith(" subscribed") and changer.engine_sid in line for line in herald.log.splitlines())

    late = connect(herald, "websocket")
    late.subscribe(channel, sync=False, headers=bearer(9))
    late_sid = late.sid
    subscribed = late.wait_event("presence:subscribed")
    assert [m["user_id"] for m in subscribed[2]] == [9, 8]
    watcher.sync()
    assert watcher.named("presence:joining") == [("presence:joining", channel, dict(member(9), socketId=late_sid))]
    assert watcher.named("presence:leaving") == []
    herald.assert_healthy()
