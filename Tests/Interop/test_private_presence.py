"""Private and presence channels authorized by the real Laravel app's /broadcasting/auth."""

import json
import time

from conftest import LARAVEL_PREFIX, auth_args, bearer, free_port, member, unique

ORDER_EVENT = "App\\Events\\OrderShipped"


def order_data(order_id: int, socket_id: str | None = None) -> dict:
    return {"order": {"id": order_id}, "socket": socket_id}


def start(herald_factory, redis_server, laravel_app, *extra):
    return herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, *auth_args(laravel_app.url), *extra)


def test_private_channel_admits_only_the_owner(herald_factory, connect, laravel, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    owner = connect(herald, "websocket")
    stranger = connect(herald, "polling")
    anonymous = connect(herald, "upgrade")
    owner.subscribe("private-orders.1", sync=False, headers=bearer(1))
    stranger.subscribe("private-orders.1", sync=False, headers=bearer(2))
    anonymous.subscribe("private-orders.1", sync=False)
    assert stranger.wait_refusal("private-orders.1") == ("subscription_error", "private-orders.1", 403)
    assert anonymous.wait_refusal("private-orders.1") == ("subscription_error", "private-orders.1", 403)
    herald.wait_admitted(owner, "private-orders.1")

    laravel.publish(redis_server, "1", event="OrderShipped")
    assert owner.wait_event(ORDER_EVENT) == (ORDER_EVENT, "private-orders.1", order_data(1))
    # The refused ones never get it: a later public event proves the private one was handled.
    control = unique("orders-public-control")
    for client in (stranger, anonymous):
        client.subscribe(control)
    laravel.publish(redis_server, control, token="after")
    for client in (stranger, anonymous):
        client.wait_event("App\\Events\\WechatLoginedEvent")
        assert client.named(ORDER_EVENT) == []
        assert client.named("subscription_error") == [("subscription_error", "private-orders.1", 403)]
    assert owner.named(ORDER_EVENT) == [(ORDER_EVENT, "private-orders.1", order_data(1))]
    assert owner.named("subscription_error") == []
    herald.assert_healthy()


def test_private_channel_with_the_handshake_cookie(herald_factory, connect, laravel, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    by_cookie = connect(herald, "polling", headers={"Cookie": "herald_user=1"})
    wrong_cookie = connect(herald, "websocket", headers={"Cookie": "herald_user=2"})
    # A cookie in auth.headers wins over the handshake's.
    overridden = connect(herald, "websocket", headers={"Cookie": "herald_user=2"})
    by_cookie.subscribe("private-orders.1", sync=False)
    wrong_cookie.subscribe("private-orders.1", sync=False)
    overridden.subscribe("private-orders.1", sync=False, headers={"Cookie": "herald_user=1"})
    assert wrong_cookie.wait_refusal("private-orders.1") == ("subscription_error", "private-orders.1", 403)
    herald.wait_admitted(by_cookie, "private-orders.1")
    herald.wait_admitted(overridden, "private-orders.1")
    laravel.publish(redis_server, "orders.1", event="OrderShipped")
    assert by_cookie.wait_event(ORDER_EVENT) == (ORDER_EVENT, "private-orders.1", order_data(1))
    assert overridden.wait_event(ORDER_EVENT) == (ORDER_EVENT, "private-orders.1", order_data(1))
    wrong_cookie.sync()
    assert wrong_cookie.named(ORDER_EVENT) == []
    herald.assert_healthy()


def presence(client, name):
    return [e for e in client.received() if e[0] == name]


def test_presence_members_joining_and_leaving(herald_factory, connect, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    channel = "presence-chat.1"
    seven = connect(herald, "websocket")
    seven_sid = seven.sid
    seven.subscribe(channel, sync=False, headers=bearer(7))
    assert seven.wait_event("presence:subscribed") == (
        "presence:subscribed", channel, [dict(member(7), socketId=seven_sid)])

    eight = connect(herald, "polling")
    eight_sid = eight.sid
    eight.subscribe(channel, sync=False, headers=bearer(8))
    assert eight.wait_event("presence:subscribed") == (
        "presence:subscribed", channel, [dict(member(8), socketId=eight_sid), dict(member(7), socketId=seven_sid)])
    assert seven.wait_event("presence:joining") == ("presence:joining", channel, dict(member(8), socketId=eight_sid))

    # User 7 opens a second tab: nobody hears a join, and the list stays one entry per user.
    seven_tab2 = connect(herald, "upgrade", headers={"Cookie": "herald_user=7"})
    tab2_sid = seven_tab2.sid
    seven_tab2.subscribe(channel, sync=False)
    subscribed = seven_tab2.wait_event("presence:subscribed")
    assert subscribed[0:2] == ("presence:subscribed", channel)
    assert subscribed[2] == [dict(member(7), socketId=tab2_sid), dict(member(8), socketId=eight_sid)]
    seven.sync(); eight.sync()
    assert presence(eight, "presence:joining") == []
    assert presence(seven, "presence:joining") == [("presence:joining", channel, dict(member(8), socketId=eight_sid))]
    assert presence(seven_tab2, "presence:joining") == []

    # Closing one of 7's tabs: no leaving.
    seven.close()
    eight.sync(); seven_tab2.sync()
    time.sleep(0.2)
    eight.sync()
    assert presence(eight, "presence:leaving") == []
    assert presence(seven_tab2, "presence:leaving") == []

    # Closing the last one: 8 hears 7 leave (no socketId), once.
    seven_tab2.close()
    assert eight.wait_event("presence:leaving") == ("presence:leaving", channel, member(7))
    eight.sync()
    assert presence(eight, "presence:leaving") == [("presence:leaving", channel, member(7))]

    # 9 joins and unsubscribes: 8 hears joining then leaving.
    nine = connect(herald, "websocket")
    nine_sid = nine.sid
    nine.subscribe(channel, sync=False, headers=bearer(9))
    assert nine.wait_event("presence:subscribed") == (
        "presence:subscribed", channel, [dict(member(9), socketId=nine_sid), dict(member(8), socketId=eight_sid)])
    assert eight.wait_event("presence:joining") == ("presence:joining", channel, dict(member(9), socketId=nine_sid))
    nine.unsubscribe(channel)
    eight.wait_for(lambda e: e == ("presence:leaving", channel, member(9)), message="9 leaving")
    assert presence(nine, "presence:leaving") == []
    assert presence(eight, "presence:leaving") == [("presence:leaving", channel, member(7)),
                                                   ("presence:leaving", channel, member(9))]
    assert presence(eight, "presence:subscribed") == [
        ("presence:subscribed", channel, [dict(member(8), socketId=eight_sid), dict(member(7), socketId=seven_sid)])]
    herald.assert_healthy()


def test_presence_unsubscribe_of_one_tab_keeps_the_user(herald_factory, connect, laravel_app, redis_server):
    herald = start(herald_factory, redis_server, laravel_app)
    channel = "presence-chat.2"
    watcher = connect(herald, "websocket")
    watcher.subscribe(channel, sync=False, headers=bearer(8))
    watcher.wait_event("presence:subscribed")
    tab1 = connect(herald, "websocket")
    tab1_sid = tab1.sid
    tab2 = connect(herald, "websocket")
    tab1.subscribe(channel, sync=False, headers=bearer(7))
    tab1.wait_event("presence:subscribed")
    tab2.subscribe(channel, sync=False, headers=bearer(7))
    tab2.wait_event("presence:subscribed")
    assert watcher.wait_event("presence:joining") == ("presence:joining", channel, dict(member(7), socketId=tab1_sid))
    tab1.unsubscribe(channel)
    watcher.sync()
    assert presence(watcher, "presence:leaving") == []
    tab2.unsubscribe(channel)
    assert watcher.wait_event("presence:leaving") == ("presence:leaving", channel, member(7))
    watcher.sync()
    assert presence(watcher, "presence:joining") == [("presence:joining", channel, dict(member(7), socketId=tab1_sid))]
    herald.assert_healthy()


def test_laravel_echo_server_json_config_and_referer_host(herald_factory, connect, laravel, laravel_app, redis_server, tmp_path):
    """A laravel-echo-server.json drives auth; with several authHosts the handshake Referer
    picks one (else the first, here an unreachable one: status 0)."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "laravel-echo-server.json"
    config.write_text(json.dumps({
        "authHost": [dead, laravel_app.url],
        "authEndpoint": "/broadcasting/auth",
        "clients": [],
        "database": "redis",
        "databaseConfig": {"redis": {"host": "127.0.0.1", "port": str(redis_server.port), "keyPrefix": LARAVEL_PREFIX},
                           "sqlite": {"databasePath": "/database/laravel-echo-server.sqlite"}},
        "devMode": False,
        "host": None,
        "port": "6001",
        "protocol": "http",
        "socketio": {},
        "sslCertPath": "", "sslKeyPath": "", "sslCertChainPath": "", "sslPassphrase": "",
        "subscribers": {"http": False, "redis": True},
        "apiOriginAllow": {"allowCors": False, "allowOrigin": "", "allowMethods": "", "allowHeaders": ""},
    }))
    herald = herald_factory("--config", str(config), "--auth-timeout", "2000")
    via_referer = connect(herald, "websocket", headers={"Referer": laravel_app.url + "/orders/1"})
    no_referer = connect(herald, "polling")
    via_referer.subscribe("private-orders.1", sync=False, headers=bearer(1))
    no_referer.subscribe("private-orders.1", sync=False, headers=bearer(1))
    assert no_referer.wait_refusal("private-orders.1") == ("subscription_error", "private-orders.1", 0)
    herald.wait_admitted(via_referer, "private-orders.1")
    laravel.publish(redis_server, "1", event="OrderShipped")
    assert via_referer.wait_event(ORDER_EVENT) == (ORDER_EVENT, "private-orders.1", order_data(1))
    herald.assert_healthy()
