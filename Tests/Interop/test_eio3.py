"""socket.io 2.x clients (python-socketio 4.6, Engine.IO 3) on the same port, as Echo with
socket.io-client 2 used them with laravel-echo-server."""

import pytest

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, auth_args, bearer, member, unique, wechat_data

ORDER_EVENT = "App\\Events\\OrderShipped"
MODES = ["polling", "websocket", "upgrade"]


def start(herald_factory, redis_server, laravel_app):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, *auth_args(laravel_app.url))


@pytest.mark.parametrize("mode", MODES)
def test_eio3_public_private_and_to_others(mode, herald_factory, connect_sio4, laravel, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    client = connect_sio4(herald, mode)
    herald.wait_for_log(f"herald.eio=3 herald.sid={client.engine_sid}")
    channel = unique("wechat-login")
    client.subscribe(channel)
    laravel.publish(redis_server, channel, token=f"eio3-{mode}")
    assert client.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, f"eio3-{mode}"))

    # Private channel authorized by Laravel.
    client.subscribe("private-orders.1", sync=False, headers=bearer(1))
    herald.wait_admitted(client, "private-orders.1")
    laravel.publish(redis_server, "1", event="OrderShipped")
    assert client.wait_event(ORDER_EVENT) == (ORDER_EVENT, "private-orders.1", {"order": {"id": 1}, "socket": None})
    client.subscribe("private-orders.2", sync=False, headers=bearer(1))
    assert client.wait_refusal("private-orders.2") == ("subscription_error", "private-orders.2", 403)

    # toOthers(): X-Socket-ID is the Engine.IO sid for socket.io 2; that socket is skipped,
    # another subscriber is not.
    other = connect_sio4(herald, "websocket")
    other.subscribe(channel)
    laravel.publish(redis_server, channel, token="not-to-me", socket_id=client.sid)
    expected = (WECHAT_EVENT, channel, wechat_data(channel, "not-to-me", client.sid))
    assert other.wait_event(WECHAT_EVENT) == expected
    laravel.publish(redis_server, channel, token="after")
    after = (WECHAT_EVENT, channel, wechat_data(channel, "after"))
    client.wait_for(lambda e: e == after, message="the event after the toOthers one")
    assert client.named(WECHAT_EVENT) == [(WECHAT_EVENT, channel, wechat_data(channel, f"eio3-{mode}")), after]
    assert client.named(ORDER_EVENT) == [(ORDER_EVENT, "private-orders.1", {"order": {"id": 1}, "socket": None})]
    herald.assert_healthy()


def test_eio3_and_eio4_clients_share_a_presence_channel(herald_factory, connect, connect_sio4, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    channel = "presence-chat.10"
    old = connect_sio4(herald, "upgrade", headers={"Cookie": "herald_user=7"})
    old_sid = old.sid
    old.subscribe(channel, sync=False)
    assert old.wait_event("presence:subscribed") == ("presence:subscribed", channel, [dict(member(7), socketId=old_sid)])

    new = connect(herald, "websocket")
    new_sid = new.sid
    new.subscribe(channel, sync=False, headers=bearer(8))
    assert new.wait_event("presence:subscribed") == (
        "presence:subscribed", channel, [dict(member(8), socketId=new_sid), dict(member(7), socketId=old_sid)])
    assert old.wait_event("presence:joining") == ("presence:joining", channel, dict(member(8), socketId=new_sid))

    # Whispers cross protocol versions too.
    old.whisper(channel, "client-typing", {"from": "eio3"})
    assert new.wait_event("client-typing") == ("client-typing", channel, {"from": "eio3"})
    new.whisper(channel, "client-typing", {"from": "eio4"})
    assert old.wait_event("client-typing") == ("client-typing", channel, {"from": "eio4"})

    new.close()
    assert old.wait_event("presence:leaving") == ("presence:leaving", channel, member(8))

    third = connect(herald, "polling")
    third.subscribe(channel, sync=False, headers=bearer(9))
    third.wait_event("presence:subscribed")
    old.wait_for(lambda e: e[0] == "presence:joining" and e[2]["user_id"] == 9, message="9 joining")
    # The socket.io 2 tab dies without a goodbye (process killed: the WebSocket just closes).
    old.process.kill()
    old.process.wait(5)
    assert third.wait_event("presence:leaving") == ("presence:leaving", channel, member(7))
    herald.wait_for_log(f"herald.reason=transport close herald.sid={old_sid}")
    third.sync()
    assert third.named("presence:leaving") == [("presence:leaving", channel, member(7))]
    herald.assert_healthy()
