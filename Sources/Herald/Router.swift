import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import Synchronization

/// One event, encoded once per protocol, shared by every recipient.
struct EncodedBroadcast: Sendable {
    /// The Engine.IO message (`42[...]`), as polling responses carry it.
    let packet: ByteBuffer
    /// The same packet framed as a WebSocket text frame.
    let webSocketFrame: ByteBuffer
    /// The Pusher protocol message, framed as a WebSocket text frame.
    /// `nil` when the broadcast has no Pusher form (seed mode is a Socket.IO convention).
    let pusherFrame: ByteBuffer?
    /// Socket id excluded from delivery (`toOthers()`).
    let excludedSocketID: String?

    init(packet: ByteBuffer, pusherMessage: ByteBuffer?, excludedSocketID: String?) {
        self.packet = packet
        self.webSocketFrame = WebSocketFraming.frame(opcode: .text, payload: packet)
        self.pusherFrame = pusherMessage.map { WebSocketFraming.frame(opcode: .text, payload: $0) }
        self.excludedSocketID = excludedSocketID
    }

    /// An application event in both dialects: laravel-echo-server's `42["event","channel",data]`
    /// and Pusher's `{"event","channel","data":"<data as a JSON string>"}`.
    init(channelEvent name: String, channel: String, data: ByteBuffer, excludedSocketID: String?, userID: String? = nil, dataForm: PusherMessage.DataForm = .string) {
        var packet = ByteBuffer()
        packet.reserveCapacity(data.readableBytes + name.utf8.count + channel.utf8.count + 16)
        SocketIOCodec.writeChannelEvent(event: name, channel: channel, data: data, into: &packet)
        self.init(packet: packet, pusherMessage: PusherMessage.event(name, channel: channel, data: data, userID: userID, dataForm: dataForm), excludedSocketID: excludedSocketID)
    }
}

/// Counters the router keeps (read them through ``Router/statistics``).
public struct RouterStatistics: Sendable, Hashable {
    /// Events accepted into the router.
    public var eventsIn: Int
    /// Events dropped because the router's queue was full.
    public var eventsDropped: Int
    /// Recipient deliveries scheduled.
    public var deliveries: Int
}

/// Routes events to subscribers.
///
/// Every event, whatever its source (Redis, HTTP, in-process, client), enters through
/// ``publish(_:)`` into one bounded queue. The router's task takes them in order, runs the
/// plugin chain once per event, encodes the result once, and hands the bytes to one task per
/// event loop that writes them to every local recipient and flushes once. The hot path has no
/// actor hop and no allocation per recipient.
public actor Router {
    private let registry: ChannelRegistry
    private let plugins: PluginChain
    private let emitToAll: Bool
    private let logger: Logger
    private let stream: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let counters = Counters()
    /// The registry's metrics (`herald_events_in_total`, `herald_deliveries_total`, drops).
    private let metrics: HeraldMetrics
    /// The last event of every Pusher cache channel, written here once per event (D.6).
    nonisolated let channelCache: PusherChannelCache

    final class Counters: Sendable {
        let eventsIn = Atomic<Int>(0)
        let eventsDropped = Atomic<Int>(0)
        let deliveries = Atomic<Int>(0)
    }

    /// - Parameters:
    ///   - queueSize: events that may wait for routing before new ones are dropped (and counted).
    ///   - cachedChannels: most Pusher cache channels whose last event is kept (oldest evicted).
    public init(registry: ChannelRegistry, plugins: PluginChain = PluginChain(), emitToAll: Bool, queueSize: Int = 65_536, cachedChannels: Int = 10_000, logger: Logger) {
        self.registry = registry
        self.metrics = registry.metrics
        self.channelCache = PusherChannelCache(capacity: cachedChannels)
        self.plugins = plugins
        self.emitToAll = emitToAll
        self.logger = logger
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(queueSize))
    }

    /// Queues an event for delivery. Returns false when the queue is full or the router stopped.
    @discardableResult
    public nonisolated func publish(_ event: Event) -> Bool {
        switch continuation.yield(event) {
        case .enqueued:
            counters.eventsIn.add(1, ordering: .relaxed)
            metrics.eventsIn(event.source).increment()
            return true
        case .dropped:
            let dropped = counters.eventsDropped.add(1, ordering: .relaxed).newValue
            metrics.dropped(.routerQueueFull).increment()
            if dropped == 1 || dropped % 10_000 == 0 {
                logger.error("router queue full: event dropped", metadata: ["herald.channel": "\(event.channel)", "herald.dropped": "\(dropped)"])
            }
            return false
        case .terminated:
            return false
        @unknown default:
            return false
        }
    }

    /// Current counters.
    public nonisolated var statistics: RouterStatistics {
        RouterStatistics(
            eventsIn: counters.eventsIn.load(ordering: .relaxed),
            eventsDropped: counters.eventsDropped.load(ordering: .relaxed),
            deliveries: counters.deliveries.load(ordering: .relaxed)
        )
    }

    /// Stops accepting events; ``run()`` returns once the queue is drained.
    public nonisolated func finish() { continuation.finish() }

    /// Routes events until ``finish()`` is called or the task is cancelled.
    public func run() async {
        for await event in stream {
            if plugins.isEmpty {
                route(event)
            } else {
                for output in await plugins.run(event, logger: logger) { route(output) }
            }
        }
    }

    /// Announces a presence change to `channel`'s members in both dialects
    /// (`presence:joining`/`presence:leaving` and `pusher_internal:member_added`/`member_removed`),
    /// bypassing plugins and seed mode. Callable from any thread.
    nonisolated func announcePresence(channel: String, member: PresenceMember, joined: Bool, socketID: String?, to audience: ChannelRegistry.Groups?) {
        guard let groups = audience else { return }
        var socketIO = ByteBuffer()
        member.json(socketID: joined ? socketID : nil).write(into: &socketIO)
        var packet = ByteBuffer()
        SocketIOCodec.writeChannelEvent(event: joined ? "presence:joining" : "presence:leaving", channel: channel, data: socketIO, into: &packet)
        let pusher = joined
            ? PusherMessage.memberAdded(channel: channel, member: member.pusherMember)
            : PusherMessage.memberRemoved(channel: channel, userID: member.key)
        let broadcast = EncodedBroadcast(packet: packet, pusherMessage: pusher, excludedSocketID: nil)
        let delivered = Self.deliver(broadcast, to: groups)
        counters.deliveries.add(delivered, ordering: .relaxed)
        metrics.deliveries.increment(by: delivered)
    }

    private func route(_ event: Event) {
        let kind = event.channelKind
        var delivered = 0
        let dataForm: PusherMessage.DataForm = event.source == .client ? .verbatim : .string
        // Cache channels remember their last event (one store per event, before fan-out).
        if PusherChannelName.isCacheChannel(event.channel) {
            channelCache.store(channel: event.channel, name: event.name, data: event.data, dataForm: dataForm)
        }
        if let groups = registry.groups(for: event.channel) {
            // Client events reach Pusher clients as sent (D.8), with the sender's presence id.
            let broadcast = EncodedBroadcast(
                channelEvent: event.name, channel: event.channel, data: event.data, excludedSocketID: event.excludedSocketID,
                userID: event.senderUserID, dataForm: dataForm
            )
            delivered += Self.deliver(broadcast, to: groups)
        }
        // Seed compatibility: public channels only; private and presence events never go to all.
        if emitToAll && kind == .public {
            var packet = ByteBuffer()
            packet.reserveCapacity(event.data.readableBytes + event.name.utf8.count + event.channel.utf8.count + 12)
            SocketIOCodec.writeEvent(name: event.channel + ":" + event.name, arguments: [event.data], into: &packet)
            // Seed mode is a Socket.IO convention; Pusher connections ignore this broadcast.
            let broadcast = EncodedBroadcast(packet: packet, pusherMessage: nil, excludedSocketID: event.excludedSocketID)
            delivered += Self.deliver(broadcast, to: registry.everyoneGroups())
        }
        counters.deliveries.add(delivered, ordering: .relaxed)
        if delivered > 0 { metrics.deliveries.increment(by: delivered) }
        if logger.logLevel <= .trace {
            logger.trace("routed event", metadata: ["herald.channel": "\(event.channel)", "herald.event": "\(event.name)", "herald.recipients": "\(delivered)"])
        }
    }

    /// Hands one broadcast to each event loop's members: one task per loop writes the shared
    /// bytes to every member; the loop's ``LoopFlusher`` flushes each dirty connection once per
    /// loop turn. Returns the number of recipients.
    static func deliver(_ broadcast: EncodedBroadcast, to groups: ChannelRegistry.Groups) -> Int {
        var count = 0
        for group in groups.values {
            let sessions = group.sessions
            let flusher = group.flusher
            count += sessions.count
            group.loop.execute {
                for recipient in sessions.values where recipient.deliver(broadcast) {
                    flusher.markDirty(recipient)
                }
            }
        }
        return count
    }
}
