"""Seed mode (--emit-to-all), echo mode, and refused private channels."""

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wechat_data


def test_emit_to_all_reaches_unsubscribed_clients_but_never_private(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, "--emit-to-all")
    never_subscribed = connect(herald, "websocket")
    subscriber = connect(herald, "polling")
    channel = unique("wechat-login")
    secret = unique("orders")
    subscriber.subscribe(channel)
    never_subscribed.sync()

    laravel.publish(redis_server, channel, token="seed")
    seed = (f"{channel}:{WECHAT_EVENT}", wechat_data(channel, "seed"))
    assert never_subscribed.wait_event(f"{channel}:{WECHAT_EVENT}") == seed
    assert never_subscribed.received() == [seed]
    # A subscriber gets both the Echo form and the seed form.
    subscriber.wait_event(f"{channel}:{WECHAT_EVENT}")
    subscriber.wait_event(WECHAT_EVENT)
    assert sorted(subscriber.received(), key=len) == [seed, (WECHAT_EVENT, channel, wechat_data(channel, "seed"))]

    # A private event (Redis channel laravel_database_private-<secret>) reaches nobody, in any form.
    laravel.publish(redis_server, secret, token="private", private=True)
    laravel.publish(redis_server, channel, token="after")
    after = (f"{channel}:{WECHAT_EVENT}", wechat_data(channel, "after"))
    never_subscribed.wait_for(lambda e: e == after, message="event after the private one")
    subscriber.wait_for(lambda e: e == after, message="event after the private one")
    for client in (never_subscribed, subscriber):
        leaked = [e for e in client.received() if "private" in repr(e) or secret in repr(e)]
        assert leaked == []
    assert never_subscribed.received() == [seed, after]
    assert len(subscriber.received()) == 4
    herald.assert_healthy()


def test_echo_mode_sends_nothing_to_unsubscribed_clients(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX)
    bystander = connect(herald, "websocket")
    subscriber = connect(herald, "websocket")
    channel = unique("wechat-login")
    control = unique("control")
    subscriber.subscribe(channel)
    bystander.subscribe(control)

    laravel.publish(redis_server, channel, token="echo")
    assert subscriber.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "echo"))
    laravel.publish(redis_server, control, token="control")
    bystander.wait_event(WECHAT_EVENT)
    assert bystander.received() == [(WECHAT_EVENT, control, wechat_data(control, "control"))]
    assert subscriber.received() == [(WECHAT_EVENT, channel, wechat_data(channel, "echo"))]
    herald.assert_healthy()


def test_private_subscription_is_refused_and_gets_no_events(herald_factory, connect, laravel, redis_server):
    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, "--emit-to-all")
    client = connect(herald, "upgrade")
    client.subscribe("private-orders.1", sync=False)
    assert client.wait_event("subscription_error") == ("subscription_error", "private-orders.1", 403)

    public = unique("control")
    client.subscribe(public)
    laravel.publish(redis_server, "orders.1", token="order-1", private=True)  # -> private-orders.1
    laravel.publish(redis_server, public, token="control")
    client.wait_event(WECHAT_EVENT)
    client.wait_event(f"{public}:{WECHAT_EVENT}")
    received = client.received()
    assert received[0] == ("subscription_error", "private-orders.1", 403)
    assert sorted(received[1:], key=len) == [
        (f"{public}:{WECHAT_EVENT}", wechat_data(public, "control")),
        (WECHAT_EVENT, public, wechat_data(public, "control")),
    ]
    herald.assert_healthy()
