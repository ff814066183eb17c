import HeraldRedis
import HeraldTestSupport
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A fake Redis on loopback that speaks just enough RESP to answer one `PSUBSCRIBE`, and on its
/// first connection follows the confirmation and a message with a multi-bulk header announcing
/// 2,000,000,000 elements (sent in two writes, cut inside the number) — what a broken or hostile
/// server, or a man in the middle of a plain-TCP link, could send. hiredis 0.14 used to allocate
/// 16 GB on that header alone. Later connections behave.
///
/// Not a mock of Redis: the point is a server that a real redis-server never imitates.
final class HostileRedisServer: Sendable {
    let channel: any Channel
    private let counter: ConnectionCounter

    /// The port it listens on (chosen by the system).
    var port: Int { channel.localAddress?.port ?? 0 }
    /// How many connections it has accepted.
    var connections: Int { counter.count.load(ordering: .relaxed) }

    private init(channel: any Channel, counter: ConnectionCounter) {
        self.channel = channel
        self.counter = counter
    }

    static func start() async throws -> HostileRedisServer {
        let counter = ConnectionCounter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let connection = counter.count.add(1, ordering: .relaxed).newValue
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(connection: connection))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return HostileRedisServer(channel: channel, counter: counter)
    }

    func stop() async {
        try? await channel.close()
    }

    private final class ConnectionCounter: Sendable {
        let count = Atomic<Int>(0)
    }

    static func pmessage(_ payload: String) -> String {
        "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$4\r\nnews\r\n$\(payload.utf8.count)\r\n\(payload)\r\n"
    }

    /// Answers the first command of a connection (the subscriber's `PSUBSCRIBE *`).
    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let connection: Int
        var answered = false

        init(connection: Int) { self.connection = connection }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            let confirmation = "*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n"
            let parts = connection == 1
                ? [confirmation + HostileRedisServer.pmessage("before") + "*20000", "00000\r\n"]
                : [confirmation + HostileRedisServer.pmessage("after")]
            for part in parts {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: part)), promise: nil)
            }
        }
    }
}

@Suite("Redis that sends a reply beyond the limits")
struct HostileRedisTests {
    /// The subscriber of issue #7's known issue: it logs the protocol error, drops the connection,
    /// reconnects and goes on receiving — the relay process neither aborts nor allocates 16 GB.
    @Test("a *2000000000 header after SUBSCRIBE: error logged, connection dropped, subscriber reconnects")
    func hugeMultiBulkHeader() async throws {
        let server = try await HostileRedisServer.start()
        let records = LogRecords()
        let subscriber = RedisSubscriber(
            configuration: RedisConfiguration(
                host: "127.0.0.1", port: server.port, connectTimeout: .seconds(2),
                reconnectBaseDelay: .milliseconds(20), reconnectMaxDelay: .milliseconds(200)
            ),
            patterns: ["*"],
            logger: records.logger
        )
        let collector = MessageCollector(subscriber)
        let task = runInBackground(subscriber)

        let received = await eventually(timeout: .seconds(20)) { collector.messages.count >= 2 }
        #expect(received, "messages: \(collector.messages.map { String(buffer: $0.payload) })")
        #expect(collector.messages.map { String(buffer: $0.payload) }.prefix(2) == ["before", "after"])
        #expect(collector.messages.first?.channel == "news")
        #expect(subscriber.reconnects >= 1)
        #expect(server.connections >= 2)
        #expect(await eventually { subscriber.isSubscribed })

        let refusal = records.all.first { $0.message == "Redis protocol error; closing the connection" }
        #expect(refusal?.level == .error)
        #expect(refusal?.metadata["error"]?.contains("Redis sent an array of 2000000000 elements (more than the limit 1048576)") == true,
                "\(records.all.map(\.line))")
        #expect(records.all.contains { $0.message == "lost the Redis subscription connection; reconnecting" })

        await cancelAndJoin(task)
        collector.cancel()
        await server.stop()
    }
}
