"""TLS on Herald's one port (Socket.IO WebSocket and polling, the HTTP endpoints) with a
certificate made at test time, and a certificate reload on SIGHUP that drops no connection."""

from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import ssl
import subprocess

import pytest
import requests

from conftest import LARAVEL_PREFIX, WECHAT_EVENT, unique, wait_until, wechat_data


def make_certificate(directory, name: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (openssl, from Debian)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is required (Debian package openssl)"
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


def served_fingerprint(port: int) -> str:
    """SHA-256 of the certificate a fresh TLS handshake with herald presents."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def fingerprint(path: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(open(path).read())).hexdigest()


@pytest.mark.parametrize("mode", ["websocket", "polling"])
def test_socketio_over_tls_and_reload_on_sighup(herald_factory, connect, laravel, redis_server, tmp_path, mode):
    cert_a, key_a = make_certificate(tmp_path, "first")
    cert_b, key_b = make_certificate(tmp_path, "second")
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    # The CA the clients trust holds both certificates, so they verify before and after the reload.
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(open(cert_a).read() + open(cert_b).read())
    shutil.copy(cert_a, live_cert)
    shutil.copy(key_a, live_key)

    herald = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX,
                            "--tls-cert", str(live_cert), "--tls-key", str(live_key))
    herald.ca_file = str(bundle)
    assert herald.url().startswith("https://")
    assert served_fingerprint(herald.port) == fingerprint(cert_a)
    # Plain HTTP on the TLS port gets no HTTP answer.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{herald.port}/health", timeout=2)

    client = connect(herald, mode)
    channel = unique("tls")
    client.subscribe(channel)
    laravel.publish(redis_server, channel, token="before")
    assert client.wait_event(WECHAT_EVENT) == (WECHAT_EVENT, channel, wechat_data(channel, "before"))

    # Renew: new files in place, SIGHUP. New handshakes get the new certificate ...
    shutil.copy(cert_b, live_cert)
    shutil.copy(key_b, live_key)
    herald.process.send_signal(signal.SIGHUP)
    wait_until(lambda: served_fingerprint(herald.port) == fingerprint(cert_b), message="the reloaded certificate")
    herald.wait_for_log("TLS certificate reloaded")

    # ... and the connection made before the reload is still there and still receives.
    laravel.publish(redis_server, channel, token="after")
    client.wait_for(lambda e: e == (WECHAT_EVENT, channel, wechat_data(channel, "after")), message="event after reload")
    assert client.sio.connected
    late = connect(herald, mode)
    late.subscribe(channel)
    laravel.publish(redis_server, channel, token="both")
    late.wait_for(lambda e: e == (WECHAT_EVENT, channel, wechat_data(channel, "both")), message="event at the new client")
    client.wait_for(lambda e: e == (WECHAT_EVENT, channel, wechat_data(channel, "both")), message="event at the old client")

    # A broken renewal keeps the running certificate and says which file is wrong.
    live_key.write_text("not a key\n")
    herald.process.send_signal(signal.SIGHUP)
    herald.wait_for_log("TLS certificate not reloaded")
    assert served_fingerprint(herald.port) == fingerprint(cert_b)
    herald.assert_healthy()


def test_bad_tls_files_stop_startup_with_a_clear_error(tmp_path):
    from conftest import HERALD_BINARY
    missing = tmp_path / "missing.pem"
    result = subprocess.run([str(HERALD_BINARY), "serve", "--port", "0", "--tls-cert", str(missing), "--tls-key", str(missing)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert f"TLS: cannot use {missing}: not a readable PEM certificate chain" in result.stderr + result.stdout
