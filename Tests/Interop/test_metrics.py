"""GET /metrics on the real binary: the Prometheus text exposition, whose values move with real
traffic (a python-socketio client, a Laravel event through Redis, an auth call)."""

import requests

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, auth_args, unique, wait_until, wechat_data

V4 = 'herald_connections{protocol="socketio_v4"}'


def scrape(herald) -> dict[str, float]:
    """The samples of `/metrics`, by name with labels."""
    response = requests.get(herald.url("/metrics"), timeout=3)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4"
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_move_with_a_socketio_client_and_a_laravel_event(herald_factory, connect, laravel, own_redis, fake_auth):
    herald = herald_factory("--redis", own_redis.url, "--key-prefix", LARAVEL_PREFIX, *auth_args(fake_auth.url))
    text = requests.get(herald.url("/metrics"), timeout=3).text
    for family, kind in [("herald_connections", "gauge"), ("herald_subscriptions", "gauge"),
                         ("herald_events_in_total", "counter"), ("herald_deliveries_total", "counter"),
                         ("herald_events_dropped_total", "counter"), ("herald_auth_requests_total", "counter"),
                         ("herald_auth_duration_seconds", "histogram"), ("herald_redis_reconnects_total", "counter"),
                         ("herald_plugin_errors_total", "counter")]:
        assert f"# TYPE {family} {kind}" in text
    before = scrape(herald)
    assert before[V4] == 0
    assert before['herald_connections{protocol="socketio_v3"}'] == 0
    assert before['herald_connections{protocol="pusher"}'] == 0
    assert before["herald_subscriptions"] == 0
    assert before['herald_events_in_total{source="redis"}'] == 0
    assert before["herald_deliveries_total"] == 0

    client = connect(herald, "websocket")
    channel = unique("metrics")
    client.subscribe(channel)
    # `subscribe` waits on a barrier that is itself a refused private subscription (403).
    synced = scrape(herald)
    assert synced['herald_auth_requests_total{result="refused"}'] == 1
    assert synced["herald_subscriptions"] == 1
    laravel.publish(own_redis, channel, token="m-1")
    assert client.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "m-1"))
    # The fake auth app answers 403 for this channel: one more refused auth call.
    client.subscribe("private-metrics.1", sync=False)
    assert client.wait_refusal("private-metrics.1") == ("subscription_error", "private-metrics.1", 403)
    # Something in Redis that is not a Laravel broadcast is dropped and counted.
    own_redis.client().publish(LARAVEL_PREFIX + channel, "not json")
    wait_until(lambda: scrape(herald)['herald_events_dropped_total{reason="not_laravel"}'] == 1,
               message="not_laravel drop counted")

    after = scrape(herald)
    assert after[V4] == 1
    assert after['herald_connections{protocol="socketio_v3"}'] == 0
    assert after["herald_subscriptions"] == 1
    assert after['herald_events_in_total{source="redis"}'] == 1
    assert after['herald_events_in_total{source="http"}'] == 0
    assert after["herald_deliveries_total"] == 1
    assert after['herald_events_dropped_total{reason="router_queue_full"}'] == 0
    assert after['herald_events_dropped_total{reason="redis_buffer_full"}'] == 0
    assert after['herald_auth_requests_total{result="refused"}'] == 2
    assert after['herald_auth_requests_total{result="allowed"}'] == 0
    assert after['herald_auth_requests_total{result="error"}'] == 0
    assert after["herald_auth_duration_seconds_count"] == 2
    assert after["herald_redis_reconnects_total"] == 0

    # The client leaves: the gauges go back to zero, the counters stay.
    client.close()
    wait_until(lambda: scrape(herald)[V4] == 0, message="connection gauge back to 0")
    gone = scrape(herald)
    assert gone["herald_subscriptions"] == 0
    assert gone['herald_events_in_total{source="redis"}'] == 1
    herald.assert_healthy()
