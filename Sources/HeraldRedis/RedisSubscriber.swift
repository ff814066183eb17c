import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// One pub/sub message as Redis delivers it.
public struct RedisPubSubMessage: Sendable {
    /// The pattern that matched, for `PSUBSCRIBE` deliveries.
    public var pattern: String?
    /// The channel the message was published on.
    public var channel: String
    /// The payload, verbatim.
    public var payload: ByteBuffer

    public init(pattern: String?, channel: String, payload: ByteBuffer) {
        self.pattern = pattern
        self.channel = channel
        self.payload = payload
    }

    /// Interprets a RESP2 push (`message` / `pmessage` array); other pushes give `nil`.
    public init?(push: RESPValue) {
        guard case .array(let items) = push, let kind = items.first?.string else { return nil }
        switch kind {
        case "message" where items.count == 3:
            guard let channel = items[1].string, case .bulkString(let payload) = items[2] else { return nil }
            self.init(pattern: nil, channel: channel, payload: payload)
        case "pmessage" where items.count == 4:
            guard let channel = items[2].string, case .bulkString(let payload) = items[3] else { return nil }
            self.init(pattern: items[1].string, channel: channel, payload: payload)
        default:
            return nil
        }
    }
}

/// The messages of a ``RedisSubscriber``, in arrival order, across reconnections.
public struct RedisMessages: AsyncSequence, Sendable {
    public typealias Element = RedisPubSubMessage
    fileprivate let stream: AsyncStream<RedisPubSubMessage>

    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate var base: AsyncStream<RedisPubSubMessage>.AsyncIterator
        public mutating func next() async -> RedisPubSubMessage? { await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}

/// A long-lived Redis subscription that survives connection loss.
///
/// Run it as a `Service`: it connects, sends `PSUBSCRIBE`/`SUBSCRIBE`, and hands every message to
/// ``messages``. When the connection drops it reconnects with jittered exponential backoff and
/// subscribes again, logging each step. The reader never blocks: messages go into a bounded
/// buffer, and when the consumer falls that far behind, new messages are dropped and counted
/// (Redis itself would otherwise cut the subscriber off at its pub/sub output-buffer limit).
public final class RedisSubscriber: Service, Sendable {
    /// Where Redis is.
    public let configuration: RedisConfiguration
    /// Patterns for `PSUBSCRIBE`.
    public let patterns: [String]
    /// Channels for `SUBSCRIBE`.
    public let channels: [String]
    /// The messages received; iterate it from one task.
    public let messages: RedisMessages

    private let continuation: AsyncStream<RedisPubSubMessage>.Continuation
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let subscribedFlag = Atomic<Bool>(false)
    private let droppedCounter = Atomic<Int>(0)
    private let reconnectCounter = Atomic<Int>(0)
    /// `herald_events_dropped_total{reason="redis_buffer_full"}`.
    private let droppedMetric: Counter
    /// `herald_redis_reconnects_total`.
    private let reconnectsMetric: Counter

    private struct State {
        var connection: RedisConnection?
        var pendingConfirmations = 0
    }

    /// - Parameters:
    ///   - bufferSize: how many messages may wait for the consumer before new ones are dropped.
    ///   - metricsFactory: where drops (`herald_events_dropped_total{reason="redis_buffer_full"}`)
    ///     and reconnects (`herald_redis_reconnects_total`) are counted; the bootstrapped
    ///     `MetricsSystem` by default.
    public init(
        configuration: RedisConfiguration,
        patterns: [String] = [],
        channels: [String] = [],
        bufferSize: Int = 65_536,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        let factory = metricsFactory ?? MetricsSystem.factory
        self.droppedMetric = Counter(label: "herald_events_dropped_total", dimensions: [("reason", "redis_buffer_full")], factory: factory)
        self.reconnectsMetric = Counter(label: "herald_redis_reconnects_total", factory: factory)
        self.configuration = configuration
        self.patterns = patterns
        self.channels = channels
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        let (stream, continuation) = AsyncStream.makeStream(
            of: RedisPubSubMessage.self,
            bufferingPolicy: .bufferingOldest(bufferSize)
        )
        self.messages = RedisMessages(stream: stream)
        self.continuation = continuation
    }

    /// True while connected and every subscription is confirmed.
    public var isSubscribed: Bool { subscribedFlag.load(ordering: .relaxed) }
    /// Messages dropped because the consumer fell behind.
    public var droppedMessages: Int { droppedCounter.load(ordering: .relaxed) }
    /// How many times the subscription had to reconnect.
    public var reconnects: Int { reconnectCounter.load(ordering: .relaxed) }

    public func run() async throws {
        var attempt = 0
        defer { continuation.finish() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let logger = self.logger
            do {
                logger.info("connecting to Redis", metadata: ["redis": "\(configuration)", "redis.attempt": "\(attempt)"])
                let connection = try await RedisConnection.connect(
                    configuration: configuration,
                    eventLoopGroup: eventLoopGroup,
                    logger: logger,
                    pushHandler: { [self] reply in self.handlePush(reply) }
                )
                state.withLock {
                    $0.connection = connection
                    $0.pendingConfirmations = patterns.count + channels.count
                }
                if !patterns.isEmpty { connection.sendWithoutReply(["PSUBSCRIBE"] + patterns) }
                if !channels.isEmpty { connection.sendWithoutReply(["SUBSCRIBE"] + channels) }
                if patterns.isEmpty && channels.isEmpty { subscribedFlag.store(true, ordering: .relaxed) }
                attempt = 0
                await withTaskCancellationOrGracefulShutdownHandler {
                    try? await connection.closeFuture.get()
                } onCancelOrGracefulShutdown: {
                    connection.channel.close(promise: nil)
                }
                subscribedFlag.store(false, ordering: .relaxed)
                state.withLock { $0.connection = nil }
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.warning("lost the Redis subscription connection; reconnecting", metadata: ["redis": "\(configuration)"])
            } catch {
                subscribedFlag.store(false, ordering: .relaxed)
                logger.warning("could not connect to Redis", metadata: ["redis": "\(configuration)", "error": "\(error)", "redis.attempt": "\(attempt)"])
            }
            attempt += 1
            reconnectCounter.add(1, ordering: .relaxed)
            reconnectsMetric.increment()
            let delay = Self.backoff(attempt: attempt, base: configuration.reconnectBaseDelay, max: configuration.reconnectMaxDelay)
            logger.info("retrying Redis in \(delay)", metadata: ["redis": "\(configuration)"])
            // A graceful shutdown during the wait ends it early; the loop then exits at the top.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
        }
        logger.info("Redis subscriber stopped")
    }

    /// Full-jitter exponential backoff: a random delay in [base, min(max, base·2^attempt)].
    static func backoff(attempt: Int, base: Duration, max: Duration) -> Duration {
        let baseMs = Double(base.components.seconds) * 1000 + Double(base.components.attoseconds) / 1e15
        let maxMs = Double(max.components.seconds) * 1000 + Double(max.components.attoseconds) / 1e15
        let ceiling = Swift.min(maxMs, baseMs * pow2(Swift.min(attempt, 20)))
        return .milliseconds(Int64(Double.random(in: baseMs...Swift.max(baseMs, ceiling))))
    }

    private static func pow2(_ n: Int) -> Double { Double(1 << n) }

    private func handlePush(_ reply: RESPValue) {
        if let message = RedisPubSubMessage(push: reply) {
            if case .dropped = continuation.yield(message) {
                let dropped = droppedCounter.add(1, ordering: .relaxed).newValue
                droppedMetric.increment()
                if dropped == 1 || dropped % 10_000 == 0 {
                    logger.error("Redis messages dropped: the consumer is behind", metadata: ["redis.dropped": "\(dropped)", "redis.channel": "\(message.channel)"])
                }
            }
            return
        }
        guard case .array(let items) = reply, let kind = items.first?.string else {
            if case .error(let text) = reply {
                logger.error("Redis refused a subscription command", metadata: ["redis.error": "\(text)"])
            }
            return
        }
        if kind == "psubscribe" || kind == "subscribe" {
            let done = state.withLock { state -> Bool in
                state.pendingConfirmations -= 1
                return state.pendingConfirmations <= 0
            }
            logger.debug("Redis subscription confirmed", metadata: ["redis.\(kind)": "\(items.count > 1 ? items[1].string ?? "" : "")"])
            if done {
                subscribedFlag.store(true, ordering: .relaxed)
                logger.info("subscribed to Redis", metadata: ["redis.patterns": "\(patterns)", "redis.channels": "\(channels)"])
            }
        }
    }
}

extension Duration {
    /// The duration as NIO's `TimeAmount` (shared with the other Herald modules).
    package var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
