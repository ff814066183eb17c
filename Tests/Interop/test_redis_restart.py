"""Redis goes away and comes back on the same port: /ready follows, clients keep receiving."""

import requests

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wait_until, wechat_data


def ready_status(herald) -> int:
    return requests.get(herald.url("/ready"), timeout=2).status_code


def test_redis_kill_and_restart(herald_factory, connect, laravel, own_redis):
    herald = herald_factory("--redis", own_redis.url, "--key-prefix", LARAVEL_PREFIX)
    wait_until(lambda: ready_status(herald) == 200, message="/ready 200 with Redis up")
    client = connect(herald, "websocket")
    channel = unique("wechat-login")
    client.subscribe(channel)

    own_redis.kill()
    wait_until(lambda: ready_status(herald) == 503, message="/ready 503 after killing Redis")
    body = requests.get(herald.url("/ready"), timeout=2).json()
    assert body == {"status": "not ready", "reason": "Redis is not connected"}
    assert requests.get(herald.url("/health"), timeout=2).status_code == 200

    own_redis.start()  # same port, same directory
    wait_until(lambda: ready_status(herald) == 200, timeout=15, message="/ready 200 after Redis restart")
    assert requests.get(herald.url("/ready"), timeout=2).json() == {"status": "ready"}

    laravel.publish(own_redis, channel, token="after-restart")
    assert client.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "after-restart"))
    assert client.received() == [(WECHAT_EVENT, channel, wechat_data(channel, "after-restart"))]
    assert not client.disconnected.is_set()
    herald.assert_healthy()
