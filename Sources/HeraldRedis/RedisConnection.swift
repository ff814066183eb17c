import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One command to write: its RESP bytes and, unless it is fire-and-forget, the promise its reply
/// completes.
struct RedisOutboundCommand {
    var bytes: ByteBuffer
    var promise: EventLoopPromise<RESPValue>?
}

/// NIO handler that turns bytes into replies with hiredis and matches replies to promises.
///
/// Replies are matched FIFO to the commands that carry a promise. A reply that arrives while no
/// promise waits (pub/sub pushes once the connection is subscribed) goes to `pushHandler`.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisOutboundCommand
    typealias OutboundOut = ByteBuffer

    private let reader: HiredisReader
    private var pending = CircularBuffer<EventLoopPromise<RESPValue>>(initialCapacity: 8)
    private let pushHandler: (@Sendable (RESPValue) -> Void)?
    private let logger: Logger

    init(reader: HiredisReader, pushHandler: (@Sendable (RESPValue) -> Void)?, logger: Logger) {
        self.reader = reader
        self.pushHandler = pushHandler
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        do {
            try reader.feed(bytes)
            while let reply = try reader.next() {
                if let promise = pending.popFirst() {
                    promise.succeed(reply)
                } else if let pushHandler {
                    pushHandler(reply)
                } else {
                    logger.warning("unexpected Redis reply with no command waiting", metadata: ["redis.reply": "\(reply)"])
                }
            }
        } catch {
            logger.error("Redis protocol error; closing the connection", metadata: ["error": "\(error)"])
            failAll(error)
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        if let reply = command.promise { pending.append(reply) }
        context.write(wrapOutboundOut(command.bytes), promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("Redis connection error", metadata: ["error": "\(error)"])
        failAll(RedisError(.connectionClosed, "connection to Redis failed: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let promise = pending.popFirst() { promise.fail(error) }
    }
}

/// A connection to Redis: pipelined commands over SwiftNIO, RESP handled by hiredis.
///
/// Commands may be sent concurrently from any task; they are written in the order they reach
/// the connection's event loop and their replies are matched in the same order (pipelining).
/// No call ever blocks a thread.
public final class RedisConnection: Sendable {
    let channel: any Channel
    /// The configuration this connection was made from; through Sentinel, with ``RedisConfiguration/host``
    /// and ``RedisConfiguration/port`` set to the master it reached.
    public let configuration: RedisConfiguration

    private init(channel: any Channel, configuration: RedisConfiguration) {
        self.channel = channel
        self.configuration = configuration
    }

    /// Opens a connection, then sends `AUTH` and `SELECT` as configured.
    ///
    /// With ``RedisConfiguration/sentinel`` set, the master is looked up first: the sentinels
    /// are asked in turn `SENTINEL get-master-addr-by-name`, the master they name is connected
    /// to and checked with `ROLE`. An answer that is stale (the named server is down or no
    /// longer a master — a failover in progress) is retried twice with the configuration's
    /// backoff before ``RedisError`` `.masterUnavailable` is thrown. The returned connection's
    /// ``configuration`` then holds the master's address. A connection is one TCP connection:
    /// it does not follow a later failover by itself (``RedisSubscriber`` does).
    ///
    /// - Parameter pushHandler: receives replies no command waits for (pub/sub messages). It is
    ///   called on the connection's event loop and must not block.
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        pushHandler: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        guard configuration.sentinel != nil else {
            return try await connectDirect(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger, pushHandler: pushHandler)
        }
        let resolver = RedisSentinelResolver(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        var attempt = 0
        while true {
            do {
                return try await resolver.connectToMaster(pushHandler: pushHandler)
            } catch let error as RedisError where error.kind == .masterUnavailable && attempt < 2 {
                attempt += 1
                let delay = RedisSubscriber.backoff(attempt: attempt, base: configuration.reconnectBaseDelay, max: configuration.reconnectMaxDelay)
                logger.info("retrying the Sentinel lookup in \(delay)", metadata: ["redis": "\(configuration)", "error": "\(error)"])
                try await Task.sleep(for: delay)
            }
        }
    }

    /// Opens a connection to `configuration.host`:`port` (ignoring ``RedisConfiguration/sentinel``),
    /// then sends `AUTH` and `SELECT` as configured, each bounded by the connect timeout.
    static func connectDirect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        pushHandler: (@Sendable (RESPValue) -> Void)?
    ) async throws -> RedisConnection {
        let timeout = configuration.connectTimeout.timeAmount
        let channel = try await ClientBootstrap(group: eventLoopGroup)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let reader = try HiredisReader()
                    try channel.pipeline.syncOperations.addHandler(
                        RedisChannelHandler(reader: reader, pushHandler: pushHandler, logger: logger)
                    )
                }
            }
            .connect(host: configuration.host, port: configuration.port)
            .get()
        let connection = RedisConnection(channel: channel, configuration: configuration)
        do {
            if let password = configuration.password {
                var auth = ["AUTH"]
                if let user = configuration.username { auth.append(user) }
                auth.append(password)
                _ = try await connection.command(auth, timeout: configuration.connectTimeout)
            }
            if configuration.database != 0 {
                _ = try await connection.command(["SELECT", String(configuration.database)], timeout: configuration.connectTimeout)
            }
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// Sends a command and returns its reply, error replies included as `.error`.
    public func send(_ arguments: [String]) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: 64)
        RedisCommandEncoder.encode(arguments, into: &bytes)
        return try await send(encoded: bytes)
    }

    /// Sends an already-encoded command and returns its reply.
    public func send(encoded bytes: ByteBuffer) async throws -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        // On a closed channel the write never reaches the handler (its pending list), so the
        // reply promise would never complete: fail it when the write itself fails.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            promise.fail(RedisError(.connectionClosed, "could not send the command to Redis: \(error)"))
        }
        channel.writeAndFlush(RedisOutboundCommand(bytes: bytes, promise: promise), promise: written)
        return try await promise.futureResult.get()
    }

    /// Sends a command and returns its reply; an error reply throws ``RedisError`` (`.server`).
    @discardableResult
    public func command(_ arguments: [String]) async throws -> RESPValue {
        let reply = try await send(arguments)
        if case .error(let message) = reply {
            throw RedisError(.server, "\(arguments.first ?? "") failed: \(message)")
        }
        return reply
    }

    /// Sends a command and returns its reply; if none arrives within `timeout` the connection
    /// is closed (a late reply could no longer be matched) and ``RedisError`` `.timeout` thrown.
    func send(encoded bytes: ByteBuffer, timeout: Duration, name: String) async throws -> RESPValue {
        let fired = OnceFlag()
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: timeout.timeAmount) {
            fired.set()
            channel.close(promise: nil)
        }
        do {
            let reply = try await send(encoded: bytes)
            timer.cancel()
            return reply
        } catch {
            timer.cancel()
            if fired.isSet { throw RedisError(.timeout, "\(name) got no reply within \(timeout)") }
            throw error
        }
    }

    /// Sends already-encoded commands pipelined in one write and returns their replies in the
    /// same order (error replies included as `.error`). If the replies do not all arrive within
    /// `timeout` the connection is closed and ``RedisError`` `.timeout` thrown.
    public func send(pipelined commands: [ByteBuffer], timeout: Duration) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let channel = self.channel
        let loop = channel.eventLoop
        let promises = commands.map { _ in loop.makePromise(of: RESPValue.self) }
        let fired = OnceFlag()
        let timer = loop.scheduleTask(in: timeout.timeAmount) {
            fired.set()
            channel.close(promise: nil)
        }
        loop.execute {
            for (bytes, promise) in zip(commands, promises) {
                let written = loop.makePromise(of: Void.self)
                written.futureResult.whenFailure { error in
                    promise.fail(RedisError(.connectionClosed, "could not send the command to Redis: \(error)"))
                }
                channel.write(RedisOutboundCommand(bytes: bytes, promise: promise), promise: written)
            }
            channel.flush()
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        do {
            for promise in promises { replies.append(try await promise.futureResult.get()) }
        } catch {
            timer.cancel()
            if fired.isSet { throw RedisError(.timeout, "\(commands.count) pipelined commands got no reply within \(timeout)") }
            throw error
        }
        timer.cancel()
        return replies
    }

    /// ``send(_:)`` bounded by `timeout` (see ``send(encoded:timeout:name:)``).
    func send(_ arguments: [String], timeout: Duration) async throws -> RESPValue {
        var bytes = channel.allocator.buffer(capacity: 64)
        RedisCommandEncoder.encode(arguments, into: &bytes)
        return try await send(encoded: bytes, timeout: timeout, name: arguments.first ?? "command")
    }

    /// ``command(_:)`` bounded by `timeout`: an error reply throws `.server`, silence `.timeout`.
    @discardableResult
    func command(_ arguments: [String], timeout: Duration) async throws -> RESPValue {
        let reply = try await send(arguments, timeout: timeout)
        if case .error(let message) = reply {
            throw RedisError(.server, "\(arguments.first ?? "") failed: \(message)")
        }
        return reply
    }

    /// Writes a command whose reply is not awaited (it goes to the push handler, as pub/sub
    /// confirmations do).
    public func sendWithoutReply(_ arguments: [String]) {
        var bytes = channel.allocator.buffer(capacity: 64)
        RedisCommandEncoder.encode(arguments, into: &bytes)
        channel.writeAndFlush(RedisOutboundCommand(bytes: bytes, promise: nil), promise: nil)
    }

    /// Writes already-encoded commands — any number, pipelined in one write — whose replies are
    /// not awaited: they go to the connection's push handler (connect with one, or every reply
    /// is logged as unexpected). Returns once the bytes are handed to the socket, not once Redis
    /// answered, so a caller writing in a loop is slowed down by a Redis that stops reading
    /// instead of growing memory. Do not mix with commands that await replies on the same
    /// connection: replies are matched to waiting commands in order.
    public func write(encoded bytes: ByteBuffer) async throws {
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(RedisOutboundCommand(bytes: bytes, promise: nil), promise: written)
        do {
            try await written.futureResult.get()
        } catch {
            throw RedisError(.connectionClosed, "could not write to Redis: \(error)")
        }
    }

    /// `PUBLISH channel message`; returns how many subscribers received it.
    @discardableResult
    public func publish(_ message: ByteBuffer, to channel: String) async throws -> Int {
        var bytes = self.channel.allocator.buffer(capacity: message.readableBytes + channel.utf8.count + 32)
        RedisCommandEncoder.encode([ByteBuffer(string: "PUBLISH"), ByteBuffer(string: channel), message], into: &bytes)
        let reply = try await send(encoded: bytes)
        if case .error(let text) = reply { throw RedisError(.server, "PUBLISH failed: \(text)") }
        return Int(reply.int ?? 0)
    }

    /// Completes when the connection is closed, by either side.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Whether the TCP connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Closes the connection; commands still waiting fail with `.connectionClosed`.
    public func close() async {
        try? await channel.close()
    }
}

/// A flag that is set once, from any thread: whether a command's timer went off, whether a
/// subscription already left its master.
final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)
    /// Sets the flag; true only for the call that set it.
    @discardableResult
    func set() -> Bool { value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged }
    /// Whether the flag is set.
    var isSet: Bool { value.load(ordering: .acquiring) }
}
