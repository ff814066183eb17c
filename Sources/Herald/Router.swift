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
    /// Missed-message recovery: the event with its offset, for the recipients that opted in
    /// (``RecoveryState``); `nil` while history is off and for broadcasts that are no channel's
    /// events (presence notices, seed mode, subscription counts).
    var recoverable: RecoverableEvent? = nil
    /// For a presence notice (`presence:joining`, `member_added`, …): which channel and member.
    /// A session whose member list for that channel is still on its way (a cluster's join waits
    /// for Redis) holds the notice until the list is sent, then drops it if the list already
    /// told the same (see ``PresenceNoticeMark/isNews(given:)``). `nil` for every other broadcast.
    var presence: PresenceNoticeMark? = nil

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

/// What a presence notice announces, for sessions that hold notices while their member list
/// is pending.
struct PresenceNoticeMark: Sendable {
    /// The presence channel's name (as the session knows it).
    let channel: String
    /// ``PresenceMember/key`` of the member who joined or left.
    let memberKey: String
    /// A join (`true`) or a leave.
    let joined: Bool

    /// Whether a session whose member list holds `members` (keys) still needs this notice: a
    /// join of someone not in the list, or a leave of someone in it.
    func isNews(given members: Set<String>) -> Bool {
        joined != members.contains(memberKey)
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
///
/// With event plugins, each channel's events go through the chain in a *lane* of their own:
/// one event at a time, in publication order, so they reach subscribers in that order; lanes
/// of different channels run concurrently (at most `pluginConcurrency`), so a plugin slow on
/// one channel holds up only that channel's later events, for at most its time budget. With
/// `queueSize` events waiting in lanes the router stops taking events from its queue until a
/// worker takes one; the queue then fills and drops, counted, as without plugins. Without event
/// plugins events are routed directly from the queue, in order.
///
/// An event reaches the subscribers of its ``Event/channel`` in its ``Event/namespace``
/// (``ChannelKey``): the shared channels, or a further Pusher app's own. Frames carry the
/// channel's name only.
public actor Router {
    private let registry: ChannelRegistry
    /// The plugins: event plugins run here; sessions ask the chain's subscription and
    /// connection hooks.
    nonisolated let plugins: PluginChain
    private let emitToAll: Bool
    private let logger: Logger
    private let stream: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let counters = Counters()
    /// The registry's metrics (`herald_events_in_total`, `herald_deliveries_total`, drops).
    private let metrics: HeraldMetrics
    /// The last event of every Pusher cache channel, written here once per event (D.6).
    nonisolated let channelCache: PusherChannelCache
    /// `GET /tail` clients: offered every event after the plugins, before fan-out.
    nonisolated let tail = TailHub()
    /// Scale-out: the node bus events that entered this node are sent to, after the plugins
    /// (`nil`: a single node, and routing never looks further).
    nonisolated let cluster: ClusterBus?

    /// Channels with events for the plugin chain, and the workers running them.
    private let lanes: PluginLanes
    /// Missed-message recovery: each channel's recent events, recorded once per event after
    /// the plugins (`nil`: off, and routing never looks further).
    nonisolated let history: ChannelHistory?

    final class Counters: Sendable {
        let eventsIn = Atomic<Int>(0)
        let eventsDropped = Atomic<Int>(0)
        let deliveries = Atomic<Int>(0)
    }

    /// - Parameters:
    ///   - queueSize: events that may wait for routing before new ones are dropped (and counted);
    ///     with event plugins, as many more may wait in the channels' lanes.
    ///   - cachedChannels: most Pusher cache channels whose last event is kept (oldest evicted).
    ///   - pluginConcurrency: most channels whose events are in the plugin chain at once.
    ///   - cluster: the node bus that carries events entering this node to the other nodes.
    ///   - history: missed-message recovery's limits; `nil` turns it off.
    public init(registry: ChannelRegistry, plugins: PluginChain = PluginChain(), emitToAll: Bool, queueSize: Int = 65_536, cachedChannels: Int = 10_000, pluginConcurrency: Int = 64, cluster: ClusterBus? = nil, history: ChannelHistoryConfiguration? = nil, logger: Logger) {
        self.cluster = cluster
        self.history = history.map { ChannelHistory(configuration: $0) }
        self.registry = registry
        self.metrics = registry.metrics
        self.channelCache = PusherChannelCache(capacity: cachedChannels)
        self.plugins = plugins
        self.lanes = PluginLanes(maxWorkers: pluginConcurrency, maxWaiting: queueSize)
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

    /// Routes events until ``finish()`` is called or the task is cancelled. After ``finish()``
    /// it returns once every queued event went through the plugins and out.
    public func run() async {
        guard plugins.processesEvents else {
            for await event in stream { route(event, entered: event.source) }
            return
        }
        for await event in stream {
            var placed = false
            while !placed {
                switch lanes.offer(event) {
                case .queued:
                    placed = true
                case .startWorker(let lane):
                    startWorker(first: lane)
                    placed = true
                case .full:
                    await lanes.waitForRoom()
                }
            }
        }
        if Task.isCancelled {
            lanes.stop()
        } else {
            await lanes.drain()
        }
    }

    // MARK: Plugin lanes

    /// Starts a worker on `channel`'s first event. The worker's runner may hand the worker to
    /// another task (the watchdog's, when a plugin overran its budget); one task at a time
    /// drives it.
    private nonisolated func startWorker(first lane: ChannelKey) {
        let runner = PluginRunner(chain: plugins, logger: logger) { [self] runner, input, outputs, owner in
            for output in outputs { route(output, entered: input.source) }
            await work(runner: runner, owner: owner, next: await lanes.next(after: ChannelKey(input)))
        }
        Task { await work(runner: runner, owner: runner.firstOwner, next: lanes.take(lane)) }
    }

    private nonisolated func work(runner: PluginRunner, owner: Int, next first: Event?) async {
        var next = first
        while let event = next {
            // nil: the watchdog took this worker over while a plugin overran its budget.
            guard let outputs = await runner.run(event, owner: owner) else { return }
            for output in outputs { route(output, entered: event.source) }
            next = await lanes.next(after: ChannelKey(event))
        }
        runner.close()
    }

    /// Announces a presence change to `channel`'s members in both dialects
    /// (`presence:joining`/`presence:leaving` and `pusher_internal:member_added`/`member_removed`),
    /// bypassing plugins and seed mode. `channel` is the name the members know (the audience
    /// already is the right namespace's). Callable from any thread.
    nonisolated func announcePresence(
        channel: String, member: PresenceMember, joined: Bool, socketID: String?, to audience: ChannelRegistry.Groups?, excluding excluded: String? = nil
    ) {
        guard let groups = audience else { return }
        var socketIO = ByteBuffer()
        member.json(socketID: joined ? socketID : nil).write(into: &socketIO)
        var packet = ByteBuffer()
        SocketIOCodec.writeChannelEvent(event: joined ? "presence:joining" : "presence:leaving", channel: channel, data: socketIO, into: &packet)
        let pusher = joined
            ? PusherMessage.memberAdded(channel: channel, member: member.pusherMember)
            : PusherMessage.memberRemoved(channel: channel, userID: member.key)
        var broadcast = EncodedBroadcast(packet: packet, pusherMessage: pusher, excludedSocketID: excluded)
        broadcast.presence = PresenceNoticeMark(channel: channel, memberKey: member.key, joined: joined)
        let delivered = Self.deliver(broadcast, to: groups)
        counters.deliveries.add(delivered, ordering: .relaxed)
        metrics.deliveries.increment(by: delivered)
    }

    /// Adds `session` to presence `channel` as `member`, then calls `reply` with the members the
    /// joiner is told of (one per user, each with a socket id) and announces the join when it is
    /// the user's first connection.
    ///
    /// On one node this happens at once, under the registry's lock. In a cluster the session is
    /// subscribed here at once, and Redis decides (``ClusterPresence``): `reply` runs on the
    /// session's event loop once it answered, with the whole cluster's members; a first join is
    /// announced here, on the other nodes and to the webhooks. While Redis is unreachable this
    /// node's registry decides, and the join is announced here only.
    ///
    /// With `maxMembers` (> 0) a cluster refuses a user who would be one distinct member too
    /// many in the whole cluster: the session leaves the channel again, silently, and `onFull`
    /// runs on its loop instead of `reply` (on one node the caller checks before joining).
    nonisolated func joinPresence(
        _ session: any Recipient, socketID: String, channel: ChannelKey, member: PresenceMember, maxMembers: Int = 0,
        onFull: (@Sendable () -> Void)? = nil,
        reply: @escaping @Sendable ([(member: PresenceMember, socketID: String)]) -> Void
    ) {
        let (first, members, audience) = registry.joinPresence(session, socketID: socketID, channel: channel, member: member)
        guard let presence = registry.clusterPresence else {
            reply(members)
            if first { announcePresence(channel: channel.name, member: member, joined: true, socketID: socketID, to: audience) }
            return
        }
        presence.join(channel, socketID: socketID, member: member, maxMembers: maxMembers) { [self] outcome in
            session.eventLoop.execute { [self] in
                let stillMember = registry.presenceUserID(channel, of: session) != nil
                switch outcome {
                case .joined(let clusterFirst, let clusterMembers):
                    presence.seed(channel, members: clusterMembers)
                    if stillMember { reply(clusterMembers) }
                    if clusterFirst {
                        announceClusterPresence(PresenceNotice(channel: channel, member: member, joined: true, socketID: socketID), locally: true, excluding: socketID)
                    }
                case .full:
                    guard stillMember else { return }
                    // Not recorded in Redis: undone here only, nobody was told.
                    _ = registry.leavePresence(session, channel: channel)
                    onFull?()
                case .unavailable:
                    let local = registry.localPresenceMembers(key: channel)
                    presence.seed(channel, members: local)
                    if stillMember { reply(local) }
                    if first {
                        _ = presence.remember(PresenceNotice(channel: channel, member: member, joined: true, socketID: socketID))
                        announcePresence(channel: channel.name, member: member, joined: true, socketID: socketID, to: registry.groups(for: channel), excluding: socketID)
                    }
                }
            }
        }
    }

    /// Removes `session` from presence `channel` and announces the leave when it was the
    /// user's last connection (in the cluster, when there is one; see ``joinPresence``).
    nonisolated func leavePresence(_ session: any Recipient, socketID: String, channel: ChannelKey) {
        guard let (member, last, audience) = registry.leavePresence(session, channel: channel, reportCount: registry.clusterPresence == nil) else { return }
        guard let presence = registry.clusterPresence else {
            if last { announcePresence(channel: channel.name, member: member, joined: false, socketID: nil, to: audience) }
            return
        }
        presence.leave(channel, socketID: socketID) { [self] outcome in
            switch outcome {
            case .left(let clusterLast, let recorded):
                if clusterLast {
                    announceClusterPresence(PresenceNotice(channel: channel, member: recorded ?? member, joined: false, socketID: nil), locally: true)
                }
            case .unavailable:
                guard last else { return }
                _ = presence.remember(PresenceNotice(channel: channel, member: member, joined: false))
                announcePresence(channel: channel.name, member: member, joined: false, socketID: nil, to: registry.groups(for: channel))
            }
        }
    }

    /// A presence change decided on this node for the whole cluster: announced to this node's
    /// subscribers (unless `locally` is false: they heard of it already), sent to the other
    /// nodes, and recorded as a webhook event.
    nonisolated func announceClusterPresence(_ notice: PresenceNotice, locally: Bool, excluding excluded: String? = nil) {
        // Decided here, so announced here even if this node's view had it (then it was wrong).
        _ = registry.clusterPresence?.remember(notice)
        if locally {
            announcePresence(
                channel: notice.channel.name, member: notice.member, joined: notice.joined, socketID: notice.socketID,
                to: registry.groups(for: notice.channel), excluding: excluded
            )
        }
        cluster?.send(notice)
        registry.webhooks?.record(notice.joined
            ? .memberAdded(channel: notice.channel, userID: notice.member.key)
            : .memberRemoved(channel: notice.channel, userID: notice.member.key))
    }

    /// A presence change another node decided: announced to this node's subscribers only.
    nonisolated func announceRemotePresence(_ notice: PresenceNotice) {
        // A notice this node's subscribers already had (a re-assertion after an outage) is dropped.
        guard registry.clusterPresence?.remember(notice) ?? true else { return }
        announcePresence(
            channel: notice.channel.name, member: notice.member, joined: notice.joined, socketID: notice.socketID,
            to: registry.groups(for: notice.channel)
        )
    }

    /// Delivers an event another node published to the cluster (``ClusterBus``) to this node's
    /// subscribers: no plugins (they ran on that node), never sent back to the cluster.
    /// Callable from any thread.
    nonisolated func deliverRemote(_ event: Event) {
        route(event, entered: nil)
    }

    /// - Parameter entered: the source of the event as it entered this node, before the
    ///   plugins (an event a plugin makes may name another); `nil` for another node's event.
    private nonisolated func route(_ event: Event, entered: EventSource?) {
        // Scale-out: what entered this node (not Laravel's broadcasts, which every node
        // receives) goes to the other nodes once, after the plugins.
        if let cluster, let entered, entered != .redis { cluster.send(event) }
        tail.offer(event)  // one atomic load while nobody tails
        let kind = event.channelKind
        let key = ChannelKey(event)
        // A client event that entered here and passed the plugins: the client_event webhook
        // (on the origin node only; other nodes receive it through `deliverRemote`).
        if entered == .client, event.source == .client, let webhooks = registry.webhooks, let socketID = event.excludedSocketID {
            webhooks.record(.clientEvent(channel: key, event: event.name, data: event.data, socketID: socketID, userID: event.senderUserID))
        }
        var delivered = 0
        let dataForm: PusherMessage.DataForm = event.source == .client ? .verbatim : .string
        // Cache channels remember their last event (one store per event, before fan-out).
        if PusherChannelName.isCacheChannel(event.channel) {
            channelCache.store(channel: key, name: event.name, data: event.data, dataForm: dataForm)
        }
        // Missed-message recovery: the channel's next offset, recorded *before* the subscriber
        // snapshot (a subscriber joining meanwhile gets the event replayed or live, never
        // neither; RECOVERY.md). One short lock; nothing while history is off.
        let offset = history?.record(event, dataForm: dataForm)
        if let groups = registry.groups(for: key) {
            // Client events reach Pusher clients as sent (D.8), with the sender's presence id.
            var broadcast = EncodedBroadcast(
                channelEvent: event.name, channel: event.channel, data: event.data, excludedSocketID: event.excludedSocketID,
                userID: event.senderUserID, dataForm: dataForm
            )
            // Opted-in recipients take the offset form, encoded on first use, once per event.
            if let offset { broadcast.recoverable = RecoverableEvent(event, dataForm: dataForm, offset: offset) }
            delivered += Self.deliver(broadcast, to: groups)
        }
        // Seed compatibility: public shared channels only (a further Pusher app's events are its
        // own); private and presence events never go to all.
        if emitToAll && kind == .public && key.isShared {
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
            logger.trace("routed event", metadata: ["herald.channel": "\(key)", "herald.event": "\(event.name)", "herald.recipients": "\(delivered)"])
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

/// The router's plugin lanes: for each channel with events bound for the plugin chain, the
/// events not yet taken, and a bounded pool of worker tasks running them.
///
/// A channel is *owned* by at most one worker at a time — from the moment a worker takes its
/// next event until it finished that event — which keeps the channel's order; a channel with
/// waiting events and no owner is in `ready`, in arrival order. Workers are started on demand
/// (at most `maxWorkers`), take the next event of their channel or, when others wait, move on
/// round-robin, and park when there is nothing to do. Under load no task is started and no
/// actor is entered per event: taking and finishing one is a lock each.
final class PluginLanes: Sendable {
    enum Offer {
        /// The event waits in its lane.
        case queued
        /// The event waits in its lane, which needs a new worker (none is idle).
        case startWorker(ChannelKey)
        /// `maxWaiting` events already wait: try again after ``waitForRoom()``.
        case full
    }

    private struct State {
        /// Channels with waiting or running events → their waiting events, next first.
        var lanes: [ChannelKey: CircularBuffer<Event>] = [:]
        /// Channels with waiting events and no worker, in arrival order.
        var ready = CircularBuffer<ChannelKey>()
        /// Events waiting in lanes.
        var waiting = 0
        var workers = 0
        /// Parked workers, resumed with a channel to take from, or nil to stop.
        var idle: [CheckedContinuation<ChannelKey?, Never>] = []
        var roomWaiter: CheckedContinuation<Void, Never>?
        var drainWaiter: CheckedContinuation<Void, Never>?
        var draining = false
    }

    private let state = Mutex(State())
    private let maxWorkers: Int
    private let maxWaiting: Int

    init(maxWorkers: Int, maxWaiting: Int) {
        self.maxWorkers = max(1, maxWorkers)
        self.maxWaiting = max(1, maxWaiting)
    }

    /// Puts `event` in its channel's lane (called by the router's loop only).
    func offer(_ event: Event) -> Offer {
        let lane = ChannelKey(event)
        let (offer, wake) = state.withLock { state -> (Offer, CheckedContinuation<ChannelKey?, Never>?) in
            guard state.waiting < maxWaiting else { return (.full, nil) }
            state.waiting += 1
            if state.lanes[lane] != nil {
                state.lanes[lane]?.append(event)
                return (.queued, nil)
            }
            state.lanes[lane] = [event]
            if let idle = state.idle.popLast() { return (.queued, idle) }
            if state.workers < maxWorkers {
                state.workers += 1
                return (.startWorker(lane), nil)
            }
            state.ready.append(lane)
            return (.queued, nil)
        }
        wake?.resume(returning: lane)
        return offer
    }

    /// Waits until ``offer(_:)`` may accept an event again.
    func waitForRoom() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard state.waiting >= maxWaiting else { return true }
                state.roomWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Takes the next event of `channel`, which the calling worker owns.
    func take(_ channel: ChannelKey) -> Event? {
        let (event, room) = state.withLock { state in Self.take(channel, &state) }
        room?.resume()
        return event
    }

    private static func take(_ channel: ChannelKey, _ state: inout State) -> (Event?, CheckedContinuation<Void, Never>?) {
        guard let event = state.lanes[channel]?.popFirst() else { return (nil, nil) }
        state.waiting -= 1
        let room = state.roomWaiter
        state.roomWaiter = nil
        return (event, room)
    }

    /// The calling worker finished an event of `channel`: the next event it should run (of the
    /// same channel, or of the longest-waiting other one), or `nil` when it should stop.
    func next(after channel: ChannelKey) async -> Event? {
        enum Step {
            case run(Event?, room: CheckedContinuation<Void, Never>?)
            case park
            case stop(wake: [CheckedContinuation<ChannelKey?, Never>], drained: CheckedContinuation<Void, Never>?)
        }
        let step = state.withLock { state -> Step in
            var next: ChannelKey? = channel
            if state.lanes[channel]?.isEmpty ?? true {
                state.lanes[channel] = nil
                next = state.ready.popFirst()
            } else if let waiting = state.ready.popFirst() {
                // Others wait too: take turns.
                state.ready.append(channel)
                next = waiting
            }
            if let next {
                let (event, room) = Self.take(next, &state)
                return .run(event, room: room)
            }
            guard state.draining, state.lanes.isEmpty else { return .park }
            let idle = state.idle
            state.workers -= 1 + idle.count
            state.idle = []
            let drained = state.drainWaiter
            state.drainWaiter = nil
            return .stop(wake: idle, drained: drained)
        }
        switch step {
        case .run(let event, let room):
            room?.resume()
            return event
        case .stop(let idle, let drained):
            for worker in idle { worker.resume(returning: nil) }
            drained?.resume()
            return nil
        case .park:
            let assigned = await withCheckedContinuation { (continuation: CheckedContinuation<ChannelKey?, Never>) in
                // Work may have come in since the lock above was released.
                let now = state.withLock { state -> ChannelKey?? in
                    if let waiting = state.ready.popFirst() { return .some(waiting) }
                    if state.draining && state.lanes.isEmpty {
                        state.workers -= 1
                        return .some(nil)
                    }
                    state.idle.append(continuation)
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
            guard let assigned else { return nil }
            return take(assigned)
        }
    }

    /// Stops the workers as they run out of work, without waiting (the router was cancelled).
    func stop() {
        let idle = state.withLock { state -> [CheckedContinuation<ChannelKey?, Never>] in
            state.draining = true
            state.workers -= state.idle.count
            defer { state.idle = [] }
            return state.idle
        }
        for worker in idle { worker.resume(returning: nil) }
    }

    /// Waits until every lane is empty, then stops the workers (after the router's queue ended).
    func drain() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> [CheckedContinuation<ChannelKey?, Never>]? in
                state.draining = true
                guard state.lanes.isEmpty else {
                    state.drainWaiter = continuation
                    return nil
                }
                state.workers -= state.idle.count
                defer { state.idle = [] }
                return state.idle
            }
            guard let idle else { return }
            for worker in idle { worker.resume(returning: nil) }
            continuation.resume()
        }
    }
}
