import HeraldTestSupport
import Herald
import HeraldCore
import HeraldRedis
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// A minimal HTTP/1.1 client: one request per connection, whole body returned.
enum HTTPClient {
    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String
    }

    static func request(_ method: HTTPMethod, port: Int, uri: String, body: String? = nil) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
            head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
            head.headers.add(name: "Connection", value: "close")
            if let body {
                head.headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
                head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            }
            // One write for the whole request: the server may answer and close (Connection:
            // close) before a separate `.end` write would run, which then fails on a closed channel.
            var parts: [HTTPClientRequestPart] = [.head(head)]
            if let body { parts.append(.body(.byteBuffer(ByteBuffer(string: body)))) }
            parts.append(.end(nil))
            try await outbound.write(contentsOf: parts)
            var status = HTTPResponseStatus.imATeapot
            var headers = HTTPHeaders()
            var collected = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let response):
                    status = response.status
                    headers = response.headers
                case .body(var bytes):
                    collected.writeBuffer(&bytes)
                case .end:
                    return Response(status: status, headers: headers, body: String(buffer: collected))
                }
            }
            throw RedisServerProcess.Failure(description: "connection closed before the response ended")
        }
    }
}

@Suite("Relay end to end", .serialized)
struct RelayIntegrationTests {
    @Test("Engine.IO 4 polling client receives a Laravel broadcast from Redis and an in-process publish")
    func pollingEndToEnd() async throws {
        try await withRedisServer { server in
            let redis = RedisConfiguration(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(2),
                                           reconnectBaseDelay: .milliseconds(20), reconnectMaxDelay: .milliseconds(200))
            let relay = Relay(configuration: HeraldConfiguration(host: "127.0.0.1", port: 0, redis: redis, keyPrefix: "laravel_database_"),
                              logger: quietLogger)
            let running = Task { try await relay.run() }
            let finished = Atomic<Bool>(false)
            Task {
                _ = await running.result
                finished.store(true, ordering: .relaxed)
            }

            #expect(await eventually { relay.boundAddress != nil && relay.isReady })
            let port = try #require(relay.boundAddress?.port)
            #expect(port > 0)
            #expect(relay.subscriber?.patterns == ["laravel_database_*"])

            // Handshake.
            let open = try await HTTPClient.request(.GET, port: port, uri: "/socket.io/?EIO=4&transport=polling")
            #expect(open.status == .ok)
            #expect(open.body.hasPrefix("0{\"sid\":\""))
            let handshake = try JSONReader.parse(String(open.body.dropFirst()))
            let sid = try #require(handshake["sid"]?.stringValue)
            #expect(handshake["upgrades"] == .array([.string("websocket")]))
            #expect(handshake["pingInterval"] == .number("25000"))
            #expect(handshake["pingTimeout"] == .number("20000"))
            let session = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"

            // Socket.IO CONNECT.
            let connect = try await HTTPClient.request(.POST, port: port, uri: session, body: "40")
            #expect(connect.status == .ok)
            #expect(connect.body == "ok")
            let connected = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(connected.body.hasPrefix("40{\"sid\":\""))
            let socketID = try #require(try JSONReader.parse(String(connected.body.dropFirst(2)))["sid"]?.stringValue)
            #expect(socketID.isEmpty == false)

            // Subscribe (Laravel Echo's form).
            let subscribe = try await HTTPClient.request(.POST, port: port, uri: session, body: #"42["subscribe",{"channel":"orders","auth":{"headers":{}}}]"#)
            #expect(subscribe.body == "ok")
            #expect(await eventually { relay.registry.subscriberCount("orders") == 1 })

            // Laravel publishes through Redis with its key prefix.
            let publisher = try await RedisConnection.connect(configuration: redis, logger: quietLogger)
            let laravel = #"{"event":"App\\Events\\OrderShipped","data":{"id":1},"socket":null}"#
            #expect(try await publisher.publish(ByteBuffer(string: laravel), to: "laravel_database_orders") == 1)
            let poll = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(poll.status == .ok)
            #expect(poll.body == #"42["App\\Events\\OrderShipped","orders",{"id":1}]"#)

            // toOthers(): the originating socket is excluded.
            let others = #"{"event":"Skipped","data":{},"socket":"\#(socketID)"}"#
            #expect(try await publisher.publish(ByteBuffer(string: others), to: "laravel_database_orders") == 1)
            // A message that is not a Laravel broadcast is dropped and counted.
            #expect(try await publisher.publish(ByteBuffer(string: "not json"), to: "laravel_database_orders") == 1)
            #expect(await eventually { relay.droppedRedisMessages == 1 })

            // In-process publish takes the same path.
            #expect(relay.publish(Event(channel: "orders", name: "Local", data: ByteBuffer(string: #"{"n":2,"s":"\u00e9"}"#), source: .inProcess)))
            let local = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(local.body == #"42["Local","orders",{"n":2,"s":"\u00e9"}]"#)

            // Another channel's events are not delivered to this client.
            relay.publish(Event(channel: "elsewhere", name: "Nope", data: ByteBuffer(string: "1"), source: .inProcess))
            relay.publish(Event(channel: "orders", name: "Last", data: ByteBuffer(string: "[]"), source: .inProcess))
            let last = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(last.body == #"42["Last","orders",[]]"#)

            // Unknown sessions are refused with Engine.IO's error body.
            let unknown = try await HTTPClient.request(.GET, port: port, uri: "/socket.io/?EIO=4&transport=polling&sid=nope")
            #expect(unknown.status == .badRequest)
            #expect(unknown.body == #"{"code":1,"message":"Session ID unknown"}"#)

            await publisher.close()
            running.cancel()
            #expect(await eventually { finished.load(ordering: .relaxed) }, "Relay.run() did not return after cancellation")
        }
    }
}

/// The seed's event, modelled in Swift.
struct WechatLoginedEvent: BroadcastEvent {
    let token: String
    let channel: String
    var broadcastOn: [BroadcastChannel] { [.public(channel)] }
    var broadcastWith: JSONValue {
        .object([JSONMember(key: "token", value: .string(token)), JSONMember(key: "channel", value: .string(channel))])
    }
}

struct OrderShipped: BroadcastEvent {
    let id: Int
    var broadcastOn: [BroadcastChannel] { [.private("orders.\(id)"), .presence("staff")] }
    var broadcastAs: String { "order.shipped" }
    var broadcastWith: JSONValue { .object([JSONMember(key: "id", value: .number(String(id)))]) }
}

@Suite("Broadcast model", .serialized)
struct BroadcastModelTests {
    @Test("Channel names and the default event name follow Laravel")
    func namesFollowLaravel() {
        let events = OrderShipped(id: 7).events(excludingSocketID: "abc")
        #expect(events.map(\.channel) == ["private-orders.7", "presence-staff"])
        #expect(events.allSatisfy { $0.name == "order.shipped" && $0.excludedSocketID == "abc" && String(buffer: $0.data) == #"{"id":7}"# })
        #expect(WechatLoginedEvent(token: "t", channel: "qr.1").broadcastAs == "WechatLoginedEvent")
    }

    @Test("RedisBroadcaster publishes Laravel's wire format, which a Relay ingests and delivers")
    func redisBroadcasterFeedsARelay() async throws {
        try await withRedisServer { server in
            let redis = RedisConfiguration(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(2),
                                           reconnectBaseDelay: .milliseconds(20), reconnectMaxDelay: .milliseconds(200))
            // The exact bytes on the wire, as a Laravel subscriber (or laravel-echo-server) sees them.
            let probe = RedisSubscriber(configuration: redis, patterns: ["app_*"], logger: quietLogger)
            let probing = Task { try await probe.run() }
            #expect(await eventually { probe.isSubscribed })
            let connection = try await RedisConnection.connect(configuration: redis, logger: quietLogger)
            let broadcaster = RedisBroadcaster(connection: connection, keyPrefix: "app_")
            #expect(try await broadcaster.broadcast(WechatLoginedEvent(token: "t1", channel: "qr.42"), excludingSocketID: "s1") == 1)
            var iterator = probe.messages.makeAsyncIterator()
            let message = try #require(await iterator.next())
            #expect(message.channel == "app_qr.42")
            #expect(String(buffer: message.payload) == #"{"event":"WechatLoginedEvent","data":{"token":"t1","channel":"qr.42"},"socket":"s1"}"#)
            probing.cancel()

            // A relay with the same prefix delivers it to a subscribed polling client.
            let relay = Relay(configuration: HeraldConfiguration(host: "127.0.0.1", port: 0, redis: redis, keyPrefix: "app_"), logger: quietLogger)
            let running = Task { try await relay.run() }
            #expect(await eventually { relay.boundAddress != nil && relay.isReady })
            let port = try #require(relay.boundAddress?.port)
            let open = try await HTTPClient.request(.GET, port: port, uri: "/socket.io/?EIO=4&transport=polling")
            let sid = try #require(try JSONReader.parse(String(open.body.dropFirst()))["sid"]?.stringValue)
            let session = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"
            _ = try await HTTPClient.request(.POST, port: port, uri: session, body: "40")
            _ = try await HTTPClient.request(.GET, port: port, uri: session)
            _ = try await HTTPClient.request(.POST, port: port, uri: session, body: #"42["subscribe",{"channel":"qr.42"}]"#)
            #expect(await eventually { relay.registry.subscriberCount("qr.42") == 1 })
            #expect(try await broadcaster.broadcast(WechatLoginedEvent(token: "t2", channel: "qr.42")) >= 1)
            let fromRedis = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(fromRedis.body == #"42["WechatLoginedEvent","qr.42",{"token":"t2","channel":"qr.42"}]"#)

            // In-process, the same model takes the same path.
            #expect(relay.broadcast(WechatLoginedEvent(token: "t3", channel: "qr.42")))
            let local = try await HTTPClient.request(.GET, port: port, uri: session)
            #expect(local.body == #"42["WechatLoginedEvent","qr.42",{"token":"t3","channel":"qr.42"}]"#)

            await connection.close()
            running.cancel()
            _ = await running.result
        }
    }
}
