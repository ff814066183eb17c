import HeraldTestSupport
import HeraldRedis
import Logging
import NIOCore
import Synchronization
import Testing

let quietLogger = Logger(label: "herald.tests", factory: { _ in SwiftLogNoOpLogHandler() })

/// A configuration pointing at `server`, with short reconnect delays.
func configuration(_ server: RedisServerProcess, username: String? = nil, password: String? = nil, database: Int = 0) -> RedisConfiguration {
    RedisConfiguration(
        host: "127.0.0.1", port: server.port, username: username, password: password, database: database,
        connectTimeout: .seconds(2), reconnectBaseDelay: .milliseconds(20), reconnectMaxDelay: .milliseconds(200)
    )
}

/// Collects a subscriber's messages from one task.
final class MessageCollector: Sendable {
    private let state = Mutex<[RedisPubSubMessage]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ subscriber: RedisSubscriber) {
        let consumer = Task { [self] in
            for await message in subscriber.messages {
                self.state.withLock { $0.append(message) }
            }
        }
        task.withLock { $0 = consumer }
    }

    var messages: [RedisPubSubMessage] { state.withLock { $0 } }

    func cancel() { task.withLock { $0?.cancel() } }
}

/// Runs `subscriber` as a service in a task; returns the task.
func runInBackground(_ subscriber: RedisSubscriber) -> Task<Void, any Error> {
    Task { try await subscriber.run() }
}

/// Cancels `task` and checks that it really ends.
func cancelAndJoin(_ task: Task<Void, any Error>, timeout: Duration = .seconds(10)) async {
    let done = Atomic<Bool>(false)
    task.cancel()
    Task {
        _ = await task.result
        done.store(true, ordering: .relaxed)
    }
    let finished = await eventually(timeout: timeout) { done.load(ordering: .relaxed) }
    #expect(finished, "the service did not return after cancellation")
}

@Suite("Redis against a real redis-server", .serialized)
struct RedisIntegrationTests {
    @Test("connect, SET/GET, binary values, error replies")
    func setGet() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            #expect(connection.isActive)
            #expect(try await connection.command(["PING"]) == .simpleString("PONG"))
            #expect(try await connection.command(["SET", "greeting", "héllo"]) == .simpleString("OK"))
            #expect(try await connection.send(["GET", "greeting"]) == .bulkString(ByteBuffer(string: "héllo")))
            #expect(try await connection.send(["GET", "missing"]) == .null)
            #expect(try await connection.send(["INCRBY", "n", "41"]) == .integer(41))
            #expect(try await connection.send(["SET", "empty", ""]) == .simpleString("OK"))
            #expect(try await connection.send(["GET", "empty"]) == .bulkString(ByteBuffer()))

            let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x24, 0x2A]
            var set = ByteBuffer()
            RedisCommandEncoder.encode([ByteBuffer(string: "SET"), ByteBuffer(string: "bin"), ByteBuffer(bytes: binary)], into: &set)
            #expect(try await connection.send(encoded: set) == .simpleString("OK"))
            #expect(try await connection.send(["GET", "bin"]) == .bulkString(ByteBuffer(bytes: binary)))
            #expect(try await connection.send(["STRLEN", "bin"]) == .integer(6))

            #expect(try await connection.send(["RPUSH", "list", "a", "b"]) == .integer(2))
            #expect(try await connection.send(["LRANGE", "list", "0", "-1"]) == .array([.bulkString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "b"))]))

            guard case .error(let message) = try await connection.send(["NOSUCHCOMMAND", "x"]) else {
                Issue.record("expected an error reply")
                return
            }
            #expect(message.hasPrefix("ERR unknown command"))
            await #expect(throws: RedisError.self) { try await connection.command(["NOSUCHCOMMAND"]) }
            do {
                try await connection.command(["INCR", "greeting"])
                Issue.record("INCR on a string succeeded")
            } catch let error as RedisError {
                #expect(error.kind == .server)
                #expect(error.message == "INCR failed: ERR value is not an integer or out of range")
            }
            // The connection is still usable after error replies.
            #expect(try await connection.send(["GET", "n"]) == .bulkString(ByteBuffer(string: "41")))
            await connection.close()
            #expect(connection.isActive == false)
            // A command on a closed connection fails instead of waiting forever.
            do {
                _ = try await connection.send(["PING"])
                Issue.record("PING on a closed connection succeeded")
            } catch let error as RedisError {
                #expect(error.kind == .connectionClosed)
            }
        }
    }

    @Test("pipelining: many concurrent commands, each gets its own reply, in order")
    func pipelining() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            // Concurrent ECHOs: every reply must be matched to its own command.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<500 {
                    group.addTask {
                        let reply = try await connection.send(["ECHO", "value-\(i)"])
                        #expect(reply == .bulkString(ByteBuffer(string: "value-\(i)")))
                    }
                }
                try await group.waitForAll()
            }
            // Concurrent INCRs: Redis serializes them, so the replies are exactly 1...300.
            let values = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<300 { group.addTask { try await connection.send(["INCR", "counter"]).int ?? -1 } }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(values.sorted() == Array(1...300))
            // One task writing without awaiting each reply: RPUSH order is write order.
            let pushes = (0..<100).map { i in Task { try await connection.send(["RPUSH", "ordered", "\(i)"]) } }
            var lengths: [Int64] = []
            for push in pushes { lengths.append(try await push.value.int ?? -1) }
            #expect(Set(lengths) == Set(1...100))
            await connection.close()
        }
    }

    @Test("AUTH with the password from the URL; a wrong password throws .server")
    func auth() async throws {
        try await withRedisServer(arguments: ["--requirepass", "p@ss:w/d"]) { server in
            let url = "redis://:p%40ss%3Aw%2Fd@127.0.0.1:\(server.port)"
            let good = try await RedisConnection.connect(configuration: try RedisConfiguration(url: url), logger: quietLogger)
            #expect(try await good.command(["SET", "k", "v"]) == .simpleString("OK"))
            #expect(try await good.send(["GET", "k"]) == .bulkString(ByteBuffer(string: "v")))
            await good.close()

            // ACL form: user `default` with the same password.
            let acl = try await RedisConnection.connect(configuration: try RedisConfiguration(url: "redis://default:p%40ss%3Aw%2Fd@127.0.0.1:\(server.port)"), logger: quietLogger)
            #expect(try await acl.send(["GET", "k"]) == .bulkString(ByteBuffer(string: "v")))
            await acl.close()

            do {
                _ = try await RedisConnection.connect(configuration: configuration(server, password: "wrong"), logger: quietLogger)
                Issue.record("a wrong password was accepted")
            } catch let error as RedisError {
                #expect(error.kind == .server)
                #expect(error.message.contains("WRONGPASS"))
            }

            let anonymous = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            guard case .error(let text) = try await anonymous.send(["GET", "k"]) else {
                Issue.record("an unauthenticated GET succeeded")
                return
            }
            #expect(text.hasPrefix("NOAUTH"))
            await anonymous.close()
        }
    }

    @Test("SELECT from the URL's database index")
    func selectDatabase() async throws {
        try await withRedisServer { server in
            let db0 = try await RedisConnection.connect(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)"), logger: quietLogger)
            let db5 = try await RedisConnection.connect(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)/5"), logger: quietLogger)
            try await db0.command(["SET", "where", "zero"])
            try await db5.command(["SET", "where", "five"])
            #expect(try await db0.send(["GET", "where"]) == .bulkString(ByteBuffer(string: "zero")))
            #expect(try await db5.send(["GET", "where"]) == .bulkString(ByteBuffer(string: "five")))
            #expect(try await db5.send(["DBSIZE"]) == .integer(1))
            try await db0.command(["SELECT", "5"])
            #expect(try await db0.send(["GET", "where"]) == .bulkString(ByteBuffer(string: "five")))
            do {
                _ = try await RedisConnection.connect(configuration: try RedisConfiguration(url: "redis://127.0.0.1:\(server.port)/99"), logger: quietLogger)
                Issue.record("SELECT 99 succeeded on a 16-database server")
            } catch let error as RedisError {
                #expect(error.kind == .server)
            }
            await db0.close()
            await db5.close()
        }
    }

    @Test("PUBLISH returns the receiver count; a raw SUBSCRIBE connection gets pushes")
    func publishCount() async throws {
        try await withRedisServer { server in
            let publisher = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            #expect(try await publisher.publish(ByteBuffer(string: "nobody"), to: "news") == 0)

            let pushes = Mutex<[RESPValue]>([])
            let listener = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger) { reply in
                pushes.withLock { $0.append(reply) }
            }
            listener.sendWithoutReply(["SUBSCRIBE", "news"])
            #expect(await eventually { pushes.withLock { $0.count } == 1 })
            #expect(pushes.withLock { $0.first } == .array([.bulkString(ByteBuffer(string: "subscribe")), .bulkString(ByteBuffer(string: "news")), .integer(1)]))

            let subscriber = RedisSubscriber(configuration: configuration(server), patterns: ["ne*"], logger: quietLogger)
            let service = runInBackground(subscriber)
            #expect(await eventually { subscriber.isSubscribed })
            #expect(try await publisher.publish(ByteBuffer(string: "two"), to: "news") == 2)
            #expect(try await publisher.publish(ByteBuffer(string: "one"), to: "nexus") == 1)
            #expect(await eventually { pushes.withLock { $0.count } == 2 })
            #expect(pushes.withLock { $0.last } == .array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "news")), .bulkString(ByteBuffer(string: "two"))]))
            await cancelAndJoin(service)
            await listener.close()
            await publisher.close()
        }
    }

    @Test("RedisSubscriber: PSUBSCRIBE delivery, then survives a Redis crash and restart")
    func subscriberReconnects() async throws {
        try await withRedisServer { server in
            let subscriber = RedisSubscriber(configuration: configuration(server), patterns: ["laravel_database_*"], channels: ["plain"], logger: quietLogger)
            #expect(subscriber.isSubscribed == false)
            let collector = MessageCollector(subscriber)
            let service = runInBackground(subscriber)
            #expect(await eventually { subscriber.isSubscribed })
            #expect(subscriber.reconnects == 0)

            let publisher = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            let payload = ByteBuffer(bytes: Array(#"{"event":"e","data":{"s":"a\r\nb"}}"#.utf8) + [0x00, 0xFF])
            #expect(try await publisher.publish(payload, to: "laravel_database_orders") == 1)
            #expect(try await publisher.publish(ByteBuffer(string: "direct"), to: "plain") == 1)
            #expect(try await publisher.publish(ByteBuffer(string: "ignored"), to: "other_orders") == 0)
            #expect(await eventually { collector.messages.count == 2 })
            let first = collector.messages[0]
            #expect(first.pattern == "laravel_database_*")
            #expect(first.channel == "laravel_database_orders")
            #expect(first.payload == payload)
            #expect(collector.messages[1].pattern == nil)
            #expect(collector.messages[1].channel == "plain")
            #expect(String(buffer: collector.messages[1].payload) == "direct")
            await publisher.close()

            // Crash Redis: the subscription is lost and retried.
            server.kill()
            #expect(await eventually { subscriber.isSubscribed == false })
            #expect(await eventually { subscriber.reconnects >= 2 }, "it keeps retrying while Redis is down")
            try server.start()
            #expect(await eventually { subscriber.isSubscribed }, "re-subscribed after Redis came back")
            #expect(subscriber.reconnects > 0)

            let again = try await RedisConnection.connect(configuration: configuration(server), logger: quietLogger)
            #expect(try await again.publish(ByteBuffer(string: "after restart"), to: "laravel_database_orders") == 1)
            #expect(try await again.publish(ByteBuffer(string: "plain again"), to: "plain") == 1)
            #expect(await eventually { collector.messages.count == 4 })
            #expect(collector.messages.count == 4)
            if collector.messages.count == 4 {
                #expect(collector.messages[2].channel == "laravel_database_orders")
                #expect(collector.messages[2].pattern == "laravel_database_*")
                #expect(String(buffer: collector.messages[2].payload) == "after restart")
                #expect(String(buffer: collector.messages[3].payload) == "plain again")
            }
            #expect(subscriber.droppedMessages == 0)
            await again.close()
            await cancelAndJoin(service)
            collector.cancel()
        }
    }
}
