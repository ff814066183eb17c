"""Laravel -> Redis -> herald -> python-socketio, over every transport, with and without a key prefix."""

import pytest

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wechat_data


@pytest.mark.parametrize("mode", ["polling", "websocket", "upgrade"])
@pytest.mark.parametrize("prefix", [LARAVEL_PREFIX, ""], ids=["laravel_database_", "no-prefix"])
def test_laravel_event_reaches_subscriber(herald_factory, connect, laravel, redis_server, mode, prefix):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", prefix)
    client = connect(herald, mode)
    if mode == "upgrade":
        assert client.sio.transport() == "websocket"
    else:
        assert client.sio.transport() == mode
    channel = unique("wechat-login")
    client.subscribe(channel)

    # Laravel's default prefix when it is the relay's; REDIS_PREFIX="" on both sides otherwise.
    laravel.publish(redis_server, channel, token="tok-1", prefix=None if prefix == LARAVEL_PREFIX else "")

    event = client.wait_event(WECHAT_EVENT)
    assert event == (WECHAT_EVENT, channel, {"token": "tok-1", "channel": channel, "socket": None})
    assert client.received() == [event]
    herald.assert_healthy()


def test_to_others_and_unsubscribe(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX)
    a = connect(herald, "websocket")
    b = connect(herald, "polling")
    assert a.sid and b.sid and a.sid != b.sid
    # Echo's X-Socket-ID is the CONNECT sid, not the Engine.IO sid python-socketio calls `sid`.
    assert a.sid != a.engine_sid
    channel = unique("orders-feed")
    a.subscribe(channel)
    b.subscribe(channel)

    # broadcast(...)->toOthers() from a request with X-Socket-ID: <A's Socket.IO sid>.
    laravel.publish(redis_server, channel, token="others", socket_id=a.sid)
    expected_b = (WECHAT_EVENT, channel, wechat_data(channel, "others", a.sid))
    assert b.wait_event(WECHAT_EVENT) == expected_b

    # A sentinel everyone gets, published after: when A has it, A would have had the first one.
    laravel.publish(redis_server, channel, token="everyone")
    sentinel = (WECHAT_EVENT, channel, wechat_data(channel, "everyone"))
    a.wait_for(lambda e: e == sentinel, message="sentinel at A")
    b.wait_for(lambda e: e == sentinel, message="sentinel at B")
    assert a.received() == [sentinel]
    assert b.received() == [expected_b, sentinel]

    # Unsubscribe stops delivery to A only.
    control = unique("control")
    a.subscribe(control)
    a.unsubscribe(channel)
    laravel.publish(redis_server, channel, token="after-unsubscribe")
    after = (WECHAT_EVENT, channel, wechat_data(channel, "after-unsubscribe"))
    b.wait_for(lambda e: e == after, message="post-unsubscribe event at B")
    laravel.publish(redis_server, control, token="control")
    a.wait_for(lambda e: e[1:2] == (control,), message="control event at A")
    assert a.received() == [sentinel, (WECHAT_EVENT, control, wechat_data(control, "control"))]
    assert b.received() == [expected_b, sentinel, after]
    herald.assert_healthy()
