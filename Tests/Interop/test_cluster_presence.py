"""Presence across the nodes of a cluster (`--cluster`), kept in Redis (issue #7).

Real herald processes sharing one redis-server, pysher and python-socketio clients on different
nodes, presence authorized by the real Laravel app, the official `pusher` HTTP library and
laravel-echo-server's API for the channel queries. What is checked:

* a joiner's member list holds the members of every node; a join is announced once, to every
  node's members, in both dialects; a second connection of a user on another node announces
  nothing, and the user leaves only when the last of its connections (on any node) goes;
* the channel queries of both HTTP APIs answer for the whole cluster (users, user_count,
  subscription_count, the channel list);
* a node killed with SIGKILL has its members removed — and their leaves announced once — by
  the others within the presence TTL (4 s here), and Redis keeps no trace of it;
* a node stopped with SIGTERM takes its members out at once (leaves announced elsewhere).

"Exactly once" is checked after a barrier: a marker event published through each node's API
and awaited at every client. A node sends its presence notices and its events to the others in
one ordered stream, so a duplicate notice sent before a marker would arrive before it.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pusher
import pytest
import redis
import requests

from conftest import bearer, member, wait_until
from test_cluster import les_publish, pusher_publish, ready, room, settle, start_node
from test_echo_server_compat import APP_ID as LES_APP_ID, APP_KEY as LES_APP_KEY, les_config, write_config
from test_pusher import APP_ID, APP_KEY, APP_SECRET, api, laravel_channel_data, pusher_clients, pusher_info  # noqa: F401 (fixture)

TTL = os.environ.get("HERALD_TEST_PRESENCE_TTL", "4")  # seconds; RELIABILITY.md runs it with 30


def start(tmp_path, herald_factory, redis_server, laravel_app, *extra):
    """A cluster node with the Pusher app, laravel-echo-server's API (from its JSON file),
    Laravel authorizing channels and a 4 s presence TTL."""
    config = write_config(tmp_path, les_config(redis_server.port), name=f"les-{len(list(tmp_path.iterdir()))}.json")
    return start_node(herald_factory, redis_server, laravel_app, "--config", str(config), "--cluster-presence-ttl", TTL, *extra)


def join_pysher(client, laravel_app, channel: str, user: int) -> dict:
    """Joins `channel` as `user` (Laravel signs it); returns the presence hash of the reply."""
    client.join_presence(channel, laravel_channel_data(laravel_app, channel, client.socket_id, user))
    frame = client.wait_event("pusher_internal:subscription_succeeded", channel)
    return json.loads(frame["data"])["presence"]


def join_sio(client, channel: str, user: int) -> list:
    client.subscribe(channel, sync=False, headers=bearer(user))
    return client.wait_event("presence:subscribed")[2]


def added(client, channel: str) -> list[str]:
    return [json.loads(f["data"])["user_id"] for f in client.named("pusher_internal:member_added") if f["channel"] == channel]


def removed(client, channel: str) -> list[str]:
    return [json.loads(f["data"])["user_id"] for f in client.named("pusher_internal:member_removed") if f["channel"] == channel]


def sio_notices(client, name: str, channel: str) -> list:
    return [str(e[2]["user_id"]) for e in client.received() if e[0] == name and e[1] == channel]


def echo_api(node, path: str) -> dict:
    response = requests.get(node.url(f"/apps/{LES_APP_ID}{path}"), timeout=5, headers={"Authorization": f"Bearer {LES_APP_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()


def presence_keys(redis_server) -> list[str]:
    client = redis.Redis.from_url(redis_server.url)
    return sorted(k.decode() for k in client.scan_iter("herald:cluster:*"))


def test_members_joins_and_leaves_are_shared_by_every_node_once(
        tmp_path, herald_factory, redis_server, laravel_app, connect, pusher_clients):
    nodes = [start(tmp_path, herald_factory, redis_server, laravel_app) for _ in range(3)]
    publishers = [pusher_publish(node) for node in nodes]
    channel = room("presence")

    # User 1 (Pusher, node 1), then user 7 (Socket.IO, node 2): 7's list holds node 1's member.
    one = pusher_clients.pysher(nodes[0])
    assert join_pysher(one, laravel_app, channel, 1)["ids"] == ["1"]
    seven = connect(nodes[1])
    listed = join_sio(seven, channel, 7)
    assert sorted(listed, key=lambda m: str(m["user_id"])) == [
        {"user_id": "1", "user_info": pusher_info(1), "socketId": one.socket_id}, dict(member(7), socketId=seven.sid)]
    # 1 hears 7 arrive, across nodes, in Pusher's dialect.
    frame = one.wait_event("pusher_internal:member_added", channel)
    assert json.loads(frame["data"]) == {"user_id": "7", "user_info": pusher_info(7)}

    # User 2 on node 3 sees both; 1 and 7 hear it once each.
    two = pusher_clients.pysher(nodes[2])
    presence = join_pysher(two, laravel_app, channel, 2)
    assert sorted(presence["ids"]) == ["1", "2", "7"] and presence["count"] == 3
    assert presence["hash"]["1"] == pusher_info(1) and presence["hash"]["7"] == pusher_info(7)
    one.wait_event("pusher_internal:member_added", channel, count=2)
    seven.wait_for(lambda e: e[0] == "presence:joining" and str(e[2]["user_id"]) == "2", message="7 hears 2 join")

    # A second connection of user 1, on node 3: nobody hears a join; its list has everyone.
    one_again = pusher_clients.pysher(nodes[2])
    again = join_pysher(one_again, laravel_app, channel, 1)
    assert sorted(again["ids"]) == ["1", "2", "7"]

    # The channel queries answer for the whole cluster, from any node, through both APIs.
    for node in nodes:
        http = api(node)
        assert http.channel_info(channel, ["user_count", "subscription_count"]) == {
            "occupied": True, "user_count": 3, "subscription_count": 4}
        assert sorted(u["id"] for u in http.users_info(channel)["users"]) == ["1", "2", "7"]
        assert http.channels_info(prefix_filter="presence-", attributes=["user_count"])["channels"][channel] == {"user_count": 3}
    info = echo_api(nodes[0], f"/channels/{channel}")
    assert info == {"subscription_count": 4, "occupied": True, "user_count": 3}
    assert sorted(str(u["id"]) for u in echo_api(nodes[1], f"/channels/{channel}/users")["users"]) == ["1", "2", "7"]
    assert echo_api(nodes[2], "/channels?filter_by_prefix=presence-")["channels"][channel] == {
        "subscription_count": 4, "occupied": True}

    # User 1's first connection (node 1) goes: user 1 is still there (node 3).
    one.close()
    wait_until(lambda: api(nodes[1]).channel_info(channel, ["subscription_count"])["subscription_count"] == 3,
               message="the cluster counts 3 subscriptions")
    # Its last connection (node 3) goes: now everyone hears 1 leave, once.
    one_again.close()
    seven.wait_for(lambda e: e[0] == "presence:leaving" and str(e[2]["user_id"]) == "1", message="7 hears 1 leave")
    two.wait_event("pusher_internal:member_removed", channel)

    clients = [seven, two]
    settle(publishers, channel, clients)
    assert sio_notices(seven, "presence:joining", channel) == ["2"]
    assert sio_notices(seven, "presence:leaving", channel) == ["1"]
    assert added(two, channel) == [] and removed(two, channel) == ["1"]
    assert added(one, channel) == ["7", "2"]
    assert sorted(u["id"] for u in api(nodes[0]).users_info(channel)["users"]) == ["2", "7"]
    for node in nodes:
        node.assert_healthy()


def test_a_killed_node_s_members_leave_within_the_ttl_and_a_stopped_node_s_at_once(
        herald_factory, redis_server, laravel_app, connect, pusher_clients):
    nodes = [start_node(herald_factory, redis_server, laravel_app, "--cluster-presence-ttl", TTL,
                        "--cluster-node-id", f"presence-{n}") for n in (1, 2, 3)]
    channel = room("presence")
    watcher = connect(nodes[0])
    join_sio(watcher, channel, 7)
    pusher_watcher = pusher_clients.pysher(nodes[0])
    join_pysher(pusher_watcher, laravel_app, channel, 8)

    # User 9 on node 2 (to be killed), user 10 on node 2 and node 3 (two connections),
    # user 11 on node 3 (to be stopped).
    nine = pusher_clients.pysher(nodes[1])
    join_pysher(nine, laravel_app, channel, 9)
    ten_a, ten_b = connect(nodes[1]), connect(nodes[2], "polling")
    join_sio(ten_a, channel, 10)
    join_sio(ten_b, channel, 10)
    eleven = pusher_clients.pysher(nodes[2])
    join_pysher(eleven, laravel_app, channel, 11)
    wait_until(lambda: sorted(sio_notices(watcher, "presence:joining", channel)) == ["10", "11", "8", "9"],
               message="the watcher heard 8, 9, 10, 11 join")

    # kill -9 node 2: 9 leaves (its only connection); 10 stays (node 3 still has it).
    nodes[1].stopped_on_purpose = True
    killed = time.monotonic()
    nodes[1].kill()
    watcher.wait_for(lambda e: e[0] == "presence:leaving" and str(e[2]["user_id"]) == "9", timeout=int(TTL) + 11,
                     message="the watcher hears 9 leave after the TTL")
    print(f"killed node's member left after {time.monotonic() - killed:.2f} s (presence TTL {TTL} s)")
    pusher_watcher.wait_event("pusher_internal:member_removed", channel, timeout=int(TTL) + 11)
    users = sorted(u["id"] for u in api(nodes[0]).users_info(channel)["users"])
    assert users == ["10", "11", "7", "8"]
    assert "removed a cluster node whose heartbeat expired" in nodes[0].log + nodes[2].log

    # SIGTERM node 3: 11 and 10 (its last connection) leave at once, announced on node 1.
    nodes[2].process.send_signal(signal.SIGTERM)
    nodes[2].stopped_on_purpose = True
    assert nodes[2].process.wait(timeout=15) == 0
    watcher.wait_for(lambda e: e[0] == "presence:leaving" and str(e[2]["user_id"]) == "11", message="11 leaves")
    watcher.wait_for(lambda e: e[0] == "presence:leaving" and str(e[2]["user_id"]) == "10", message="10 leaves")

    settle([pusher_publish(nodes[0])], channel, [watcher, pusher_watcher])
    assert sorted(sio_notices(watcher, "presence:leaving", channel)) == ["10", "11", "9"]
    assert sorted(removed(pusher_watcher, channel)) == ["10", "11", "9"]
    assert sorted(u["id"] for u in api(nodes[0]).users_info(channel)["users"]) == ["7", "8"]
    assert api(nodes[0]).channel_info(channel, ["subscription_count"])["subscription_count"] == 2
    # Redis keeps nothing of the dead and stopped nodes but the killed one's tombstone (which
    # expires; it tells that node, should it come back, that the cluster saw it leave).
    keys = presence_keys(redis_server)
    assert [k for k in keys if "presence-2" in k or "presence-3" in k] == ["herald:cluster:laravel_database_:reaped:presence-2"], keys
    store = redis.Redis.from_url(redis_server.url)
    assert 0 < store.ttl("herald:cluster:laravel_database_:reaped:presence-2") <= 86400
    conns = [k for k in keys if ":conns:" in k and channel in k]
    assert len(conns) == 1 and all(f.startswith(b"presence-1\x1f") for f in store.hkeys(conns[0]))
    live = store.zrange("herald:cluster:laravel_database_:nodes", 0, -1)
    assert b"presence-1" in live and b"presence-2" not in live and b"presence-3" not in live
    nodes[0].assert_healthy()


def test_a_node_started_later_sees_the_cluster_s_members(
        tmp_path, herald_factory, redis_server, laravel_app, connect, pusher_clients):
    first = start(tmp_path, herald_factory, redis_server, laravel_app)
    channel = room("presence")
    seven = connect(first)
    join_sio(seven, channel, 7)
    # A node started after the join sees the member through Redis, not through a notice.
    late = start(tmp_path, herald_factory, redis_server, laravel_app)
    ready(late)
    eight = pusher_clients.pysher(late)
    presence = join_pysher(eight, laravel_app, channel, 8)
    assert sorted(presence["ids"]) == ["7", "8"]
    seven.wait_for(lambda e: e[0] == "presence:joining" and str(e[2]["user_id"]) == "8", message="7 hears 8")
    les_publish(late)(channel, "room.note", {"n": 1})
    seven.wait_for(lambda e: e[0] == "room.note", message="an event from the other node")
    first.assert_healthy()
    late.assert_healthy()


def test_presence_is_re_asserted_after_redis_restarts_empty(herald_factory, own_redis, pusher_clients):
    """Redis killed and restarted without its data: each node writes its members again; a user
    who joined meanwhile is announced to the other node once, nobody else is announced again."""
    def node():
        return herald_factory("--redis", own_redis.url, "--cluster", "--cluster-presence-ttl", TTL,
                              "--app-id", APP_ID, "--app-key", APP_KEY, "--app-secret", APP_SECRET)
    a, b = node(), node()
    for each in (a, b):
        ready(each)
    channel = room("presence")

    def join(client, user: int) -> dict:
        client.join_presence(channel, {"user_id": user, "user_info": pusher_info(user)})
        return json.loads(client.wait_event("pusher_internal:subscription_succeeded", channel)["data"])["presence"]

    one, two = pusher_clients.pysher(a), pusher_clients.pysher(b)
    join(one, 1)
    assert sorted(join(two, 2)["ids"]) == ["1", "2"]
    one.wait_event("pusher_internal:member_added", channel)

    own_redis.kill()
    for each in (a, b):
        wait_until(lambda: requests.get(each.url("/ready"), timeout=2).status_code == 503, message="/ready 503")
    # While Redis is away the cluster's numbers are unknown: the API says so.
    with pytest.raises(pusher.errors.PusherError):
        api(a).users_info(channel)
    # A join while Redis is away is decided on its node: its members hear it, the list is local.
    three = pusher_clients.pysher(a)
    assert sorted(join(three, 3)["ids"]) == ["1", "3"]
    one.wait_event("pusher_internal:member_added", channel, count=2)

    own_redis.start()  # same port, no data
    for each in (a, b):
        ready(each)
    # Re-asserted: the whole cluster's members are back in Redis, and node b heard of 3 once.
    wait_until(lambda: sorted(u["id"] for u in api(b).users_info(channel)["users"]) == ["1", "2", "3"],
               timeout=15, message="members re-asserted in Redis")
    # Through node a's notice, or — if node b's subscription was not back when a sent it — through
    # b's reconciliation with Redis (the Redis backoff's ceiling, 5 s, plus a second, after b
    # re-asserted).
    two.wait_event("pusher_internal:member_added", channel, count=1, timeout=15)
    wait_until(lambda: added(two, channel) == ["3"], timeout=10, message=f"2 hears 3 join: {two.received()}")
    assert api(a).channel_info(channel, ["user_count", "subscription_count"]) == {
        "occupied": True, "user_count": 3, "subscription_count": 3}

    settle([pusher_publish(a), pusher_publish(b)], channel, [one, two, three])
    assert added(one, channel) == ["2", "3"]       # nothing announced twice on node a
    assert added(two, channel) == ["3"]            # 1 was never announced again
    assert removed(one, channel) == removed(two, channel) == []
    for each in (a, b):
        each.assert_healthy()


def test_webhooks_member_limit_and_terminate_are_cluster_wide(tmp_path, herald_factory, redis_server, pusher_clients):
    """Two nodes of one app (from herald.yaml: a webhook, at most 2 presence members): the
    occupancy and membership webhooks come once for the cluster, whichever node saw what; the
    member limit counts the cluster's members; terminate_connections on one node closes the
    user's connections on the other."""
    from test_pusher_signin import assert_closed_unauthorized, signed_in
    from test_pusher_webhooks import WebhookReceiver

    receiver = WebhookReceiver()
    try:
        config = tmp_path / "herald.yaml"
        config.write_text(f"""
redis: {{ url: "{redis_server.url}" }}
cluster: {{ presence_ttl: 4s }}
pusher:
  apps:
    - id: "{APP_ID}"
      key: {APP_KEY}
      secret: {APP_SECRET}
      max_presence_members: 2
      webhooks: [{{url: "{receiver.url}"}}]
      webhook_delivery: {{batch_interval: 20ms}}
""")
        a, b = (herald_factory("--config", str(config)) for _ in range(2))
        for each in (a, b):
            ready(each)
        channel = room("presence")

        def join(client, user: str):
            client.join_presence(channel, {"user_id": user, "user_info": {"name": user}})

        # User 7 on both nodes, user 8 on b: one occupied, one member_added per user.
        seven_a, seven_b, eight = pusher_clients.pysher(a), pusher_clients.pysher(b), pusher_clients.pysher(b)
        join(seven_a, "7")
        seven_a.wait_event("pusher_internal:subscription_succeeded", channel)
        join(seven_b, "7")
        seven_b.wait_event("pusher_internal:subscription_succeeded", channel)
        join(eight, "8")
        eight.wait_event("pusher_internal:subscription_succeeded", channel)
        receiver.wait_for(channel, "member_added", user_id="8")

        # A third distinct user is one too many for the cluster, on either node; a further
        # connection of a member is not.
        for node in (a, b):
            nine = pusher_clients.raw(node)
            nine.subscribe(channel, **signer_auth(channel, nine.socket_id, "9"))
            error = nine.wait_event("pusher:subscription_error", channel)
            assert error["data"]["status"] == 4100 and error["data"]["type"] == "LimitReached", error
            assert not nine.named("pusher_internal:subscription_succeeded")
        seven_c = pusher_clients.pysher(a)
        join(seven_c, "7")
        seven_c.wait_event("pusher_internal:subscription_succeeded", channel)

        # Everyone leaves, across both nodes: 7 leaves once (with its last connection), then
        # the channel is vacated once.
        for client in (seven_a, eight, seven_c, seven_b):
            client.close()
        receiver.wait_for(channel, "channel_vacated")
        # Once each. Each node sends the webhooks it decided in its own batches, so the order
        # across nodes is not fixed (Pusher promises none either); a user's own come in order.
        got = [(e["name"], e.get("user_id")) for e in receiver.of(channel)]
        assert sorted(got, key=str) == sorted([
            ("channel_occupied", None), ("member_added", "7"), ("member_added", "8"),
            ("member_removed", "8"), ("member_removed", "7"), ("channel_vacated", None)], key=str), got
        for user in ("7", "8"):
            assert got.index(("member_added", user)) < got.index(("member_removed", user)), got
        receiver.assert_all_valid()

        # terminate_connections through node a closes user 5's connection on node b.
        five = signed_in(pusher_clients, b, "5")
        six = signed_in(pusher_clients, b, "6")
        assert api(a).terminate_user_connections("5") == {}
        assert_closed_unauthorized(five, "You got disconnected by the app.")
        six.ping()
        assert not six.closed.is_set()
        for each in (a, b):
            each.assert_healthy()
    finally:
        receiver.stop()


def signer_auth(channel: str, socket_id: str, user: str) -> dict:
    """`{auth, channel_data}` for `user`, signed with the app's secret (the `pusher` library)."""
    signer = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)
    return signer.authenticate(channel, socket_id, {"user_id": user, "user_info": {"name": user}})
