"""The seed's relay on a mainstream stack, as the benchmark's peer.

python-socketio (asyncio + aiohttp) with a Redis pub/sub listener, exactly the seed's design:
PSUBSCRIBE '*', and for each Laravel message either emit `<channel>:<event>` with `data` to
every socket (seed mode, `io.emit(channel + ':' + event, data)`) or emit `(event, channel, data)`
to the sockets that subscribed to the channel (echo mode, laravel-echo-server's rooms).

    python seed_relay.py --port 6002 --redis redis://127.0.0.1:6379 --mode seed|echo
"""
import argparse
import asyncio
import json

import redis.asyncio as aioredis
import socketio
from aiohttp import web


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=6002)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--mode", choices=["seed", "echo"], default="seed")
    args = parser.parse_args()

    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    app = web.Application()
    sio.attach(app)

    @sio.on("subscribe")
    async def subscribe(sid, payload):
        await sio.enter_room(sid, payload["channel"])

    async def listen(app_):
        client = aioredis.from_url(args.redis)
        pubsub = client.pubsub()
        await pubsub.psubscribe("*")
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            channel = message["channel"].decode()
            try:
                body = json.loads(message["data"])
            except ValueError:
                continue
            if args.mode == "seed":
                await sio.emit(channel + ":" + body["event"], body.get("data"))
            else:
                await sio.emit(body["event"], (channel, body.get("data")), room=channel)

    async def start(app_):
        app_["listener"] = asyncio.create_task(listen(app_))

    app.on_startup.append(start)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
