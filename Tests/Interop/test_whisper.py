"""Client events (Echo's whisper) on private and presence channels, with Laravel authorizing."""

import json
import time

from conftest import LARAVEL_PREFIX, auth_args, bearer, unique


def start(herald_factory, redis_server, laravel_app, *extra):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, *auth_args(laravel_app.url), *extra)


def whispers(client):
    return [e for e in client.received() if str(e[0]).startswith("client-") or e[0] == "typing"]


def join(herald, client, channel, user):
    client.subscribe(channel, sync=False, headers=bearer(user))
    if channel.startswith("presence-"):
        client.wait_event("presence:subscribed")
    else:
        herald.wait_admitted(client, channel)


def test_whisper_reaches_the_other_members_only(herald_factory, connect, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    for channel, modes in (("presence-chat.3", ("websocket", "polling", "upgrade")),
                           ("private-chat.4", ("polling", "upgrade", "websocket"))):
        sender, other, third = (connect(herald, mode) for mode in modes)
        for client, user in ((sender, 7), (other, 8), (third, 9)):
            join(herald, client, channel, user)
        sender.whisper(channel, "client-typing", {"name": "User 7", "typing": True})
        expected = ("client-typing", channel, {"name": "User 7", "typing": True})
        assert other.wait_event("client-typing") == expected
        assert third.wait_event("client-typing") == expected
        # And back: the first sender hears the others, never itself.
        other.whisper(channel, "client-typing", {"name": "User 8"})
        sender.wait_for(lambda e: e == ("client-typing", channel, {"name": "User 8"}), message="whisper from 8")
        third.wait_for(lambda e: e == ("client-typing", channel, {"name": "User 8"}), message="whisper from 8")
        sender.sync(); other.sync()
        assert whispers(sender) == [("client-typing", channel, {"name": "User 8"})]
        assert whispers(other) == [expected]
        assert whispers(third) == [expected, ("client-typing", channel, {"name": "User 8"})]
    herald.assert_healthy()


def test_whisper_refusals(herald_factory, connect, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    channel = "presence-chat.5"
    public = unique("whisper-public")
    member_a = connect(herald, "websocket")
    member_b = connect(herald, "websocket")
    outsider = connect(herald, "polling")
    join(herald, member_a, channel, 7)
    join(herald, member_b, channel, 8)
    for client in (member_a, member_b, outsider):
        client.subscribe(public)

    member_a.whisper(public, "client-typing", {"n": 1})                   # public channel
    member_a.whisper(channel, "typing", {"n": 2})                          # not client-*
    outsider.whisper(channel, "client-typing", {"n": 3})                   # not a member
    outsider.emit("client event", {"channel": channel, "data": {"n": 4}})  # no event name
    outsider.emit("client event", "not json")                             # garbage
    member_a.sync(); outsider.sync()
    herald.wait_for_log("client event refused: only private and presence channels take client events")
    herald.wait_for_log("client event refused: event names must start with client-")
    herald.wait_for_log("client event refused: the sender is not subscribed")
    herald.wait_for_log("client event refused: needs channel and event", count=2)

    # laravel-echo-server also took the payload as a JSON string.
    member_b.emit("client event", json.dumps({"channel": channel, "event": "client-string", "data": [1, "two"]}))
    assert member_a.wait_event("client-string") == ("client-string", channel, [1, "two"])

    # A valid whisper afterwards is the only one anybody gets.
    member_a.whisper(channel, "client-typing", {"n": 5})
    member_b.wait_for(lambda e: e == ("client-typing", channel, {"n": 5}), message="the valid whisper")
    member_b.sync(); outsider.sync(); member_a.sync()
    assert whispers(member_b) == [("client-typing", channel, {"n": 5})]
    assert whispers(member_a) == [("client-string", channel, [1, "two"])]
    assert whispers(outsider) == []
    herald.assert_healthy()


def test_whisper_flood_is_rate_limited(herald_factory, connect, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    channel = "private-chat.6"
    flooder = connect(herald, "websocket")
    listener = connect(herald, "polling")
    join(herald, flooder, channel, 7)
    join(herald, listener, channel, 8)

    began = time.monotonic()
    for n in range(50):
        flooder.whisper(channel, "client-flood", {"n": n})
    flooder.sync()
    burst = time.monotonic() - began
    herald.wait_for_log("client event refused: rate limit")
    time.sleep(1.1)  # the bucket refills
    flooder.whisper(channel, "client-after", {"ok": True})
    listener.wait_for(lambda e: e == ("client-after", channel, {"ok": True}), message="whisper after the flood")
    delivered = [e for e in listener.received() if e[0] == "client-flood"]
    # 10 per second with a burst of 10: the 50-packet burst lets 10 through, plus whatever
    # refilled while it was being read.
    assert 10 <= len(delivered) <= 10 + int(burst * 10) + 1, (len(delivered), burst)
    numbers = [e[2]["n"] for e in delivered]
    assert numbers[:10] == list(range(10)) and numbers == sorted(numbers), numbers
    assert not flooder.disconnected.is_set() and not listener.disconnected.is_set()
    # The flooder's connection still works both ways.
    listener.whisper(channel, "client-reply", {"ok": 1})
    flooder.wait_for(lambda e: e == ("client-reply", channel, {"ok": 1}), message="reply to the flooder")
    herald.assert_healthy()
