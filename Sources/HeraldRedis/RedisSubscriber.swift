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

    /// Creates a message; `pattern` is `nil` for a `SUBSCRIBE` (not pattern) delivery.
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
    /// Each element is one pub/sub message.
    public typealias Element = RedisPubSubMessage
    fileprivate let stream: AsyncStream<RedisPubSubMessage>

    /// Iterates the messages; one iterator, used from one task.
    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate var base: AsyncStream<RedisPubSubMessage>.AsyncIterator
        /// The next message, waiting for it; `nil` once the subscriber has stopped.
        public mutating func next() async -> RedisPubSubMessage? { await base.next() }
    }

    /// Makes the iterator (the messages can be iterated once).
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}

/// A long-lived Redis subscription that survives connection loss.
///
/// Run it as a `Service`: it connects, sends `PSUBSCRIBE`/`SUBSCRIBE`, and hands every message to
/// ``messages``. When the connection drops it reconnects with jittered exponential backoff and
/// subscribes again, logging each step. The reader never blocks: messages go into a bounded
/// buffer, and when the consumer falls that far behind, new messages are dropped and counted
/// (Redis itself would otherwise cut the subscriber off at its pub/sub output-buffer limit).
///
/// With ``RedisConfiguration/sentinel`` set, every (re)connection first asks Sentinel for the
/// master and checks its `ROLE`. While subscribed, a second connection — to a sentinel —
/// listens for `+switch-master`: when Sentinel announces a failover of this master, the
/// subscriber leaves the old master at once and subscribes on the new one, without waiting for
/// the old master to drop its clients (which a forced failover does only when the old master is
/// reconfigured, seconds later, and a network partition may never do).
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
    private let failoverCounter = Atomic<Int>(0)
    /// Finds the master through Sentinel, when configured.
    private let resolver: RedisSentinelResolver?
    /// `herald_events_dropped_total{reason="redis_buffer_full"}`.
    private let droppedMetric: Counter
    /// `herald_redis_reconnects_total`.
    private let reconnectsMetric: Counter

    private struct State {
        var connection: RedisConnection?
        var pendingConfirmations = 0
        /// When the last subscribed connection was lost (or a failover announced), until the
        /// subscription is confirmed again: the outage the "subscribed" log reports.
        var lostAt: ContinuousClock.Instant?
        /// Set when a `+switch-master` notice closed the connection: the new master is known to
        /// be up, so the reconnection skips the backoff.
        var switchAnnounced = false
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
        self.resolver = configuration.sentinel.map { _ in
            RedisSentinelResolver(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        }
    }

    /// True while connected and every subscription is confirmed.
    public var isSubscribed: Bool { subscribedFlag.load(ordering: .relaxed) }
    /// Messages dropped because the consumer fell behind.
    public var droppedMessages: Int { droppedCounter.load(ordering: .relaxed) }
    /// How many times the subscription had to reconnect.
    public var reconnects: Int { reconnectCounter.load(ordering: .relaxed) }
    /// How many failovers announced by Sentinel the subscriber acted on: leaving the old master
    /// at a `+switch-master` notice (or when a sentinel names a new master as the watch begins),
    /// or cutting a reconnection wait short at one. Always 0 without Sentinel.
    public var failoversFollowed: Int { failoverCounter.load(ordering: .relaxed) }
    /// The server the subscription is connected to (through Sentinel: the master it found), or
    /// `nil` while it is not connected.
    public var connectedAddress: RedisAddress? {
        state.withLock { state in
            state.connection.map { RedisAddress(host: $0.configuration.host, port: $0.configuration.port) }
        }
    }

    /// Connects, subscribes and keeps the subscription up — reconnecting with backoff after
    /// connection loss — until the task is cancelled or a graceful shutdown begins; then finishes
    /// ``messages`` and returns.
    public func run() async throws {
        var attempt = 0
        defer { continuation.finish() }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let logger = self.logger
            var skipBackoff = false
            do {
                logger.info("connecting to Redis", metadata: ["redis": "\(configuration)", "redis.attempt": "\(attempt)"])
                let pushHandler: @Sendable (RESPValue) -> Void = { [self] reply in self.handlePush(reply) }
                let connection = if let resolver {
                    try await resolver.connectToMaster(pushHandler: pushHandler)
                } else {
                    try await RedisConnection.connect(
                        configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger, pushHandler: pushHandler
                    )
                }
                state.withLock {
                    $0.connection = connection
                    $0.pendingConfirmations = patterns.count + channels.count
                }
                if !patterns.isEmpty { connection.sendWithoutReply(["PSUBSCRIBE"] + patterns) }
                if !channels.isEmpty { connection.sendWithoutReply(["SUBSCRIBE"] + channels) }
                if patterns.isEmpty && channels.isEmpty { subscribedFlag.store(true, ordering: .relaxed) }
                attempt = 0
                await withTaskCancellationOrGracefulShutdownHandler {
                    if let resolver {
                        // Until the connection closes — by Redis, by a failover notice, or by
                        // shutdown — a second task watches Sentinel for failovers.
                        await withTaskGroup(of: Void.self) { group in
                            group.addTask { try? await connection.closeFuture.get() }
                            group.addTask { await self.followFailovers(of: connection, resolver: resolver) }
                            _ = await group.next()
                            group.cancelAll()
                        }
                    } else {
                        try? await connection.closeFuture.get()
                    }
                } onCancelOrGracefulShutdown: {
                    connection.channel.close(promise: nil)
                }
                subscribedFlag.store(false, ordering: .relaxed)
                let switched = state.withLock { state -> Bool in
                    defer { state.switchAnnounced = false }
                    state.connection = nil
                    if state.lostAt == nil { state.lostAt = .now }
                    return state.switchAnnounced
                }
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                if switched {
                    skipBackoff = true
                } else {
                    logger.warning("lost the Redis subscription connection; reconnecting", metadata: ["redis": "\(configuration)"])
                }
            } catch {
                subscribedFlag.store(false, ordering: .relaxed)
                logger.warning("could not connect to Redis", metadata: ["redis": "\(configuration)", "error": "\(error)", "redis.attempt": "\(attempt)"])
            }
            attempt += 1
            reconnectCounter.add(1, ordering: .relaxed)
            reconnectsMetric.increment()
            if skipBackoff { continue }
            let delay = Self.backoff(attempt: attempt, base: configuration.reconnectBaseDelay, max: configuration.reconnectMaxDelay)
            logger.info("retrying Redis in \(delay)", metadata: ["redis": "\(configuration)"])
            // A graceful shutdown during the wait ends it early; the loop then exits at the top.
            // Through Sentinel, so does a failover announcement: the new master is up now.
            await cancelWhenGracefulShutdown { await self.wait(delay) }
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
                let (lostAt, address) = state.withLock { state in
                    defer { state.lostAt = nil }
                    return (state.lostAt, state.connection.map { "\($0.configuration.host):\($0.configuration.port)" } ?? "")
                }
                var metadata: Logger.Metadata = ["redis.patterns": "\(patterns)", "redis.channels": "\(channels)", "redis.address": "\(address)"]
                if let lostAt {
                    // How long the subscription was down: the failover switch time, through Sentinel.
                    metadata["redis.outage"] = "\(ContinuousClock.now - lostAt)"
                }
                logger.info("subscribed to Redis", metadata: metadata)
            }
        }
    }
}

extension RedisSubscriber {
    /// Watches a sentinel for failovers of the master `connection` is subscribed on, until the
    /// task is cancelled (the connection closed) or a failover moves the subscription.
    ///
    /// A `+switch-master` notice for our master, or — when the watch (re)starts — a sentinel
    /// naming a master other than the one we are on, closes `connection`; ``run()`` then looks
    /// the master up again and re-subscribes there. A lost sentinel connection is reopened with
    /// backoff (to the next sentinel if need be); the subscription itself is not touched.
    fileprivate func followFailovers(of connection: RedisConnection, resolver: RedisSentinelResolver) async {
        let current = RedisAddress(host: connection.configuration.host, port: connection.configuration.port)
        let masterName = resolver.configuration.sentinel?.masterName ?? ""
        let left = OnceFlag()
        var attempt = 0
        while !Task.isCancelled && connection.isActive {
            do {
                let watch = try await resolver.watchSwitches { [self] notice in
                    guard notice.new != current else {
                        self.logger.debug("Sentinel announced a switch to the master we are on", metadata: ["redis.master": "\(current)"])
                        return
                    }
                    self.leave(connection, once: left, for: notice.new, masterName: masterName, announced: true, reason: "+switch-master from \(notice.old)")
                }
                attempt = 0
                if watch.master != current {
                    leave(connection, once: left, for: watch.master, masterName: masterName, announced: false, reason: "sentinel \(watch.sentinel) now names it")
                }
                await withTaskCancellationHandler {
                    try? await watch.connection.closeFuture.get()
                } onCancel: {
                    watch.connection.channel.close(promise: nil)
                }
                if Task.isCancelled || !connection.isActive { return }
                logger.warning("lost the connection to Sentinel that watches for failovers; reopening it", metadata: [
                    "redis.sentinel": "\(watch.sentinel)", "redis.master_name": "\(masterName)",
                ])
            } catch {
                if Task.isCancelled { return }
                logger.warning("cannot watch Sentinel for failovers; retrying", metadata: [
                    "redis.master_name": "\(masterName)", "error": "\(error)",
                ])
            }
            attempt += 1
            try? await Task.sleep(for: Self.backoff(attempt: attempt, base: configuration.reconnectBaseDelay, max: configuration.reconnectMaxDelay))
        }
    }

    /// Waits `delay` before the next connection attempt — less, through Sentinel, when Sentinel
    /// announces a failover of our master meanwhile (after a master crash that is the moment the
    /// replica is promoted, so waiting out a long backoff would only prolong the outage).
    fileprivate func wait(_ delay: Duration) async {
        guard let resolver else {
            try? await Task.sleep(for: delay)
            return
        }
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await Task.sleep(for: delay)
                return true
            }
            group.addTask { await self.waitForSwitch(resolver) }
            // The sleep ends the wait, and so does a failover notice; a watch that could not be
            // opened or was lost (false) does not.
            for await done in group where done {
                group.cancelAll()
                return
            }
        }
    }

    /// Watches a sentinel until it announces a failover of our master (true) or the watch
    /// cannot be opened, is lost or is cancelled (false).
    private func waitForSwitch(_ resolver: RedisSentinelResolver) async -> Bool {
        let (notices, continuation) = AsyncStream.makeStream(of: SentinelSwitchNotice.self, bufferingPolicy: .bufferingNewest(1))
        guard let watch = try? await resolver.watchSwitches(onSwitch: { continuation.yield($0) }) else { return false }
        watch.connection.closeFuture.whenComplete { _ in continuation.finish() }
        var iterator = notices.makeAsyncIterator()
        let notice = await iterator.next()
        await watch.connection.close()
        guard let notice, !Task.isCancelled else { return false }
        failoverCounter.add(1, ordering: .relaxed)
        logger.info("Sentinel announced a failover; connecting to the new master now", metadata: [
            "redis.master_name": "\(notice.masterName)", "redis.old_master": "\(notice.old)", "redis.master": "\(notice.new)",
        ])
        return true
    }

    /// Leaves the master `connection` is on because Sentinel moved `masterName` to `master`;
    /// `once` makes a second notice for the same connection a no-op.
    ///
    /// - Parameter announced: the move follows a `+switch-master` notice, so the new master is
    ///   up and the reconnection skips the backoff. (A sentinel that merely names another master
    ///   when the watch begins gets the usual backoff: sentinels that briefly disagree must not
    ///   make the subscriber bounce between masters at full speed.)
    private func leave(_ connection: RedisConnection, once: OnceFlag, for master: RedisAddress, masterName: String, announced: Bool, reason: String) {
        guard connection.isActive, once.set() else { return }
        subscribedFlag.store(false, ordering: .relaxed)
        state.withLock { state in
            if state.lostAt == nil { state.lostAt = .now }
            if announced { state.switchAnnounced = true }
        }
        failoverCounter.add(1, ordering: .relaxed)
        logger.warning("Sentinel reports a failover; moving the subscription to the new master", metadata: [
            "redis.master_name": "\(masterName)",
            "redis.old_master": "\(connection.configuration.host):\(connection.configuration.port)",
            "redis.master": "\(master)", "redis.reason": "\(reason)",
        ])
        connection.channel.close(promise: nil)
    }
}

extension Duration {
    /// The duration as NIO's `TimeAmount` (shared with the other Herald modules).
    package var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
