"""SIGTERM: clean exit, clients see the disconnect."""

import pytest

from conftest import unique


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_sigterm_exits_zero_and_disconnects_clients(herald_factory, connect, redis_server, mode):
    herald = herald_factory("--redis", redis_server.url)
    client = connect(herald, mode)
    client.subscribe(unique("wechat-login"))
    assert not client.disconnected.is_set()

    assert herald.terminate() == 0  # within 5 s, or TimeoutExpired fails the test
    assert client.disconnected.wait(5), "client did not see the disconnect"
    assert "Fatal error" not in herald.log
    assert "Herald stopped" in herald.log
