"""Several Herald nodes sharing one redis-server (`--cluster`): every event reaches every
subscriber exactly once, whichever node it entered and whichever node the subscriber is on.

Three (or two) real herald processes, python-socketio and pysher clients spread over them,
the real Laravel app publishing through Redis and answering `/broadcasting/auth`, the official
`pusher` HTTP library and laravel-echo-server's HTTP API publishing into one node.

Exactly once is checked by counting unique tokens after a barrier: once every client has
every token, a marker event is published through *each* node's HTTP API and awaited at every
client. Each node sends to the cluster in order, one connection, and Redis keeps a connection's
order, so anything a node sent before its marker — a duplicate included — reaches every client
before that marker. No timing assumption is made.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess

import pusher
import requests

from conftest import HERALD_BINARY, LARAVEL_PREFIX, WECHAT_EVENT, auth_args, bearer, unique, wait_until
from test_echo_server_compat import APP_ID as LES_APP_ID, APP_KEY as LES_APP_KEY, les_config, write_config
from test_pusher import (APP_ID, APP_KEY, APP_SECRET, PysherClient, api, laravel_channel_data,  # noqa: F401
                         pusher_clients, pusher_js_data)

_markers = itertools.count(1)
_rooms = itertools.count(1)
EVENT = "cluster.test"
MARKER = "cluster.marker"


def room(kind: str) -> str:
    """A `private-chat.<room>`/`presence-chat.<room>` name of its own (Laravel's `chat.{room}` rule)."""
    return f"{kind}-chat.cl{os.getpid()}x{next(_rooms)}"


def ready(node) -> None:
    """Waits until the node's Redis subscription (Laravel's pattern and the cluster channel) is up."""
    wait_until(lambda: requests.get(node.url("/ready"), timeout=2).status_code == 200, timeout=10,
               message=f"node on port {node.port} subscribed to Redis")


def start_node(herald_factory, redis_server, laravel_app, *extra):
    """A cluster node with the Pusher app, Laravel's prefix and Laravel authorizing channels."""
    node = herald_factory("--redis", redis_server.url, "--key-prefix", LARAVEL_PREFIX, "--cluster",
                          "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET,
                          *auth_args(laravel_app.url), *extra)
    ready(node)
    return node


def pusher_publish(node):
    """Publishes through `node`'s signed Pusher HTTP API (the `pusher` library)."""
    def publish(channel, event, data, socket_id=None):
        assert api(node).trigger(channel, event, data, socket_id=socket_id) == {}
    return publish


def les_publish(node):
    """Publishes through `node`'s laravel-echo-server HTTP API."""
    def publish(channel, event, data, socket_id=None):
        body = {"channel": channel, "name": event, "data": data}
        if socket_id is not None:
            body["socket_id"] = socket_id
        response = requests.post(node.url(f"/apps/{LES_APP_ID}/events"), json=body, timeout=5,
                                 headers={"Authorization": f"Bearer {LES_APP_KEY}"})
        assert response.status_code == 200 and response.json() == {"message": "ok"}, response.text
    return publish


def tokens(client, event: str) -> list:
    """The `token` of every `event` the client received, in order (either protocol)."""
    if isinstance(client, PysherClient):
        return [pusher_js_data(frame)["token"] for frame in client.named(event)]
    return [e[2]["token"] for e in client.received() if e[0] == event]


def wait_tokens(clients, event: str, expected: list) -> None:
    for client in clients:
        wait_until(lambda: set(expected) <= set(tokens(client, event)), timeout=10,
                   message=f"{event} {expected} at {client!r}")


def settle(publishers, channel: str, clients) -> None:
    """The barrier: a marker through each node, awaited at every client (see the module doc)."""
    markers = []
    for publish in publishers:
        marker = f"marker-{next(_markers)}"
        publish(channel, MARKER, {"token": marker})
        markers.append(marker)
    wait_tokens(clients, MARKER, markers)


def scrape(node) -> dict[str, float]:
    samples = {}
    for line in requests.get(node.url("/metrics"), timeout=3).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


SENT = "herald_cluster_events_sent_total"
RECEIVED = "herald_cluster_events_received_total"


def dropped(reason: str) -> str:
    return f'herald_cluster_events_dropped_total{{reason="{reason}"}}'


def join_public(clients, channel: str) -> None:
    for client in clients:
        if isinstance(client, PysherClient):
            client.subscribe(channel)  # waits for subscription_succeeded
        else:
            client.subscribe(channel)  # Echo subscribe + the private-sync barrier (Laravel answers 403)


# --------------------------------------------------------------------------------------------


def test_laravel_and_pusher_api_events_reach_every_node_exactly_once(
        herald_factory, redis_server, laravel_app, laravel, connect, pusher_clients):
    # A cluster channel of its own: the counts below must not see presence notices of other
    # tests' nodes (a node reaps the expired nodes it finds in Redis when it starts).
    own = unique("herald:cluster:exactly-once")
    nodes = [start_node(herald_factory, redis_server, laravel_app, "--cluster-node-id", f"node-{n}", "--cluster-channel", own)
             for n in (1, 2, 3)]
    channel = unique("cluster-orders")
    sio = [connect(node, mode) for node, mode in zip(nodes, ("websocket", "polling", "websocket"))]
    pushers = [pusher_clients.pysher(node) for node in nodes]
    clients = sio + pushers
    join_public(clients, channel)
    publishers = [pusher_publish(node) for node in nodes]

    # (1) Laravel through Redis: every node receives it itself; none passes it on.
    laravel.publish(redis_server, channel, token="laravel-1")
    laravel.publish(redis_server, channel, token="laravel-2")
    wait_tokens(clients, WECHAT_EVENT, ["laravel-1", "laravel-2"])

    # (2) The Pusher HTTP API of node 1 (trigger and batch): every node's clients, once.
    publishers[0](channel, EVENT, {"token": "api-1"})
    assert api(nodes[0]).trigger_batch([
        {"channel": channel, "name": EVENT, "data": json.dumps({"token": "batch-1"})},
        {"channel": channel, "name": EVENT, "data": json.dumps({"token": "batch-2"})},
    ]) == {}
    wait_tokens(clients, EVENT, ["api-1", "batch-1", "batch-2"])

    # socket_id through node 1 excludes a Pusher client of node 3, and only it.
    excluded = pushers[2]
    publishers[0](channel, EVENT, {"token": "others-1"}, socket_id=excluded.socket_id)
    wait_tokens([c for c in clients if c is not excluded], EVENT, ["others-1"])

    settle(publishers, channel, clients)
    for client in clients:
        assert sorted(tokens(client, WECHAT_EVENT)) == ["laravel-1", "laravel-2"], client
        expected = ["api-1", "batch-1", "batch-2"] + ([] if client is excluded else ["others-1"])
        assert tokens(client, EVENT) == expected, client  # in order, too: one node, one channel
    # What Socket.IO and Pusher clients got on another node is what they get from a local API call.
    assert sio[2].named(EVENT)[0] == (EVENT, channel, {"token": "api-1"})
    assert pushers[1].named(EVENT)[0] == {"event": EVENT, "channel": channel, "data": '{"token": "api-1"}'}

    # Node 1 sent its 4 API events and 1 marker, the others 1 marker each; Laravel's events
    # were not sent at all. Each node received what the two others sent.
    wait_until(lambda: scrape(nodes[0])[SENT] == 5, message="node 1's cluster sends counted")
    for node in nodes[1:]:
        wait_until(lambda: scrape(node)[SENT] == 1, message="the other nodes' markers counted")
    for node, received in zip(nodes, (2, 6, 6)):
        wait_until(lambda: scrape(node)[RECEIVED] == received, message=f"{received} received")
    for node in nodes:
        assert scrape(node)[dropped("queue_full")] == 0
        assert "cluster on: events entering this node go to the other nodes" in node.log
        node.assert_healthy()
    assert "herald.cluster.node=node-2" in nodes[1].log


def test_whispers_cross_nodes_exactly_once_and_never_return_to_the_sender(
        herald_factory, redis_server, laravel_app, connect, pusher_clients):
    nodes = [start_node(herald_factory, redis_server, laravel_app) for _ in range(3)]
    publishers = [pusher_publish(node) for node in nodes]
    for channel in (room("presence"), room("private")):
        presence = channel.startswith("presence-")
        sio_sender, sio_other = connect(nodes[0]), connect(nodes[1], "polling")
        for client, user in ((sio_sender, 7), (sio_other, 8)):
            client.subscribe(channel, sync=False, headers=bearer(user))
        for client, node in ((sio_sender, nodes[0]), (sio_other, nodes[1])):
            if presence:
                client.wait_event("presence:subscribed")
            else:
                node.wait_admitted(client, channel)
        # Pusher clients on node 3 (the whisperer) and node 1.
        pysher, listener = pusher_clients.pysher(nodes[2]), pusher_clients.pysher(nodes[0])
        for client, user in ((pysher, 9), (listener, 10)):
            if presence:
                client.join_presence(channel, laravel_channel_data(laravel_app, channel, client.socket_id, user))
                client.wait_event("pusher_internal:subscription_succeeded", channel)
            else:
                client.subscribe(channel)
        clients = [sio_sender, sio_other, pysher, listener]

        # (3) A Socket.IO whisper on node 1 reaches nodes 2 and 3, and node 1's other member.
        sio_sender.whisper(channel, "client-typing", {"token": "sio-1"})
        wait_tokens([sio_other, pysher, listener], "client-typing", ["sio-1"])
        # A Pusher client event from node 3 reaches nodes 1 and 2.
        pysher.pusher.channels[channel].trigger("client-typing", {"token": "pusher-1"})
        wait_tokens([sio_sender, sio_other, listener], "client-typing", ["pusher-1"])

        settle(publishers, channel, clients)
        assert tokens(sio_sender, "client-typing") == ["pusher-1"]
        assert tokens(sio_other, "client-typing") == ["sio-1", "pusher-1"]
        assert tokens(pysher, "client-typing") == ["sio-1"]
        assert tokens(listener, "client-typing") == ["sio-1", "pusher-1"]
        # Client events reach Pusher clients as sent (an object stays an object), across nodes
        # too; on presence channels with the sender's user id from the node it was sent on.
        assert pysher.named("client-typing")[0]["data"] == {"token": "sio-1"}
        relayed = listener.named("client-typing")[1]
        assert relayed["data"] == {"token": "pusher-1"}
        assert relayed.get("user_id") == ("9" if presence else None), relayed
        assert sio_other.named("client-typing")[1] == ("client-typing", channel, {"token": "pusher-1"})
        assert not pysher.named("pusher:error") and not listener.named("pusher:error")
    for node in nodes:
        node.assert_healthy()


def test_laravel_echo_server_api_on_one_node_reaches_the_others(
        tmp_path, redis_server, laravel, herald_factory, connect):
    config = write_config(tmp_path, les_config(redis_server.port))
    nodes = [herald_factory("--config", str(config), "--cluster", "--cluster-node-id", f"les-{n}") for n in (1, 2, 3)]
    for node in nodes:
        ready(node)
    channel = unique("cluster-news")
    clients = [connect(node) for node in nodes] + [connect(nodes[2], "polling")]
    for client in clients:
        client.subscribe(channel, sync=False)
    # Every node's API counts the whole cluster's subscribers (shared through Redis).
    for node in nodes:
        wait_until(lambda: requests.get(node.url(f"/apps/{LES_APP_ID}/channels/{channel}"), timeout=2,
                                        headers={"Authorization": f"Bearer {LES_APP_KEY}"}).json()["subscription_count"] == 4,
                   message=f"4 subscribers in the cluster, asked on node {node.port}")
    publishers = [les_publish(node) for node in nodes]

    # (4) POST /apps/:appId/events on node 2; data as a JSON string is decoded, as LES does.
    publishers[1](channel, EVENT, json.dumps({"token": "les-1"}))
    wait_tokens(clients, EVENT, ["les-1"])
    # socket_id of a Socket.IO client on node 3 (toOthers()): everyone else, on every node.
    excluded = clients[2]
    publishers[1](channel, EVENT, {"token": "les-others"}, socket_id=excluded.sid)
    wait_tokens([c for c in clients if c is not excluded], EVENT, ["les-others"])
    laravel.publish(redis_server, channel, token="laravel-les")
    wait_tokens(clients, WECHAT_EVENT, ["laravel-les"])

    settle(publishers, channel, clients)
    for client in clients:
        assert tokens(client, EVENT) == (["les-1"] if client is excluded else ["les-1", "les-others"])
        assert tokens(client, WECHAT_EVENT) == ["laravel-les"]
    assert clients[2].named(EVENT)[0] == (EVENT, channel, {"token": "les-1"})
    for node in nodes:
        node.assert_healthy()


def test_a_killed_node_does_not_stop_the_others_and_rejoins_when_restarted(
        herald_factory, redis_server, laravel_app, laravel, connect, pusher_clients):
    nodes = [start_node(herald_factory, redis_server, laravel_app) for _ in range(3)]
    channel = unique("cluster-restart")
    clients = [connect(node) for node in nodes] + [pusher_clients.pysher(node) for node in nodes]
    join_public(clients, channel)
    publishers = [pusher_publish(node) for node in nodes]
    publishers[2](channel, EVENT, {"token": "before"})
    wait_tokens(clients, EVENT, ["before"])

    # (5) kill -9 node 3: its clients drop; nodes 1 and 2 keep delivering each other's events.
    victim = nodes[2]
    victim.stopped_on_purpose = True
    victim.kill()
    assert victim.process.returncode == -9
    live = [clients[0], clients[1], clients[3], clients[4]]  # Socket.IO and pysher on nodes 1 and 2
    publishers[0](channel, EVENT, {"token": "during-1"})
    publishers[1](channel, EVENT, {"token": "during-2"})
    laravel.publish(redis_server, channel, token="laravel-during")
    wait_tokens(live, EVENT, ["during-1", "during-2"])
    wait_tokens(live, WECHAT_EVENT, ["laravel-during"])

    # Restarted (same arguments, a new process with a new random node id): it rejoins.
    restarted = herald_factory(*victim.args[victim.args.index("--log-level") + 2:])
    ready(restarted)
    newcomers = [connect(restarted, "polling"), pusher_clients.pysher(restarted)]
    join_public(newcomers, channel)
    everyone = live + newcomers
    publishers = [pusher_publish(node) for node in (nodes[0], nodes[1], restarted)]
    publishers[2](channel, EVENT, {"token": "after-3"})   # from the restarted node to the others
    publishers[0](channel, EVENT, {"token": "after-1"})   # and from the others to it
    wait_tokens(everyone, EVENT, ["after-3", "after-1"])

    settle(publishers, channel, everyone)
    for client in live:
        assert sorted(tokens(client, EVENT)) == sorted(["before", "during-1", "during-2", "after-3", "after-1"]), client
        assert tokens(client, WECHAT_EVENT) == ["laravel-during"]
    for client in newcomers:
        assert sorted(tokens(client, EVENT)) == ["after-1", "after-3"], client
        assert tokens(client, WECHAT_EVENT) == []
    for node in (nodes[0], nodes[1], restarted):
        node.assert_healthy()
    ids = {re.search(r"herald\.cluster\.node=(\S+)", node.log).group(1) for node in (nodes[0], nodes[1], victim, restarted)}
    assert len(ids) == 4, f"every process has its own random node id: {ids}"


def test_nodes_resume_after_redis_restarts_and_stop_cleanly(herald_factory, own_redis, connect, pusher_clients):
    def node():
        return herald_factory("--redis", own_redis.url, "--cluster",
                              "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET)
    nodes = [node(), node()]
    for each in nodes:
        ready(each)
        each.wait_for_log("cluster publisher connected to Redis")
    channel = unique("cluster-redis-restart")
    clients = [connect(nodes[0]), pusher_clients.pysher(nodes[1])]
    join_public(clients, channel)
    publishers = [pusher_publish(each) for each in nodes]
    publishers[0](channel, EVENT, {"token": "before"})
    wait_tokens(clients, EVENT, ["before"])

    own_redis.kill()
    for each in nodes:
        wait_until(lambda: requests.get(each.url("/ready"), timeout=2).status_code == 503, message="/ready 503")
        # The publisher notices at once, not at its next event, and keeps trying.
        each.wait_for_log("cluster publisher lost its Redis connection; reconnecting")
    own_redis.start()  # same port
    for each in nodes:
        ready(each)
        each.wait_for_log("cluster publisher connected to Redis", count=2, timeout=15)
    publishers[0](channel, EVENT, {"token": "after-1"})
    publishers[1](channel, EVENT, {"token": "after-2"})
    wait_tokens(clients, EVENT, ["after-1", "after-2"])
    settle(publishers, channel, clients)
    for client in clients:
        assert sorted(tokens(client, EVENT)) == ["after-1", "after-2", "before"], client

    # SIGTERM: the publisher drains and stops, the process exits 0.
    for each in nodes:
        assert each.terminate() == 0
        assert "cluster publisher stopped" in each.log
        assert "events not sent" not in each.log


def test_empty_prefix_yaml_config_and_bad_messages_on_the_cluster_channel(
        tmp_path, own_redis, laravel, herald_factory, connect, pusher_clients):
    # Laravel without a prefix: Herald's Laravel pattern is `*`, which matches the cluster
    # channel too, so Redis hands each cluster message to a node twice (both subscriptions).
    config = tmp_path / "herald.yaml"
    config.write_text(
        f"redis:\n  url: {own_redis.url}\n  key_prefix: \"\"\n"
        f"pusher:\n  apps:\n    - {{ id: \"{APP_ID}\", key: {APP_KEY}, secret: {APP_SECRET} }}\n"
        "cluster: {}\n"
    )
    one = herald_factory("--config", str(config))
    two = herald_factory("--config", str(config), "--cluster-node-id", "yaml-2")
    nodes = [one, two]
    for node in nodes:
        ready(node)
    assert "herald.cluster.channel=herald:cluster" in one.log  # the default without a prefix
    assert "herald.cluster.node=yaml-2" in two.log
    channel = unique("cluster-plain")
    clients = [connect(one), connect(two), pusher_clients.pysher(two)]
    for client in clients:
        if isinstance(client, PysherClient):
            client.subscribe(channel)
        else:
            client.subscribe(channel, sync=False)
    # Channel queries count the whole cluster's subscribers (shared through Redis).
    wait_until(lambda: api(two).channel_info(channel, ["subscription_count"])["subscription_count"] == 3,
               message="three subscribers in the cluster")
    assert api(one).channel_info(channel, ["subscription_count"])["subscription_count"] == 3
    publishers = [pusher_publish(node) for node in nodes]

    publishers[0](channel, EVENT, {"token": "plain-1"})
    laravel.publish(own_redis, channel, token="plain-laravel", prefix="")
    wait_tokens(clients, EVENT, ["plain-1"])
    wait_tokens(clients, WECHAT_EVENT, ["plain-laravel"])

    # Not envelopes: garbage, a Laravel broadcast, a future version. Dropped, logged, counted.
    publisher = own_redis.client()
    publisher.publish("herald:cluster", b"garbage")
    publisher.publish("herald:cluster", json.dumps({"event": "x", "data": {}, "socket": None}))
    publisher.publish("herald:cluster", json.dumps({"v": 2, "node": "future", "src": "http", "ch": channel, "ev": EVENT,
                                                    "data": {"token": "future"}}))
    for node in nodes:
        wait_until(lambda: scrape(node)[dropped("bad_envelope")] == 3, message="3 bad envelopes counted")
        node.wait_for_log("dropped an unreadable message on the cluster channel", count=3)
        node.wait_for_log("unsupported envelope version 2")
    publishers[1](channel, EVENT, {"token": "plain-2"})
    wait_tokens(clients, EVENT, ["plain-2"])

    settle(publishers, channel, clients)
    for client in clients:
        assert tokens(client, EVENT) == ["plain-1", "plain-2"], client
        assert tokens(client, WECHAT_EVENT) == ["plain-laravel"], client
    for node in nodes:
        # The pattern's copy of each cluster message is skipped, not taken for a bad Laravel broadcast.
        assert "not a Laravel broadcast" not in node.log
        samples = scrape(node)
        assert samples['herald_events_dropped_total{reason="not_laravel"}'] == 0
        node.assert_healthy()
    wait_until(lambda: scrape(two)[RECEIVED] == scrape(one)[SENT] and scrape(one)[RECEIVED] == scrape(two)[SENT],
               message="each node received what the other sent")


def test_plugins_run_once_on_the_node_the_event_entered(tmp_path, redis_server, laravel, herald_factory, connect):
    """Node 1 filters `secret.*` and both enrich payloads with their own name: an event from
    node 1's API is filtered before it could leave, and arrives on node 2 as node 1 made it."""
    def config(n: int, plugins: str) -> str:
        path = tmp_path / f"node-{n}.yaml"
        path.write_text(
            f'redis: {{ url: "{redis_server.url}", key_prefix: {LARAVEL_PREFIX} }}\n'
            f'pusher:\n  apps:\n    - {{ id: "{APP_ID}", key: {APP_KEY}, secret: {APP_SECRET} }}\n'
            f'cluster: {{ node_id: relay-{n} }}\n'
            f'plugins:\n{plugins}'
            f'  - {{ use: enrich, node: relay-{n}, source_field: source, relayed_at_field: null }}\n'
        )
        return str(path)

    one = herald_factory("--config", config(1, '  - { use: filter, deny_events: ["secret.*"] }\n'))
    two = herald_factory("--config", config(2, ""))
    nodes = [one, two]
    for node in nodes:
        ready(node)
    channel = unique("cluster-plugins")
    clients = [connect(one), connect(two)]
    join_public(clients, channel)
    publishers = [pusher_publish(node) for node in nodes]

    publishers[0](channel, "secret.thing", {"token": "hidden"})
    publishers[0](channel, EVENT, {"token": "from-1"})
    publishers[1](channel, EVENT, {"token": "from-2"})
    laravel.publish(redis_server, channel, token="laravel")
    wait_tokens(clients, EVENT, ["from-1", "from-2"])
    wait_tokens(clients, WECHAT_EVENT, ["laravel"])

    settle(publishers, channel, clients)
    for client, own in zip(clients, ("relay-1", "relay-2")):
        assert not client.named("secret.thing"), "filtered on node 1, so never sent to node 2"
        events = {e[2]["token"]: e[2] for e in client.named(EVENT)}
        assert events == {
            "from-1": {"token": "from-1", "source": "http", "node": "relay-1"},
            "from-2": {"token": "from-2", "source": "http", "node": "relay-2"},
        }, "enriched once, by the node the event entered"
        # Laravel's events reach every node from Redis and go through each node's plugins.
        [laravel_event] = client.named(WECHAT_EVENT)
        assert (laravel_event[2]["node"], laravel_event[2]["source"]) == (own, "redis")
    for node in nodes:
        node.assert_healthy()


def test_a_further_pusher_apps_events_stay_in_its_namespace_across_nodes(
        tmp_path, redis_server, herald_factory, connect, pusher_clients):
    """Two Pusher apps on two nodes: app B's events (its own channels, `ns` in the envelope)
    reach B's clients on the other node, never app A's or Socket.IO clients on the same name."""
    a = {"id": "7101", "key": "cluster-a-key", "secret": "cluster-a-secret"}
    b = {"id": "7102", "key": "cluster-b-key", "secret": "cluster-b-secret"}
    config = tmp_path / "herald.yaml"
    config.write_text(
        f'redis: {{ url: "{redis_server.url}", key_prefix: {LARAVEL_PREFIX} }}\n'
        "pusher:\n  apps:\n"
        + "".join(f'    - {{ id: "{app["id"]}", key: {app["key"]}, secret: {app["secret"]} }}\n' for app in (a, b))
        + "cluster: {}\n"
    )
    nodes = [herald_factory("--config", str(config)) for _ in range(2)]
    for node in nodes:
        ready(node)

    def app_api(node, app):
        return pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"], host="127.0.0.1", port=node.port, ssl=False)

    def publishers(app):
        def make(node):
            return lambda channel, event, data, socket_id=None: app_api(node, app).trigger(channel, event, data)
        return [make(node) for node in nodes]

    channel = unique("cluster-apps")
    a_clients = [pusher_clients.pysher(nodes[1], key=a["key"], secret=a["secret"]), connect(nodes[1])]
    b_clients = [pusher_clients.pysher(nodes[1], key=b["key"], secret=b["secret"]),
                 pusher_clients.pysher(nodes[0], key=b["key"], secret=b["secret"])]
    join_public(a_clients + b_clients, channel)

    publishers(b)[0](channel, EVENT, {"token": "b-1"})
    wait_tokens(b_clients, EVENT, ["b-1"])
    publishers(a)[0](channel, EVENT, {"token": "a-1"})
    wait_tokens(a_clients, EVENT, ["a-1"])
    settle(publishers(a), channel, a_clients)
    settle(publishers(b), channel, b_clients)
    for client in a_clients:
        assert tokens(client, EVENT) == ["a-1"], client
    for client in b_clients:
        assert tokens(client, EVENT) == ["b-1"], client
    for node in nodes:
        node.assert_healthy()


def test_cluster_settings_are_checked(tmp_path, redis_server):
    """Bad cluster settings stop the binary with a message naming them, before it serves."""
    def herald(*args, env=None):
        return subprocess.run([str(HERALD_BINARY), *args], capture_output=True, text=True, timeout=20,
                              env=dict(os.environ, **(env or {})))

    no_redis = herald("serve", "--cluster", "--port", "0")
    assert no_redis.returncode != 0 and "the cluster needs Redis" in no_redis.stderr
    bad_id = herald("serve", "--redis", redis_server.url, "--cluster", "--cluster-node-id", "a b", "--port", "0")
    assert bad_id.returncode != 0 and "whitespace" in bad_id.stderr

    config = tmp_path / "herald.yaml"
    config.write_text('redis: { url: "redis://127.0.0.1:1" }\ncluster: { node_id: "" }\n')
    checked = herald("check-config", str(config))
    assert checked.returncode != 0 and "cluster.node_id: the cluster node id is empty" in checked.stderr
    config.write_text('redis: { url: "redis://127.0.0.1:1" }\ncluster: { chanel: x }\n')
    checked = herald("check-config", str(config))
    assert checked.returncode != 0 and "did you mean 'channel'" in checked.stderr
    config.write_text('redis: { url: "redis://127.0.0.1:1", key_prefix: app_ }\ncluster: { node_id: relay-1 }\n')
    checked = herald("check-config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "cluster: channel 'herald:cluster:app_', node id relay-1" in checked.stdout
    # The environment alone turns it on (HERALD_CLUSTER) and names the channel.
    config.write_text('redis: { url: "redis://127.0.0.1:1" }\n')
    checked = herald("check-config", str(config), env={"HERALD_CLUSTER": "true", "HERALD_CLUSTER_CHANNEL": "shared"})
    assert checked.returncode == 0 and "cluster: channel 'shared'" in checked.stdout, checked.stderr
    checked = herald("check-config", str(config))
    assert checked.returncode == 0 and "cluster:" not in checked.stdout
