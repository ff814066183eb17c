import NIOCore
import Synchronization

/// A connection the router can deliver to (a Socket.IO session, a Pusher connection).
///
/// Conformers live on one event loop; the router calls ``deliver(_:)`` for each broadcast and
/// then ``flushDeliveries()`` once per batch, both on that loop, so neither hops.
protocol Recipient: AnyObject, Sendable {
    /// The loop the connection's state is confined to.
    var eventLoop: any EventLoop { get }
    /// Queues a broadcast (skipping it when this connection is the excluded sender) without
    /// flushing. Returns true when this made the connection dirty, i.e. it now needs one
    /// ``flushDeliveries()``. Called on ``eventLoop``.
    func deliver(_ broadcast: EncodedBroadcast) -> Bool
    /// Writes out what ``deliver(_:)`` queued. Called on ``eventLoop``.
    func flushDeliveries()
}

/// Who is subscribed to what.
///
/// The registry is the one piece of state every event reads, so it is not an actor: fan-out
/// reads a snapshot under a short lock (no hop per event, none per recipient). Members are
/// grouped by their session's event loop, so one task per loop delivers an event to all of
/// that loop's recipients. Mutations (subscribe, unsubscribe, disconnect) are rare by
/// comparison and take the same lock briefly.
///
/// Presence membership (issue: private/presence channels) and cross-node state (scale-out)
/// hang off the same structure: a channel entry is where per-channel member data lives.
///
/// Channels are keyed by ``ChannelKey``: Herald's shared channels (Socket.IO, Redis, the
/// first Pusher app) and, apart from them, the channels of each further Pusher app. The public
/// queries take a channel name and a namespace (`nil`, the default: the shared channels).
public final class ChannelRegistry: Sendable {
    /// The members of one channel (or of "everyone") on one event loop.
    struct LoopGroup: Sendable {
        let loop: any EventLoop
        /// The loop's flusher, shared by every group on that loop.
        let flusher: LoopFlusher
        var sessions: [ObjectIdentifier: any Recipient]
    }

    typealias Groups = [ObjectIdentifier: LoopGroup]

    private struct State {
        var channels: [ChannelKey: Groups] = [:]
        var presence: [ChannelKey: PresenceChannel] = [:]
        var everyone: Groups = [:]
        var sessionCount = 0
        var flushers: [ObjectIdentifier: LoopFlusher] = [:]
    }

    private let state = Mutex(State())
    /// Sends `pusher_internal:subscription_count` for non-presence channels whose membership
    /// changes, once an opted-in Pusher app connected.
    let subscriptionCounts = SubscriptionCountNotifier()
    /// Connections by protocol and subscriptions (counted on membership changes, not reads).
    let metrics: HeraldMetrics
    /// Pusher webhooks (`nil` when no app has any): channel_occupied/channel_vacated and
    /// member_added/member_removed are recorded here, under the lock, so a channel's webhook
    /// events are queued in the order its transitions happened. Each carries its channel's
    /// ``ChannelKey``, so only the app owning the channel's namespace hears of it.
    let webhooks: PusherWebhookSender?
    /// The cluster's shared presence and occupancy (``ClusterPresence``), when the cluster is on:
    /// it is told of every change of this node's counts, and it — not this registry — decides
    /// the cluster-wide occupancy and membership webhooks.
    let clusterPresence: ClusterPresence?
    /// ``webhooks`` for occupancy and membership events decided here (a single node); `nil` in
    /// a cluster, where ``clusterPresence`` records them.
    private let localWebhooks: PusherWebhookSender?

    public convenience init() { self.init(metrics: .disabled) }

    init(metrics: HeraldMetrics, webhooks: PusherWebhookSender? = nil, clusterPresence: ClusterPresence? = nil) {
        self.metrics = metrics
        self.webhooks = webhooks
        self.clusterPresence = clusterPresence
        self.localWebhooks = clusterPresence == nil ? webhooks : nil
    }

    /// Number of connected sessions.
    public var sessionCount: Int { state.withLock { $0.sessionCount } }

    /// Number of channels with at least one subscriber, in every namespace.
    public var channelCount: Int { state.withLock { $0.channels.count } }

    /// Subscriber count of `channel` in `namespace` (`nil`: the shared channels; else a Pusher
    /// app's id, see ``Event/namespace``).
    public func subscriberCount(_ channel: String, namespace: String? = nil) -> Int {
        subscriberCount(key: ChannelKey(namespace: namespace, name: channel))
    }

    /// Subscriber count of the channel `key`.
    func subscriberCount(key: ChannelKey) -> Int {
        state.withLock { $0.channels[key]?.values.reduce(0) { $0 + $1.sessions.count } ?? 0 }
    }

    /// Names of the occupied shared channels (those of Socket.IO clients, Redis and the first
    /// Pusher app).
    public var channelNames: [String] { channelNames(namespace: nil) }

    /// Names of the occupied channels of `namespace` (`nil`: the shared channels; else a Pusher
    /// app's id).
    public func channelNames(namespace: String?) -> [String] {
        state.withLock { state in state.channels.keys.compactMap { $0.namespace == namespace ? $0.name : nil } }
    }

    /// Every occupied channel, in every namespace.
    var channelKeys: [ChannelKey] { state.withLock { Array($0.channels.keys) } }

    /// Distinct members of presence channel `channel` in `namespace`, newest first.
    public func presenceMembers(_ channel: String, namespace: String? = nil) -> [PresenceMember] {
        presenceMembers(key: ChannelKey(namespace: namespace, name: channel))
    }

    /// Distinct members of the presence channel `key`, newest first.
    func presenceMembers(key: ChannelKey) -> [PresenceMember] {
        state.withLock { $0.presence[key]?.members.map(\.member) ?? [] }
    }

    /// Distinct members of the presence channel `key` on this node, newest first, each with its
    /// newest socket id.
    func localPresenceMembers(key: ChannelKey) -> [(member: PresenceMember, socketID: String)] {
        state.withLock { $0.presence[key]?.members ?? [] }
    }

    /// The user id (``PresenceMember/key``) `session` joined presence `channel` as.
    func presenceUserID(_ channel: ChannelKey, of session: any Recipient) -> String? {
        state.withLock { $0.presence[channel]?.userID(of: ObjectIdentifier(session)) }
    }

    /// Subscribes `session` to presence `channel` as `member`, atomically with taking the
    /// audience of the join notice. Returns whether this is the user's first connection there,
    /// the distinct members (newest first, with each one's newest socket id) for the joiner's
    /// own list, and the channel's other subscribers as they were just before the join.
    ///
    /// Doing all three under one lock is what makes presence exact under concurrent joins: a
    /// subscriber is either in the joiner's member list or receives its join notice, never both
    /// and never neither.
    func joinPresence(
        _ session: any Recipient,
        socketID: String,
        channel: ChannelKey,
        member: PresenceMember
    ) -> (first: Bool, members: [(member: PresenceMember, socketID: String)], audience: Groups?) {
        let (inserted, result) = state.withLock { state in
            let audience = state.channels[channel]
            let inserted = Self.insert(session, into: &state.channels[channel, default: [:]], flushers: &state.flushers)
            let first = state.presence[channel, default: PresenceChannel()].join(member, session: ObjectIdentifier(session), socketID: socketID)
            if let webhooks = localWebhooks {
                if inserted && audience == nil { webhooks.record(.channelOccupied(channel: channel)) }
                if first { webhooks.record(.memberAdded(channel: channel, userID: member.key)) }
            }
            return (inserted, (first, state.presence[channel]?.members ?? [], audience))
        }
        if inserted {
            metrics.subscriptions.increment()
            clusterPresence?.countChanged(channel)
        }
        return result
    }

    /// Unsubscribes `session` from presence `channel`, atomically with taking the audience of
    /// the leave notice. Returns the connection's member, whether it was the user's last
    /// connection here, and the remaining subscribers; `nil` when it was not a member.
    ///
    /// `reportCount: false` leaves telling ``clusterPresence`` of the count change to the caller
    /// (it sends it together with the leave, so the cluster's `member_removed` comes before
    /// `channel_vacated`).
    func leavePresence(_ session: any Recipient, channel: ChannelKey, reportCount: Bool = true) -> (member: PresenceMember, last: Bool, audience: Groups?)? {
        let (removed, result) = state.withLock { state in
            let removed = Self.remove(session, fromChannel: &state.channels[channel])
            let left = state.presence[channel]?.leave(session: ObjectIdentifier(session))
            if state.presence[channel]?.users.isEmpty == true { state.presence[channel] = nil }
            if let webhooks = localWebhooks {
                if let left, left.last { webhooks.record(.memberRemoved(channel: channel, userID: left.member.key)) }
                if removed && state.channels[channel] == nil { webhooks.record(.channelVacated(channel: channel)) }
            }
            return (removed, left.map { ($0.member, $0.last, state.channels[channel]) })
        }
        if removed {
            metrics.subscriptions.decrement()
            if reportCount { clusterPresence?.countChanged(channel) }
        }
        return result
    }

    /// Every presence connection on this node: channel, socket id, member (what
    /// ``ClusterPresence`` re-asserts in Redis).
    func localPresenceConnections() -> [(ChannelKey, String, PresenceMember)] {
        state.withLock { state in
            state.presence.flatMap { key, channel in channel.connections.map { (key, $0.socketID, $0.member) } }
        }
    }

    /// This node's subscriber count of every occupied channel.
    func localSubscriberCounts() -> [(ChannelKey, Int)] {
        state.withLock { state in
            state.channels.map { key, groups in (key, groups.values.reduce(0) { $0 + $1.sessions.count }) }
        }
    }

    func connect(_ session: any Recipient) {
        let inserted = state.withLock { state in
            let inserted = Self.insert(session, into: &state.everyone, flushers: &state.flushers)
            if inserted { state.sessionCount += 1 }
            return inserted
        }
        if inserted { metrics.connections(Self.connectionProtocol(of: session)).increment() }
    }

    func disconnect(_ session: any Recipient, channels: some Sequence<ChannelKey>) {
        let counting = subscriptionCounts.isEnabled || clusterPresence != nil
        let (wasConnected, unsubscribed, left): (Bool, Int, [ChannelKey]) = state.withLock { state in
            let wasConnected = Self.remove(session, from: &state.everyone)
            if wasConnected { state.sessionCount -= 1 }
            var unsubscribed = 0
            var left: [ChannelKey] = []
            for channel in channels where Self.remove(session, fromChannel: &state.channels[channel]) {
                unsubscribed += 1
                if counting { left.append(channel) }
                if state.channels[channel] == nil { localWebhooks?.record(.channelVacated(channel: channel)) }
            }
            return (wasConnected, unsubscribed, left)
        }
        if wasConnected { metrics.connections(Self.connectionProtocol(of: session)).decrement() }
        if unsubscribed > 0 { metrics.subscriptions.decrement(by: Double(unsubscribed)) }
        for channel in left {
            subscriptionCounts.changed(channel, loop: session.eventLoop, registry: self)
            clusterPresence?.countChanged(channel)
        }
    }

    /// Adds `session` to `channel`; returns false if it was already there.
    @discardableResult
    func subscribe(_ session: any Recipient, to channel: ChannelKey) -> Bool {
        let inserted = state.withLock { state in
            let occupied = state.channels[channel] != nil
            let inserted = Self.insert(session, into: &state.channels[channel, default: [:]], flushers: &state.flushers)
            if inserted && !occupied { localWebhooks?.record(.channelOccupied(channel: channel)) }
            return inserted
        }
        if inserted {
            metrics.subscriptions.increment()
            clusterPresence?.countChanged(channel)
            subscriptionCounts.changed(channel, loop: session.eventLoop, registry: self)
        }
        return inserted
    }

    /// Removes `session` from `channel`; returns false if it was not there.
    @discardableResult
    func unsubscribe(_ session: any Recipient, from channel: ChannelKey) -> Bool {
        let removed = state.withLock { state in
            let removed = Self.remove(session, fromChannel: &state.channels[channel])
            if removed && state.channels[channel] == nil { localWebhooks?.record(.channelVacated(channel: channel)) }
            return removed
        }
        if removed {
            metrics.subscriptions.decrement()
            clusterPresence?.countChanged(channel)
            subscriptionCounts.changed(channel, loop: session.eventLoop, registry: self)
        }
        return removed
    }

    /// The members of `channel` grouped by event loop (a copy-on-write snapshot).
    func groups(for channel: ChannelKey) -> Groups? {
        state.withLock { $0.channels[channel] }
    }

    /// Every connected session grouped by event loop.
    func everyoneGroups() -> Groups {
        state.withLock { $0.everyone }
    }

    /// The `protocol` label of a connection.
    private static func connectionProtocol(of session: any Recipient) -> ConnectionProtocol {
        if let engine = session as? EngineSession { return engine.version == .v3 ? .socketIOv3 : .socketIOv4 }
        return .pusher
    }

    @discardableResult
    private static func insert(_ session: any Recipient, into groups: inout Groups, flushers: inout [ObjectIdentifier: LoopFlusher]) -> Bool {
        let loop = session.eventLoop
        let key = ObjectIdentifier(loop)
        if groups[key] == nil {
            let flusher = flushers[key] ?? LoopFlusher(loop: loop)
            flushers[key] = flusher
            groups[key] = LoopGroup(loop: loop, flusher: flusher, sessions: [:])
        }
        // Mutating through the subscript works in place: the member dictionary is not copied.
        return groups[key]?.sessions.updateValue(session, forKey: ObjectIdentifier(session)) == nil
    }

    /// Removes `session` from a channel's groups in place, `&state.channels[key]`: through the
    /// dictionary's subscript the groups stay uniquely referenced, so the member table is not
    /// copied (copying it out first, `var groups = state.channels[key]`, copied all of the
    /// loop's members on every unsubscribe: 90 µs at 10k members). Drops the channel when it
    /// empties.
    private static func remove(_ session: any Recipient, fromChannel groups: inout Groups?) -> Bool {
        let loopKey = ObjectIdentifier(session.eventLoop)
        let removed = groups?[loopKey]?.sessions.removeValue(forKey: ObjectIdentifier(session)) != nil
        if groups?[loopKey]?.sessions.isEmpty == true { groups?[loopKey] = nil }
        if groups?.isEmpty == true { groups = nil }
        return removed
    }

    @discardableResult
    private static func remove(_ session: any Recipient, from groups: inout Groups) -> Bool {
        let loopKey = ObjectIdentifier(session.eventLoop)
        let removed = groups[loopKey]?.sessions.removeValue(forKey: ObjectIdentifier(session)) != nil
        if groups[loopKey]?.sessions.isEmpty == true { groups[loopKey] = nil }
        return removed
    }
}

/// Flushes an event loop's dirty connections once per loop turn.
///
/// Fan-out writes without flushing and marks connections dirty; the first mark schedules one
/// flush task behind whatever is already queued on the loop. Under light load that task runs
/// right after the delivery (no added latency); under heavy load several events' deliveries
/// pile up before it runs, so each connection gets one `writev` for many events instead of one
/// write syscall per event — the main cost of fan-out.
final class LoopFlusher: @unchecked Sendable {
    // Safety: `dirty`, `spare` and `scheduled` are touched only on `loop`.
    let loop: any EventLoop
    private var dirty: [any Recipient] = []
    private var spare: [any Recipient] = []
    private var scheduled = false

    init(loop: any EventLoop) { self.loop = loop }

    /// Records that `recipient` needs a flush. Call on `loop`.
    func markDirty(_ recipient: any Recipient) {
        loop.preconditionInEventLoop()
        dirty.append(recipient)
        if !scheduled {
            scheduled = true
            loop.execute { self.flushAll() }
        }
    }

    private func flushAll() {
        scheduled = false
        swap(&dirty, &spare)
        for recipient in spare { recipient.flushDeliveries() }
        spare.removeAll(keepingCapacity: true)
    }
}
