import CoreMetrics
import HeraldCore
import HeraldRedis
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Running several Herald nodes behind a load balancer, sharing one Redis.
///
/// Laravel's broadcasts reach every node anyway (each one subscribes to Laravel's channels).
/// Events that enter *one* node — the Pusher and laravel-echo-server HTTP APIs, client events
/// (whispers), ``Relay/publish(_:)`` — are sent once, after the plugins, on a Redis channel the
/// nodes share; every other node delivers them to its own subscribers, without running the
/// plugins again and without sending them on. See ``ClusterBus``.
public struct ClusterConfiguration: Sendable, Hashable {
    /// The Redis pub/sub channel the nodes share; `nil` uses
    /// ``defaultChannel(keyPrefix:)``. Every node of one cluster must use the same one, and
    /// only they: nodes serving other applications on the same Redis need another.
    public var channel: String?
    /// This node's id, written into every message it sends so it can ignore its own. Must
    /// differ between nodes (two nodes with one id would drop each other's events); the default
    /// is random per process.
    public var nodeID: String
    /// Events that may wait for the cluster publisher before new ones are dropped (and counted
    /// in `herald_cluster_events_dropped_total{reason="queue_full"}`).
    public var queueSize: Int
    /// How long a node's presence heartbeat in Redis is valid (refreshed every third of it): a
    /// node that stops (`kill -9`, a network split) has its presence members removed, and
    /// their leaves announced, within about this long. See ``ClusterPresence``.
    public var presenceTTL: Duration

    /// The first part of every default cluster channel name.
    public static let baseChannel = "herald:cluster"

    /// Longest node id accepted.
    public static let maxNodeIDLength = 64

    /// - Parameters:
    ///   - channel: the shared channel; `nil` derives it from the key prefix.
    ///   - nodeID: this node's id; `nil` makes a random one.
    ///   - queueSize: events waiting for the publisher before drops.
    ///   - presenceTTL: how long a silent node's presence members stay (at least 1 s).
    public init(channel: String? = nil, nodeID: String? = nil, queueSize: Int = 65_536, presenceTTL: Duration = .seconds(30)) {
        self.channel = channel
        self.nodeID = nodeID ?? Self.randomNodeID()
        self.queueSize = queueSize
        self.presenceTTL = max(presenceTTL, .seconds(1))
    }

    /// The channel used when none is configured: `herald:cluster` when Laravel's key prefix is
    /// empty, else `herald:cluster:<prefix>` (`herald:cluster:laravel_database_`).
    ///
    /// Suffixed, not prefixed, on purpose: applications sharing one Redis with different
    /// prefixes get separate clusters, and the name stays outside the `<prefix>*` pattern
    /// Herald subscribes to for Laravel's broadcasts (with an empty prefix that pattern is `*`
    /// and matches it anyway; the ingest then ignores the pattern's copy).
    public static func defaultChannel(keyPrefix: String) -> String {
        keyPrefix.isEmpty ? baseChannel : baseChannel + ":" + keyPrefix
    }

    /// 16 random characters from `[A-Za-z0-9]` (about 95 bits).
    public static func randomNodeID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<16).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }, as: UTF8.self)
    }

    /// Why `nodeID` cannot be used, or `nil` when it can: 1…64 characters, no whitespace or
    /// control characters.
    public static func problem(nodeID: String) -> String? {
        if nodeID.isEmpty { return "the cluster node id is empty" }
        if nodeID.count > maxNodeIDLength { return "the cluster node id is longer than \(maxNodeIDLength) characters" }
        if nodeID.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return "the cluster node id '\(nodeID)' contains whitespace or control characters"
        }
        return nil
    }

    /// Why `channel` cannot be used as the cluster channel, or `nil` when it can.
    public static func problem(channel: String) -> String? {
        if channel.isEmpty { return "the cluster channel is empty" }
        if channel.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "the cluster channel contains control characters"
        }
        return nil
    }
}

extension HeraldConfiguration {
    /// The Redis channel the cluster uses (``ClusterConfiguration/channel``, or the default for
    /// ``keyPrefix``); `nil` when ``cluster`` is off.
    public var clusterChannel: String? {
        cluster.map { $0.channel ?? ClusterConfiguration.defaultChannel(keyPrefix: keyPrefix) }
    }
}

/// What the cluster bus counted (see ``ClusterBus/statistics``).
public struct ClusterStatistics: Sendable, Hashable {
    /// Events published to the cluster channel.
    public var sent: Int
    /// Events of other nodes delivered here.
    public var received: Int
    /// Events not sent (queue full, Redis unreachable or lost mid-write, payload not JSON) or
    /// received but unreadable.
    public var dropped: Int
}

/// Why the cluster bus dropped an event, as the `reason` label of
/// `herald_cluster_events_dropped_total`.
enum ClusterDropReason: String, CaseIterable, Sendable {
    /// The publisher's queue was full (Redis slower than the events, or unreachable).
    case queueFull = "queue_full"
    /// Not written: the Redis connection failed mid-write, Redis was unreachable at shutdown,
    /// or the publisher had already stopped.
    case notSent = "not_sent"
    /// An event whose `data` is not one JSON value (in-process events are not validated on the
    /// way in; the envelope could not carry it).
    case invalidData = "invalid_data"
    /// A message on the cluster channel that is not a readable envelope.
    case badEnvelope = "bad_envelope"
}

/// The cluster's `herald_cluster_*` metrics, created up front (only when the cluster is on).
struct ClusterMetrics: Sendable {
    let sent: Counter
    let received: Counter
    private let dropped: [Counter]

    enum Name {
        static let sent = "herald_cluster_events_sent_total"
        static let received = "herald_cluster_events_received_total"
        static let dropped = "herald_cluster_events_dropped_total"
    }

    init(factory: any MetricsFactory) {
        sent = Counter(label: Name.sent, factory: factory)
        received = Counter(label: Name.received, factory: factory)
        dropped = ClusterDropReason.allCases.map { Counter(label: Name.dropped, dimensions: [("reason", $0.rawValue)], factory: factory) }
    }

    func dropped(_ reason: ClusterDropReason) -> Counter {
        switch reason {
        case .queueFull: dropped[0]
        case .notSent: dropped[1]
        case .invalidData: dropped[2]
        case .badEnvelope: dropped[3]
        }
    }
}

/// The node bus: sends the events that entered this node to the other nodes through Redis,
/// and hands theirs to the router.
///
/// **Out.** The router calls `send(_:)` once per event that entered this node (HTTP APIs,
/// client events, in-process), after the plugins and before its local fan-out. That is one
/// lock and an append to a bounded queue — nothing is awaited on the hot path; when the queue
/// is full the event is dropped for the other nodes and counted. One publisher task takes
/// whatever is queued, encodes each event as a `ClusterEnvelope` and writes the `PUBLISH`
/// commands pipelined, in one write, on a connection of its own (replies are not awaited;
/// an error reply is logged). It reconnects with full-jitter backoff; events queued meanwhile
/// wait (up to the queue's size).
///
/// **In.** The relay's Redis subscription also `SUBSCRIBE`s the cluster channel; the ingest
/// hands its messages to `consume(_:router:)`, which decodes them, ignores this node's own,
/// and calls `Router.deliverRemote(_:)`: local fan-out only, no plugins, never sent on.
///
/// Delivery is what Redis pub/sub gives: at most once. An event published while a node's
/// subscription is down (a Redis restart, a failover) does not reach that node's clients.
public final class ClusterBus: Sendable {
    /// This node's id.
    public let nodeID: String
    /// The Redis channel the nodes share.
    public let channel: String

    private let redis: RedisConfiguration
    private let outbox: ClusterOutbox<ClusterMessage>
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let metrics: ClusterMetrics
    private let sentCount = Atomic<Int>(0)
    private let receivedCount = Atomic<Int>(0)
    private let droppedCount = Atomic<Int>(0)
    /// The publisher's connection while it has one (closed by ``finish()``'s grace timer).
    private let connection = Mutex<RedisConnection?>(nil)
    /// How long the publisher may keep flushing after ``finish()`` before its connection is
    /// closed under it (a Redis that stopped reading must not hold shutdown up).
    private let shutdownGrace: Duration

    /// Most events per pipelined write.
    static let batchSize = 512

    init(
        configuration: ClusterConfiguration,
        channel: String,
        redis: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        metricsFactory: any MetricsFactory,
        shutdownGrace: Duration = .seconds(5),
        logger: Logger
    ) {
        self.nodeID = configuration.nodeID
        self.channel = channel
        self.redis = redis
        self.outbox = ClusterOutbox(capacity: configuration.queueSize)
        self.eventLoopGroup = eventLoopGroup
        self.metrics = ClusterMetrics(factory: metricsFactory)
        self.shutdownGrace = shutdownGrace
        var logger = logger
        logger[metadataKey: "herald.cluster.node"] = "\(configuration.nodeID)"
        self.logger = logger
    }

    /// What was sent, received and dropped so far.
    public var statistics: ClusterStatistics {
        ClusterStatistics(
            sent: sentCount.load(ordering: .relaxed),
            received: receivedCount.load(ordering: .relaxed),
            dropped: droppedCount.load(ordering: .relaxed)
        )
    }

    // MARK: Out

    /// Queues `event` for the other nodes (called by the router, after the plugins). Never
    /// waits; drops and counts when the queue is full.
    func send(_ event: Event) {
        enqueue(.event(event), channel: event.channel, name: event.name)
    }

    /// Queues a presence change this node decided for the other nodes (see ``ClusterPresence``).
    func send(_ notice: PresenceNotice) {
        enqueue(.presence(notice), channel: notice.channel.name, name: notice.joined ? "presence join" : "presence leave")
    }

    /// Queues a Pusher user's `terminate_connections` for the other nodes.
    func sendTerminate(appID: String, userID: String) {
        enqueue(.terminate(appID: appID, userID: userID), channel: "-", name: "terminate_connections")
    }

    private func enqueue(_ message: ClusterMessage, channel: String, name: String) {
        let reason: ClusterDropReason
        switch outbox.push(message) {
        case .queued: return
        case .full: reason = .queueFull
        case .finished: reason = .notSent
        }
        let dropped = drop(reason)
        if dropped == 1 || dropped % 10_000 == 0 {
            logger.error("cluster queue \(reason == .queueFull ? "full" : "closed"): event not sent to the other nodes", metadata: [
                "herald.channel": "\(channel)", "herald.event": "\(name)", "herald.cluster.dropped": "\(dropped)",
            ])
        }
    }

    /// No more events will be sent: the publisher writes what is queued (for at most the
    /// shutdown grace period) and ``run()`` returns.
    func finish() {
        outbox.finish()
        guard let open = connection.withLock({ $0 }) else { return }
        eventLoopGroup.any().scheduleTask(in: shutdownGrace.timeAmount) {
            Task { await open.close() }
        }
    }

    /// Runs the publisher until ``finish()`` (or cancellation) and the queue is written, or
    /// until shutdown while Redis is unreachable; what could not be written is counted.
    func run() async {
        logger.info("cluster publisher starting", metadata: ["herald.cluster.channel": "\(channel)", "redis": "\(redis)"])
        var attempt = 0
        var carried: [ClusterMessage] = []
        while true {
            let open: RedisConnection
            do {
                open = try await RedisConnection.connect(configuration: redis, eventLoopGroup: eventLoopGroup, logger: logger, pushHandler: { [logger] reply in
                    // PUBLISH answers with the receiver count; only errors matter.
                    if case .error(let text) = reply {
                        logger.error("Redis refused a cluster PUBLISH", metadata: ["redis.error": "\(text)"])
                    }
                })
            } catch {
                attempt += 1
                logger.warning("cluster publisher could not connect to Redis", metadata: [
                    "redis": "\(redis)", "error": "\(error)", "redis.attempt": "\(attempt)",
                ])
                if Task.isCancelled || Task.isShuttingDownGracefully || outbox.isFinished { break }
                let delay = Self.backoff(attempt: attempt, base: redis.reconnectBaseDelay, max: redis.reconnectMaxDelay)
                await cancelWhenGracefulShutdown { try? await Task.sleep(for: delay) }
                continue
            }
            logger.info("cluster publisher connected to Redis", metadata: ["redis": "\(redis)", "redis.attempt": "\(attempt)"])
            attempt = 0
            connection.withLock { $0 = open }
            // Noticed at once, not at the next event: the publisher reconnects right away.
            open.closeFuture.whenComplete { [outbox] _ in outbox.wake() }
            let lost = await publish(on: open, carried: &carried)
            connection.withLock { $0 = nil }
            await open.close()
            if !lost { break }
            logger.warning("cluster publisher lost its Redis connection; reconnecting", metadata: ["redis": "\(redis)"])
        }
        outbox.finish()
        let unsent = carried.count + outbox.removeAll()
        if unsent > 0 {
            droppedCount.add(unsent, ordering: .relaxed)
            metrics.dropped(.notSent).increment(by: unsent)
            logger.warning("cluster publisher stopped with events not sent", metadata: ["herald.cluster.unsent": "\(unsent)"])
        }
        logger.info("cluster publisher stopped")
    }

    /// Writes batches until the queue is finished and empty (returns false) or the connection
    /// is lost (returns true; a batch not yet written is left in `carried`).
    private func publish(on open: RedisConnection, carried: inout [ClusterMessage]) async -> Bool {
        let channelName = ByteBuffer(string: channel)
        let command = ByteBuffer(string: "PUBLISH")
        var envelope = ByteBuffer()
        while true {
            let batch: [ClusterMessage]
            if carried.isEmpty {
                guard let next = await outbox.next(max: Self.batchSize) else { return false }
                if next.isEmpty {
                    // Woken without events: the connection closed.
                    if open.isActive { continue }
                    return true
                }
                batch = next
            } else {
                batch = carried
                carried = []
            }
            guard open.isActive else {
                carried = batch
                return true
            }
            var bytes = ByteBuffer()
            var count = 0
            for message in batch {
                let event: Event
                switch message {
                case .event(let each):
                    event = each
                case .presence(let notice):
                    envelope.clear()
                    ClusterEnvelope.encode(notice, node: nodeID, into: &envelope)
                    RedisCommandEncoder.encode([command, channelName, envelope], into: &bytes)
                    count += 1
                    continue
                case .terminate(let app, let user):
                    envelope.clear()
                    ClusterEnvelope.encodeTerminate(appID: app, userID: user, node: nodeID, into: &envelope)
                    RedisCommandEncoder.encode([command, channelName, envelope], into: &bytes)
                    count += 1
                    continue
                }
                if (try? JSONReader.validate(event.data)) == nil {
                    // In-process events (and plugins' outputs) are not validated on the way in;
                    // the envelope is JSON, so a payload that is not would poison it.
                    let dropped = drop(.invalidData)
                    logger.warning("event not sent to the cluster: its data is not one JSON value", metadata: [
                        "herald.channel": "\(event.channel)", "herald.event": "\(event.name)", "herald.cluster.dropped": "\(dropped)",
                    ])
                    continue
                }
                envelope.clear()
                ClusterEnvelope.encode(event, node: nodeID, into: &envelope)
                RedisCommandEncoder.encode([command, channelName, envelope], into: &bytes)
                count += 1
            }
            guard count > 0 else { continue }
            do {
                try await open.write(encoded: bytes)
                sentCount.add(count, ordering: .relaxed)
                metrics.sent.increment(by: count)
            } catch {
                // Written partly or not at all: Redis may have some of these; none is retried,
                // so none arrives twice.
                droppedCount.add(count, ordering: .relaxed)
                metrics.dropped(.notSent).increment(by: count)
                logger.error("cluster events not sent: the Redis connection failed mid-write", metadata: [
                    "error": "\(error)", "herald.cluster.unsent": "\(count)",
                ])
                return true
            }
        }
    }

    // MARK: In

    /// Handles `message` if it came on the cluster channel: decodes it and hands another
    /// node's event to `router` (its own are ignored). Returns false for any other channel
    /// (a Laravel broadcast).
    ///
    /// With an empty key prefix the Laravel pattern (`*`) matches the cluster channel too and
    /// Redis delivers each message twice, once per subscription: the pattern's copy is
    /// skipped here, so each event is delivered once.
    ///
    /// `terminate` closes a Pusher user's connections on this node (another node's
    /// `terminate_connections`).
    func consume(_ message: RedisPubSubMessage, router: Router, terminate: (_ appID: String, _ userID: String) -> Void = { _, _ in }) -> Bool {
        guard message.channel == channel else { return false }
        guard message.pattern == nil else { return true }
        let decoded: (node: String, message: ClusterMessage)
        do {
            decoded = try ClusterEnvelope.decodeMessage(message.payload)
        } catch {
            let dropped = drop(.badEnvelope)
            logger.warning("dropped an unreadable message on the cluster channel", metadata: [
                "herald.cluster.channel": "\(message.channel)", "herald.reason": "\(error)",
                "herald.bytes": "\(message.payload.readableBytes)", "herald.cluster.dropped": "\(dropped)",
            ])
            return true
        }
        guard decoded.node != nodeID else { return true }
        receivedCount.add(1, ordering: .relaxed)
        metrics.received.increment()
        switch decoded.message {
        case .event(let event): router.deliverRemote(event)
        case .presence(let notice): router.announceRemotePresence(notice)
        case .terminate(let app, let user): terminate(app, user)
        }
        return true
    }

    // MARK: Helpers

    /// Counts one drop; returns the total so far.
    private func drop(_ reason: ClusterDropReason) -> Int {
        metrics.dropped(reason).increment()
        return droppedCount.add(1, ordering: .relaxed).newValue
    }

    /// Full-jitter exponential backoff: a random delay in [base, min(max, base·2^attempt)].
    static func backoff(attempt: Int, base: Duration, max: Duration) -> Duration {
        let ceiling = Swift.min(max, base * (1 << Swift.min(attempt, 20)))
        guard ceiling > base else { return base }
        let span = (ceiling - base) / .milliseconds(1)
        return base + .milliseconds(Int64(Double.random(in: 0...span)))
    }
}

/// The publisher's bounded queue: the router appends under a short lock, the publisher takes
/// everything waiting at once.
final class ClusterOutbox<Element: Sendable>: Sendable {
    private struct State {
        var queue = CircularBuffer<Element>()
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
        /// ``wake()`` was called: the next ``next(max:)`` returns at once, possibly empty.
        var woken = false
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
    }

    /// What became of a pushed event.
    enum Push {
        case queued
        /// The queue holds `capacity` events.
        case full
        /// The publisher stopped.
        case finished
    }

    /// Appends `event` unless the queue is full or finished.
    func push(_ event: Element) -> Push {
        let (result, waiter) = state.withLock { state -> (Push, CheckedContinuation<Void, Never>?) in
            if state.finished { return (.finished, nil) }
            guard state.queue.count < capacity else { return (.full, nil) }
            state.queue.append(event)
            defer { state.waiter = nil }
            return (.queued, state.waiter)
        }
        waiter?.resume()
        return result
    }

    /// Whether ``finish()`` was called.
    var isFinished: Bool { state.withLock { $0.finished } }

    /// Waits for events and takes up to `max` of them, oldest first; empty after ``wake()``;
    /// `nil` once finished and empty. Cancelling the waiting task finishes the queue.
    func next(max: Int) async -> [Element]? {
        while true {
            let taken = state.withLock { state -> [Element]?? in
                defer { state.woken = false }
                if !state.queue.isEmpty {
                    let count = Swift.min(max, state.queue.count)
                    var batch: [Element] = []
                    batch.reserveCapacity(count)
                    for _ in 0..<count {
                        if let event = state.queue.popFirst() { batch.append(event) }
                    }
                    return .some(batch)
                }
                if state.finished { return .some(nil) }
                return state.woken ? .some([]) : nil
            }
            if let taken { return taken }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = state.withLock { state -> Bool in
                        if !state.queue.isEmpty || state.finished || state.woken { return true }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                finish()
            }
        }
    }

    /// Makes the publisher's wait (or its next one) return, with what is queued or empty.
    func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.woken = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Accepts no more events and wakes the publisher.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Empties the queue; returns how many events were in it.
    func removeAll() -> Int {
        state.withLock { state in
            defer { state.queue.removeAll() }
            return state.queue.count
        }
    }
}

extension Relay {
    /// The node bus for `configuration`, or `nil` when the cluster is off — or on without
    /// Redis, which is logged: there is nothing to share events through.
    static func makeCluster(
        configuration: HeraldConfiguration, eventLoopGroup: any EventLoopGroup, metricsFactory: any MetricsFactory, logger: Logger
    ) -> ClusterBus? {
        guard let cluster = configuration.cluster, let channel = configuration.clusterChannel else { return nil }
        guard let redis = configuration.redis else {
            logger.warning("cluster is on but no Redis is configured: running as a single node")
            return nil
        }
        return ClusterBus(configuration: cluster, channel: channel, redis: redis, eventLoopGroup: eventLoopGroup, metricsFactory: metricsFactory, logger: logger)
    }
}
