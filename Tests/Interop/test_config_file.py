"""herald.yaml: the built binary's `init`, `check-config` and `serve --config`, with bundled plugins
configured in the file rewriting real Laravel events, and Pusher apps from the file."""

from __future__ import annotations

import json
import os
import subprocess

import pusher
import pytest
import yaml

from pusher.errors import PusherBadAuth, PusherBadStatus

from conftest import HERALD_BINARY, LARAVEL_PREFIX, WECHAT_EVENT, unique, wechat_data
from test_pusher import PysherClient


def run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "PUSHER_", "REVERB_"))}
    environment.update(env or {})
    return subprocess.run([str(HERALD_BINARY), *args], capture_output=True, text=True, timeout=30, env=environment, cwd=cwd)


def test_init_writes_a_starter_that_check_config_accepts(tmp_path):
    target = tmp_path / "herald.yaml"
    result = run("init", "--output", str(target))
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert text.startswith("# Herald configuration (YAML)")
    parsed = yaml.safe_load(text)
    assert parsed["redis"]["key_prefix"] == "laravel_database_"

    checked = run("check-config", str(target))
    assert checked.returncode == 0, checked.stderr
    assert f"{target}: OK" in checked.stdout

    # Not overwritten without --force.
    again = run("init", "--output", str(target))
    assert again.returncode != 0
    assert "exists; pass --force" in again.stderr


def test_init_reads_a_laravel_env(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "APP_NAME=\"My Shop\"\n"
        "APP_URL=https://shop.test\n"
        "BROADCAST_DRIVER=reverb\n"
        "REDIS_HOST=10.0.0.5\n"
        "REDIS_PASSWORD=\"p@ss word\"\n"
        "REDIS_PORT=6380\n"
        "# a comment\n"
        "REVERB_APP_ID=42\n"
        "REVERB_APP_KEY=k42 # trailing comment\n"
        "REVERB_APP_SECRET=${REVERB_APP_KEY}-secret\n"
    )
    target = tmp_path / "herald.yaml"
    result = run("init", "--env", str(env_file), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert "my_shop_database_" in result.stdout  # the note about the derived prefix
    parsed = yaml.safe_load(target.read_text())
    assert parsed["redis"] == {"url": "redis://:p%40ss%20word@10.0.0.5:6380/0", "key_prefix": "my_shop_database_"}
    assert parsed["auth"]["hosts"] == ["https://shop.test"]
    assert parsed["pusher"]["apps"] == [{"id": "42", "key": "k42", "secret": "k42-secret", "max_connections": 10000}]

    checked = run("check-config", str(target))
    assert checked.returncode == 0, checked.stderr
    assert "warning: Pusher app 42: its secret is shorter than 16 characters" in checked.stdout
    assert "k42-secret" not in checked.stdout  # secrets are never printed
    assert "warning: Pusher app 42: no max_connections" not in checked.stdout  # the starter sets one

    # An explicit REDIS_PREFIX wins over the APP_NAME-derived one, even when empty.
    env_file.write_text("APP_NAME=Shop\nREDIS_PREFIX=\nBROADCAST_DRIVER=redis\n")
    printed = run("init", "--env", str(env_file), "--output", "-")
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["redis"]["key_prefix"] == ""


@pytest.mark.parametrize("text, expected", [
    ("server:\n  port: 70000\n", "herald.yaml:2:9: server.port: 70000 is not in 0…65535"),
    ("server:\n  prot: 6001\n", "herald.yaml:2:3: server.prot: unknown key (did you mean 'port'?)"),
    ("plugins:\n  - use: filtre\n", "herald.yaml:2: plugins[0].use: unknown plugin 'filtre'"),
    ("plugins:\n  - use: filter\n    deny_chanels: [a]\n", "herald.yaml:2: plugins[0].deny_chanels: unknown option for plugin 'filter'"),
    ("plugins:\n  - use: rewrite\n    rules:\n      - { op: redact }\n", "herald.yaml:2: plugins[0].rules[0]: missing 'path'"),
    ("plugins:\n  - use: enrich\n    on_error: explode\n", "herald.yaml:2: plugins[0].on_error: 'explode' is not drop or pass"),
    ("plugins:\n  - use: enrich\n    time_budget: soon\n", "herald.yaml:2: plugins[0].time_budget: 'soon' is not a duration"),
])
def test_check_config_explains_errors(tmp_path, text, expected):
    target = tmp_path / "herald.yaml"
    target.write_text(text)
    result = run("check-config", "herald.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: " + expected), result.stderr
    assert "Fatal error" not in result.stderr


def test_check_config_reads_the_environment_and_laravel_echo_server_files(tmp_path):
    target = tmp_path / "herald.yaml"
    target.write_text("server:\n  port: 7001\n")
    bad = run("check-config", str(target), env={"HERALD_PORT": "not-a-port"})
    assert bad.returncode == 1
    assert "HERALD_PORT: 'not-a-port' is not a whole number" in bad.stderr

    les = tmp_path / "laravel-echo-server.json"
    les.write_text('{"authHost": "http://localhost", "port": "6001", "database": "redis", "devMode": false}')
    ok = run("check-config", str(les))
    assert ok.returncode == 0, ok.stderr
    assert "format: laravel-echo-server.json" in ok.stdout


def test_serve_refuses_a_bad_file_with_the_key_path(tmp_path):
    target = tmp_path / "herald.yaml"
    target.write_text("socket_io:\n  ping_interval: soon\n")
    result = subprocess.run([str(HERALD_BINARY), "serve", "--config", str(target)], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "socket_io.ping_interval: 'soon' is not a duration" in result.stderr


def test_plugins_from_the_file_rewrite_real_laravel_events(herald_factory, connect, laravel, redis_server, tmp_path):
    """filter + rewrite + enrich, configured in YAML only, on events Laravel's RedisBroadcaster publishes."""
    config = tmp_path / "herald.yaml"
    config.write_text(f"""
redis:
  url: {redis_server.url}
  key_prefix: {LARAVEL_PREFIX}
plugins:
  - use: filter
    deny_channels: ["internal-*"]
  - use: rewrite
    rules:
      - {{ op: rename_event, from: '{WECHAT_EVENT}', to: wechat.login }}
      - {{ op: redact, path: token }}
      - {{ op: remove, path: socket }}
  - use: enrich
    node: relay-a
    relayed_at_field: null
    time_budget: 100ms
    on_error: pass
""")
    herald = herald_factory("--config", str(config))
    client = connect(herald, "websocket")
    public, internal = unique("qr"), unique("internal-")
    client.subscribe(public)
    client.subscribe(internal)

    laravel.publish(redis_server, internal, token="secret-1")
    # With plugins, events on different channels may overtake each other: wait for the filter's
    # verdict on the internal channel itself.
    herald.wait_for_log(f"channel matches deny pattern 'internal-*'")
    laravel.publish(redis_server, public, token="secret-2")
    event = client.wait_event("wechat.login")
    assert event == ("wechat.login", public, {"token": "[redacted]", "channel": public, "node": "relay-a"})
    assert client.received() == [event]
    herald.assert_healthy()


def test_pusher_apps_from_the_file(herald_factory, redis_server, tmp_path):
    config = tmp_path / "herald.yaml"
    config.write_text(f"""
redis:
  url: {redis_server.url}
pusher:
  apps:
    - id: "5001"
      key: file-key
      secret: file-secret
      max_event_payload: 100
""")
    herald = herald_factory("--config", str(config))
    channel = unique("file-app")
    client = PysherClient(herald, key="file-key", secret="file-secret")
    client.subscribe(channel)
    api = pusher.Pusher(app_id="5001", key="file-key", secret="file-secret", host="127.0.0.1", port=herald.port, ssl=False)
    api.trigger(channel, "greeting", {"hello": "file"})
    frame = client.wait_event("greeting", channel)
    assert json.loads(frame["data"]) == {"hello": "file"}

    # The per-app limit from the file applies: 413 for a payload over 100 bytes.
    with pytest.raises(PusherBadStatus) as too_large:
        api.trigger(channel, "greeting", {"pad": "x" * 200})
    assert str(too_large.value).startswith("413")
    # A wrong secret is refused.
    wrong = pusher.Pusher(app_id="5001", key="file-key", secret="not-the-secret", host="127.0.0.1", port=herald.port, ssl=False)
    with pytest.raises(PusherBadAuth) as refused:
        wrong.trigger(channel, "greeting", {})
    assert json.loads(str(refused.value)) == {"error": "Invalid signature", "code": 401}
    herald.assert_healthy()
