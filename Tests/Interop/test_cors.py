"""CORS on the polling endpoint and the Origin allow-list."""

import requests

HANDSHAKE = "/socket.io/?EIO=4&transport=polling&t=abc"


def test_origin_is_echoed_with_credentials(herald_factory):
    herald = herald_factory()
    response = requests.get(herald.url(HANDSHAKE), headers={"Origin": "http://app.test"}, timeout=3)
    assert response.status_code == 200
    assert response.text.startswith('0{"sid":"')
    assert response.headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"

    preflight = requests.options(herald.url(HANDSHAKE), headers={
        "Origin": "http://app.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }, timeout=3)
    assert preflight.status_code == 204
    assert preflight.content == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.test"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET,POST"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    herald.assert_healthy()


def test_allowed_origins_refuses_other_origins(herald_factory):
    herald = herald_factory("--allowed-origins", "http://ok.test")
    refused = requests.get(herald.url(HANDSHAKE), headers={"Origin": "http://evil.test"}, timeout=3)
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/json")
    assert refused.json()["code"] == 4
    assert "Access-Control-Allow-Origin" not in refused.headers

    allowed = requests.get(herald.url(HANDSHAKE), headers={"Origin": "http://ok.test"}, timeout=3)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://ok.test"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    herald.assert_healthy()
