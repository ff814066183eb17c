import HeraldCore
import HeraldRedis
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Presence members and channel occupancy shared by the nodes of a cluster, kept in Redis.
///
/// Every node keeps its own connections in its ``ChannelRegistry`` (fan-out never asks Redis).
/// What must be decided once for the whole cluster is decided in Redis, by Lua scripts that run
/// atomically:
///
/// * **Presence.** Per presence channel, a hash of connections (`<node>␟<socket id>` →
///   `<user>␟<member JSON>`) and a hash of users (`<user>` → connections in the cluster). A join
///   that takes a user's count from 0 to 1 is the user's first connection anywhere: that node
///   announces it to its own subscribers, sends it to the other nodes on the cluster channel
///   (``PresenceNotice``) and records the `member_added` webhook; a leave that takes it to 0 is
///   announced the same way. A user with connections on two nodes leaves only when the last
///   one goes. The joiner's member list is the script's reply: the whole cluster's members.
/// * **Occupancy.** Per node, a hash of its channels' subscriber counts; one hash of totals.
///   A node sends its counts (coalesced, absolute) after changes; the script returns the
///   channels whose total went from 0 or to 0 (`channel_occupied` / `channel_vacated`, once).
/// * **Liveness.** A sorted set of nodes scored by when their heartbeat expires (``ttl``,
///   refreshed every third of it). Any node finding another's heartbeat expired removes it
///   (`ZREM` decides which node does the clean-up, so it happens once): its connections leave
///   (announced as above), its counts are subtracted, and a tombstone tells it, should it come
///   back, that the cluster saw it leave.
/// * **Re-assertion.** After connecting (start, Redis restart, failover) and whenever its
///   heartbeat finds it missing, a node writes its whole local state again (``sync``): what
///   Redis lost is restored, what it no longer has is removed. While Redis is unreachable,
///   joins and leaves are decided per node (the local registry) and announced locally only.
///
/// Key names start with the cluster channel (`herald:cluster[:prefix]`), so clusters sharing
/// one Redis do not meet. The scripts name keys they compute, which standalone Redis and
/// Sentinel allow (a Redis Cluster would need hash tags; see SCALING.md).
final class ClusterPresence: Sendable {
    /// What a join came to.
    enum JoinOutcome: Sendable {
        /// Recorded in Redis: whether it is the user's first connection in the cluster, and the
        /// cluster's members (one entry per user, with one of its socket ids).
        case joined(first: Bool, members: [(member: PresenceMember, socketID: String)])
        /// Refused: the channel has its maximum of distinct members and this user is not one.
        case full
        /// Redis is unreachable: decide with this node's registry.
        case unavailable
    }

    /// What a leave came to.
    enum LeaveOutcome: Sendable {
        /// Removed from Redis; `last` when it was the user's last connection in the cluster.
        case left(last: Bool, member: PresenceMember?)
        /// Redis is unreachable: decide with this node's registry.
        case unavailable
    }

    private enum Operation: Sendable {
        case join(ChannelKey, socketID: String, member: PresenceMember, maxMembers: Int, reply: @Sendable (JoinOutcome) -> Void)
        case leave(ChannelKey, socketID: String, reply: @Sendable (LeaveOutcome) -> Void)

        func fail() {
            switch self {
            case .join(_, _, _, _, let reply): reply(.unavailable)
            case .leave(_, _, let reply): reply(.unavailable)
            }
        }
    }

    private struct State {
        var operations: [Operation] = []
        var dirty: Set<ChannelKey> = []
        var connected = false
        var finished = false
        var heartbeatDue = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Users that joined while Redis was unreachable (announced locally only): the next
        /// sync announces them to the other nodes.
        var joinedOffline: Set<String> = []
        /// When to compare this node's view with Redis (see ``reconcile``), if due.
        var reconcileAt: ContinuousClock.Instant?
    }

    /// This node's id.
    let nodeID: String
    /// The first part of every key (the cluster channel's name).
    let base: String
    /// A node that stops is removed from presence within this long (see ``expiry()``).
    let ttl: Duration

    private let redis: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let queries = Mutex<RedisConnection?>(nil)
    /// This node's view: per presence channel with subscribers here, the cluster's members its
    /// subscribers were told of (by their member lists and the join/leave notices since). Used
    /// to drop a notice they already had, and to find what they missed (``reconcile``).
    private let known = Mutex<[ChannelKey: [String: PresenceMember]]>([:])

    /// Longest a batch of presence commands may wait for Redis before the connection is dropped.
    static let commandTimeout: Duration = .seconds(5)

    init(nodeID: String, base: String, ttl: Duration, redis: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.nodeID = nodeID
        self.base = base
        self.ttl = max(ttl, .seconds(1))
        self.redis = redis
        self.eventLoopGroup = eventLoopGroup
        var logger = logger
        logger[metadataKey: "herald.cluster.node"] = "\(nodeID)"
        self.logger = logger
    }

    // MARK: Called by the router and the registry

    /// Records a presence connection unless the channel has `maxMembers` distinct members (0:
    /// no limit) and this user is not one of them; `reply` is called once, on no particular
    /// thread.
    func join(_ channel: ChannelKey, socketID: String, member: PresenceMember, maxMembers: Int = 0, reply: @escaping @Sendable (JoinOutcome) -> Void) {
        enqueue(.join(channel, socketID: socketID, member: member, maxMembers: maxMembers, reply: reply), offline: { state in
            state.joinedOffline.insert(Self.userMark(channel, member.key))
        })
    }

    /// Removes a presence connection; `reply` is called once, on no particular thread. This
    /// node's count of `channel` changed with it: it is sent in the same batch, after the leave.
    func leave(_ channel: ChannelKey, socketID: String, reply: @escaping @Sendable (LeaveOutcome) -> Void) {
        enqueue(.leave(channel, socketID: socketID, reply: reply), offline: { state in state.dirty.insert(channel) }, dirty: channel)
    }

    /// This node's subscriber count of `channel` changed; it is sent (coalesced) soon.
    func countChanged(_ channel: ChannelKey) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.dirty.insert(channel)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The writer stops once what is queued is written and this node removed from Redis.
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func enqueue(_ operation: Operation, offline: (inout State) -> Void, dirty: ChannelKey? = nil) {
        let (queued, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard state.connected, !state.finished else {
                offline(&state)
                return (false, nil)
            }
            state.operations.append(operation)
            if let dirty { state.dirty.insert(dirty) }
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        if queued { waiter?.resume() } else { operation.fail() }
    }

    private func wake(heartbeat: Bool) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if heartbeat { state.heartbeatDue = true }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    // MARK: This node's view

    /// A joiner here got `members`: they become this node's view of `channel` unless it has one.
    func seed(_ channel: ChannelKey, members: [(member: PresenceMember, socketID: String)]) {
        known.withLock { known in
            guard known[channel] == nil else { return }
            known[channel] = Dictionary(members.map { ($0.member.key, $0.member) }, uniquingKeysWith: { _, last in last })
        }
    }

    /// Records `notice` in this node's view; false when the view already had it (a duplicate
    /// this node's subscribers must not hear again).
    func remember(_ notice: PresenceNotice) -> Bool {
        known.withLock { known in
            guard known[notice.channel] != nil else { return true }
            if notice.joined { return known[notice.channel]?.updateValue(notice.member, forKey: notice.member.key) == nil }
            return known[notice.channel]?.removeValue(forKey: notice.member.key) != nil
        }
    }

    /// Compares this node's view of every presence channel with the members in Redis, a while
    /// after this node reconnected (its subscription may have missed notices, Redis may have
    /// lost its data): what its subscribers missed is announced to them.
    ///
    /// The wait (the Redis reconnect backoff's ceiling plus a second) lets the other nodes
    /// re-assert their members first, so a member is not announced gone and back.
    private func reconcile(_ connection: RedisConnection, router: Router) async throws {
        let channels = known.withLock { Array($0.keys) }
        guard !channels.isEmpty else { return }
        let replies = try await connection.send(pipelined: channels.map { Self.command(["HVALS", conns($0)]) }, timeout: Self.commandTimeout)
        for (channel, reply) in zip(channels, replies) {
            guard case .array(let values) = reply else { continue }
            var cluster: [String: (PresenceMember, String)] = [:]
            for value in values {
                if let (member, socketID) = Self.member(value) { cluster[member.key] = (member, socketID) }
            }
            let (joined, left) = known.withLock { known -> ([(PresenceMember, String)], [PresenceMember]) in
                guard let view = known[channel] else { return ([], []) }
                let joined = cluster.filter { view[$0.key] == nil }.map(\.value)
                let left = view.filter { cluster[$0.key] == nil }.map(\.value)
                known[channel] = cluster.mapValues(\.0)
                return (joined, left)
            }
            for member in left {
                router.announcePresence(channel: channel.name, member: member, joined: false, socketID: nil, to: registryGroups(channel))
            }
            for (member, socketID) in joined {
                router.announcePresence(channel: channel.name, member: member, joined: true, socketID: socketID, to: registryGroups(channel))
            }
            if !joined.isEmpty || !left.isEmpty {
                logger.notice("presence reconciled with Redis after a reconnect: announced what this node's subscribers missed", metadata: [
                    "herald.channel": "\(channel)", "herald.presence.joined": "\(joined.count)", "herald.presence.left": "\(left.count)",
                ])
            }
        }
    }

    private func registryGroups(_ channel: ChannelKey) -> ChannelRegistry.Groups? {
        wiring.withLock { $0 }?.groups(for: channel)
    }

    private let wiring = Mutex<ChannelRegistry?>(nil)

    private func scheduleReconcile() {
        let delay = redis.reconnectMaxDelay + .seconds(1)
        state.withLock { $0.reconcileAt = .now + delay }
    }

    // MARK: The writer

    /// Runs the writer: connects (with backoff), re-asserts this node's state, then writes joins,
    /// leaves and counts as they come, and the heartbeat. Returns after ``finish()`` once this
    /// node's connections are removed from Redis (or at once when Redis is unreachable then).
    /// - Parameter subscriptionEpoch: how often the relay's Redis subscription reconnected (a
    ///   change means notices may have been missed meanwhile).
    func run(registry: ChannelRegistry, router: Router, subscriptionEpoch: @escaping @Sendable () -> Int = { 0 }) async {
        wiring.withLock { $0 = registry }
        await withTaskCancellationHandler {
            await runWriter(registry: registry, router: router, subscriptionEpoch: subscriptionEpoch)
        } onCancel: {
            finish()
        }
    }

    private func runWriter(registry: ChannelRegistry, router: Router, subscriptionEpoch: @escaping @Sendable () -> Int) async {
        let heartbeat = eventLoopGroup.any().scheduleRepeatedTask(initialDelay: (ttl / 3).timeAmount, delay: (ttl / 3).timeAmount) { [weak self] _ in
            self?.wake(heartbeat: true)
        }
        defer { heartbeat.cancel() }
        var attempt = 0
        while true {
            let connection: RedisConnection
            do {
                connection = try await RedisConnection.connect(configuration: redis, eventLoopGroup: eventLoopGroup, logger: logger)
            } catch {
                attempt += 1
                logger.warning("cluster presence could not connect to Redis", metadata: ["redis": "\(redis)", "error": "\(error)", "redis.attempt": "\(attempt)"])
                if state.withLock({ $0.finished }) || Task.isCancelled { return }
                try? await Task.sleep(for: ClusterBus.backoff(attempt: attempt, base: redis.reconnectBaseDelay, max: redis.reconnectMaxDelay))
                continue
            }
            attempt = 0
            state.withLock { $0.connected = true }
            connection.closeFuture.whenComplete { [weak self] _ in self?.wake(heartbeat: false) }
            do {
                try await sync(connection, registry: registry, router: router)
                scheduleReconcile()
                try await write(connection, registry: registry, router: router, subscriptionEpoch: subscriptionEpoch)
                try await leaveCluster(connection, router: router)
                await connection.close()
                logger.info("cluster presence stopped: this node's members and counts are removed from Redis")
                return
            } catch {
                let failed = state.withLock { state -> [Operation] in
                    state.connected = false
                    defer { state.operations.removeAll() }
                    return state.operations
                }
                for operation in failed { operation.fail() }
                await connection.close()
                logger.warning("cluster presence lost Redis; joins and leaves are decided on this node until it is back", metadata: [
                    "redis": "\(redis)", "error": "\(error)",
                ])
                if state.withLock({ $0.finished }) { return }
            }
        }
    }

    /// Writes batches until finished and drained; throws when the connection fails.
    private func write(_ connection: RedisConnection, registry: ChannelRegistry, router: Router, subscriptionEpoch: @Sendable () -> Int) async throws {
        var epoch = subscriptionEpoch()
        while true {
            let (operations, dirty, heartbeatDue, finished) = await nextBatch()
            guard connection.isActive else { throw RedisError(.connectionClosed, "connection to Redis closed") }
            var commands: [ByteBuffer] = []
            for operation in operations {
                switch operation {
                case .join(let channel, let socketID, let member, let maxMembers, _):
                    commands.append(Self.eval(Script.join, keys: [conns(channel), users(channel), nodeChannels(nodeID)], arguments: [
                        field(socketID), member.key, Self.value(member, socketID: socketID), Self.channelField(channel), String(max(0, maxMembers)),
                    ]))
                case .leave(let channel, let socketID, _):
                    commands.append(Self.eval(Script.leave, keys: [conns(channel), users(channel)], arguments: [field(socketID)]))
                }
            }
            let counts = dirty.map { ($0, registry.subscriberCount(key: $0)) }
            if !counts.isEmpty { commands.append(countsCommand(counts, full: false)) }
            // No subscriber here any more: this node's view of the channel goes.
            let vacant = counts.filter { $0.1 == 0 }.map(\.0)
            if !vacant.isEmpty { known.withLock { known in for channel in vacant { known[channel] = nil } } }
            if heartbeatDue {
                commands.append(Self.command(["ZADD", "\(base):nodes", expiry(), nodeID]))
                commands.append(reapCommand())
            }
            if !commands.isEmpty {
                let replies = try await connection.send(pipelined: commands, timeout: Self.commandTimeout)
                var index = 0
                for operation in operations {
                    deliver(replies[index], to: operation)
                    index += 1
                }
                if !counts.isEmpty {
                    recordOccupancy(replies[index], registry: registry)
                    index += 1
                }
                if heartbeatDue {
                    let added = replies[index].int ?? 0
                    handleReaped(replies[index + 1], registry: registry, router: router)
                    if added == 1 {
                        // Our heartbeat had expired (another node removed us) or Redis lost its
                        // data: write everything again.
                        logger.warning("this node was missing from the cluster's presence in Redis; re-asserting its members and counts")
                        try await sync(connection, registry: registry, router: router)
                        scheduleReconcile()
                    }
                    // The subscription reconnected: notices may have been missed meanwhile.
                    let now = subscriptionEpoch()
                    if now != epoch {
                        epoch = now
                        scheduleReconcile()
                    }
                    let due = state.withLock { state -> Bool in
                        guard let at = state.reconcileAt, at <= .now else { return false }
                        state.reconcileAt = nil
                        return true
                    }
                    if due { try await reconcile(connection, router: router) }
                }
            }
            if finished && operations.isEmpty && dirty.isEmpty { return }
        }
    }

    private func nextBatch() async -> (operations: [Operation], dirty: Set<ChannelKey>, heartbeatDue: Bool, finished: Bool) {
        while true {
            let taken = state.withLock { state -> ([Operation], Set<ChannelKey>, Bool, Bool)? in
                if state.operations.isEmpty && state.dirty.isEmpty && !state.heartbeatDue && !state.finished { return nil }
                defer {
                    state.operations.removeAll(keepingCapacity: true)
                    state.dirty.removeAll()
                    state.heartbeatDue = false
                }
                return (state.operations, state.dirty, state.heartbeatDue, state.finished)
            }
            if let taken { return taken }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if !state.operations.isEmpty || !state.dirty.isEmpty || state.heartbeatDue || state.finished { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
            // A closed connection wakes the writer with nothing to do: let it notice.
            return ([], [], false, state.withLock { $0.finished })
        }
    }

    /// Writes this node's whole state: its presence connections (removing those it no longer
    /// has), its heartbeat and all its counts; then removes expired nodes.
    private func sync(_ connection: RedisConnection, registry: ChannelRegistry, router: Router) async throws {
        var arguments = [base, nodeID, expiry()]
        for (channel, socketID, member) in registry.localPresenceConnections() {
            arguments += [Self.channelField(channel), socketID, Self.value(member, socketID: socketID)]
        }
        let counts = registry.localSubscriberCounts()
        let replies = try await connection.send(pipelined: [
            Self.eval(Script.sync, keys: [], arguments: arguments),
            countsCommand(counts, full: true),
            reapCommand(),
        ], timeout: Self.commandTimeout)
        let offline = state.withLock { state in
            defer { state.joinedOffline.removeAll() }
            return state.joinedOffline
        }
        if case .array(let parts) = replies[0], parts.count == 3 {
            let reaped = parts[0].int == 1
            // Users whose joins or leaves the other nodes have not heard of: those that left while
            // Redis was unreachable, those that joined meanwhile, and — when the cluster had
            // removed this node — all of its users again.
            for (channel, member, _) in Self.members(parts[2]) {
                router.announceClusterPresence(PresenceNotice(channel: channel, member: member, joined: false, socketID: nil), locally: false)
            }
            for (channel, member, socketID) in Self.members(parts[1]) where reaped || offline.contains(Self.userMark(channel, member.key)) {
                router.announceClusterPresence(PresenceNotice(channel: channel, member: member, joined: true, socketID: socketID), locally: false)
            }
        } else {
            logger.error("cluster presence re-assertion failed", metadata: ["redis.reply": "\(replies[0])"])
        }
        recordOccupancy(replies[1], registry: registry)
        handleReaped(replies[2], registry: registry, router: router)
    }

    /// On shutdown: what is left of this node in Redis goes, announced to the other nodes.
    private func leaveCluster(_ connection: RedisConnection, router: Router) async throws {
        let replies = try await connection.send(pipelined: [
            Self.eval(Script.sync, keys: [], arguments: [base, nodeID, expiry()]),
            countsCommand([], full: true),
            Self.command(["ZREM", "\(base):nodes", nodeID]),
        ], timeout: Self.commandTimeout)
        if case .array(let parts) = replies[0], parts.count == 3 {
            for (channel, member, _) in Self.members(parts[2]) {
                router.announceClusterPresence(PresenceNotice(channel: channel, member: member, joined: false, socketID: nil), locally: false)
            }
        }
        if let registry = wiring.withLock({ $0 }) { recordOccupancy(replies[1], registry: registry) }
    }

    private func deliver(_ reply: RESPValue, to operation: Operation) {
        switch operation {
        case .join(let channel, _, _, _, let respond):
            guard case .array(let parts) = reply, parts.count == 2, let count = parts[0].int, case .array(let values) = parts[1] else {
                logger.error("unexpected reply to a presence join", metadata: ["herald.channel": "\(channel)", "redis.reply": "\(reply)"])
                respond(.unavailable)
                return
            }
            if count < 0 {
                respond(.full)
                return
            }
            var seen = Set<String>()
            var members: [(member: PresenceMember, socketID: String)] = []
            for value in values {
                guard let (member, socketID) = Self.member(value), seen.insert(member.key).inserted else { continue }
                members.append((member, socketID))
            }
            respond(.joined(first: count == 1, members: members))
        case .leave(let channel, _, let respond):
            switch reply {
            case .null:
                respond(.left(last: false, member: nil))
            case .array(let parts) where parts.count == 2:
                respond(.left(last: parts[0].int == 1, member: Self.member(parts[1])?.member))
            default:
                logger.error("unexpected reply to a presence leave", metadata: ["herald.channel": "\(channel)", "redis.reply": "\(reply)"])
                respond(.unavailable)
            }
        }
    }

    private func recordOccupancy(_ reply: RESPValue, registry: ChannelRegistry) {
        guard case .array(let changes) = reply else {
            logger.error("unexpected reply to the occupancy update", metadata: ["redis.reply": "\(reply)"])
            return
        }
        guard let webhooks = registry.webhooks else { return }
        for change in changes {
            guard let text = change.string, let first = text.first, let channel = Self.channel(fromField: String(text.dropFirst())) else { continue }
            webhooks.record(first == "+" ? .channelOccupied(channel: channel) : .channelVacated(channel: channel))
        }
    }

    private func handleReaped(_ reply: RESPValue, registry: ChannelRegistry, router: Router) {
        guard case .array(let parts) = reply, parts.count == 3, case .array(let nodes) = parts[0] else {
            logger.error("unexpected reply to the removal of expired nodes", metadata: ["redis.reply": "\(reply)"])
            return
        }
        for node in nodes {
            logger.warning("removed a cluster node whose heartbeat expired; its presence members left", metadata: ["herald.cluster.removed_node": "\(node.string ?? "?")"])
        }
        for (channel, member, _) in Self.members(parts[1]) {
            router.announceClusterPresence(PresenceNotice(channel: channel, member: member, joined: false, socketID: nil), locally: true)
        }
        recordOccupancy(parts[2], registry: registry)
    }

    // MARK: Cluster-wide queries

    /// Subscriber counts of the occupied channels of `namespace` in the whole cluster.
    func occupiedChannels(namespace: String?) async throws -> [String: Int] {
        let reply = try await query(["HGETALL", "\(base):occ"])
        guard case .array(let items) = reply else { throw RedisError(.protocolError, "unexpected reply \(reply)") }
        var result: [String: Int] = [:]
        var index = 0
        while index + 1 < items.count {
            if let field = items[index].string, let channel = Self.channel(fromField: field), channel.namespace == namespace,
               let count = items[index + 1].int, count > 0 {
                result[channel.name] = Int(count)
            }
            index += 2
        }
        return result
    }

    /// Subscriber count of `channel` in the whole cluster.
    func subscriberCount(_ channel: ChannelKey) async throws -> Int {
        let reply = try await query(["HGET", "\(base):occ", Self.channelField(channel)])
        return max(0, Int(reply.int ?? 0))
    }

    /// Distinct members of presence `channel` in the whole cluster.
    func members(_ channel: ChannelKey) async throws -> [PresenceMember] {
        let reply = try await query(["HVALS", conns(channel)])
        guard case .array(let values) = reply else { throw RedisError(.protocolError, "unexpected reply \(reply)") }
        var seen = Set<String>()
        return values.compactMap { Self.member($0)?.member }.filter { seen.insert($0.key).inserted }
    }

    private func query(_ arguments: [String]) async throws -> RESPValue {
        let open: RedisConnection
        if let existing = queries.withLock({ $0 }), existing.isActive {
            open = existing
        } else {
            open = try await RedisConnection.connect(configuration: redis, eventLoopGroup: eventLoopGroup, logger: logger)
            let replaced = queries.withLock { current -> RedisConnection? in
                defer { current = open }
                return current
            }
            if let replaced { await replaced.close() }
        }
        let reply = try await open.send(pipelined: [Self.command(arguments)], timeout: .seconds(2))[0]
        if case .error(let text) = reply { throw RedisError(.server, "\(arguments[0]) failed: \(text)") }
        return reply
    }

    /// Closes the query connection.
    func closeQueries() async {
        if let open = queries.withLock({ current -> RedisConnection? in
            defer { current = nil }
            return current
        }) {
            await open.close()
        }
    }

    // MARK: Keys and values

    private func conns(_ channel: ChannelKey) -> String { "\(base):conns:\(Self.channelField(channel))" }
    private func users(_ channel: ChannelKey) -> String { "\(base):users:\(Self.channelField(channel))" }
    private func nodeChannels(_ node: String) -> String { "\(base):node:\(node)" }
    private func field(_ socketID: String) -> String { nodeID + "\u{1F}" + socketID }
    /// When this node's heartbeat runs out: two heartbeat intervals (⅔ of ``ttl``) from now.
    /// Every node looks for expired ones at each of its heartbeats (every ⅓), so a node that
    /// stops is removed between ⅓ and the whole of ``ttl`` after it stopped, and a live node
    /// is removed only if one heartbeat comes more than ⅓ of ``ttl`` late.
    private func expiry() -> String {
        let now = Int64(WallClock.nowMilliseconds)
        return String(now + Int64(ttl / .milliseconds(1)) * 2 / 3)
    }

    private static func userMark(_ channel: ChannelKey, _ user: String) -> String { channelField(channel) + "\u{1F}" + user }

    /// A channel as one string, unambiguous whatever its name holds: `-:<name>` for a shared
    /// channel, `<n>:<namespace>:<name>` (n = the namespace's length in bytes) for an app's own.
    static func channelField(_ channel: ChannelKey) -> String {
        guard let namespace = channel.namespace else { return "-:" + channel.name }
        return "\(namespace.utf8.count):\(namespace):\(channel.name)"
    }

    /// The channel a ``channelField(_:)`` names, or `nil` when it is not one.
    static func channel(fromField field: String) -> ChannelKey? {
        let bytes = Array(field.utf8)
        if bytes.starts(with: Array("-:".utf8)) { return ChannelKey(shared: String(decoding: bytes[2...], as: UTF8.self)) }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), let length = Int(String(decoding: bytes[..<colon], as: UTF8.self)) else { return nil }
        let start = colon + 1
        guard length >= 0, start + length < bytes.count, bytes[start + length] == UInt8(ascii: ":") else { return nil }
        return ChannelKey(
            namespace: String(decoding: bytes[start..<(start + length)], as: UTF8.self),
            name: String(decoding: bytes[(start + length + 1)...], as: UTF8.self)
        )
    }

    /// What a connection's hash field holds: `<user>␟{"user_id":…,"user_info":…,"socketId":…}`.
    static func value(_ member: PresenceMember, socketID: String) -> String {
        member.key + "\u{1F}" + member.json(socketID: socketID).serialized
    }

    /// The member and socket id in a ``value(_:socketID:)``.
    static func member(_ reply: RESPValue) -> (member: PresenceMember, socketID: String)? {
        guard let text = reply.string, let separator = text.firstIndex(of: "\u{1F}") else { return nil }
        guard let json = try? JSONReader.parse(String(text[text.index(after: separator)...])), let member = PresenceMember(channelData: json) else { return nil }
        guard case .string(let socketID)? = json["socketId"] else { return (member, "") }
        return (member, socketID)
    }

    /// `[channel field, value, channel field, value, …]` as members.
    static func members(_ reply: RESPValue) -> [(ChannelKey, PresenceMember, String)] {
        guard case .array(let items) = reply else { return [] }
        var result: [(ChannelKey, PresenceMember, String)] = []
        var index = 0
        while index + 1 < items.count {
            if let field = items[index].string, let channel = channel(fromField: field), let (member, socketID) = member(items[index + 1]) {
                result.append((channel, member, socketID))
            }
            index += 2
        }
        return result
    }

    private func countsCommand(_ counts: [(ChannelKey, Int)], full: Bool) -> ByteBuffer {
        var arguments = [full ? "full" : "delta"]
        for (channel, count) in counts { arguments += [Self.channelField(channel), String(count)] }
        return Self.eval(Script.counts, keys: ["\(base):subs:\(nodeID)", "\(base):occ"], arguments: arguments)
    }

    private func reapCommand() -> ByteBuffer {
        Self.eval(Script.reap, keys: ["\(base):nodes"], arguments: [String(WallClock.nowMilliseconds), base, nodeID])
    }

    private static func eval(_ script: String, keys: [String], arguments: [String]) -> ByteBuffer {
        command(["EVAL", script, String(keys.count)] + keys + arguments)
    }

    private static func command(_ arguments: [String]) -> ByteBuffer {
        var bytes = ByteBuffer()
        RedisCommandEncoder.encode(arguments, into: &bytes)
        return bytes
    }

    /// The Lua scripts; each runs atomically in Redis. `\31` is the unit separator (␟).
    enum Script {
        /// KEYS: conns, users, node's channels. ARGV: field, user, value, channel field, most
        /// distinct members (0: no limit). Returns `{count of the user's connections after the
        /// join (0: already recorded; -1: refused, the channel is full), members}`.
        static let join = """
            local most = tonumber(ARGV[5])
            if most > 0 and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 and redis.call('HLEN', KEYS[2]) >= most then
              return {-1, {}}
            end
            local n = 0
            if redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) == 1 then
              n = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
            end
            redis.call('SADD', KEYS[3], ARGV[4])
            return {n, redis.call('HVALS', KEYS[1])}
            """

        /// KEYS: conns, users. ARGV: field. Returns nil (not recorded) or `{1 if last, value}`.
        static let leave = """
            local v = redis.call('HGET', KEYS[1], ARGV[1])
            if not v then return nil end
            redis.call('HDEL', KEYS[1], ARGV[1])
            local user = string.sub(v, 1, string.find(v, '\\31', 1, true) - 1)
            local n = redis.call('HINCRBY', KEYS[2], user, -1)
            if n <= 0 then
              redis.call('HDEL', KEYS[2], user)
              return {1, v}
            end
            return {0, v}
            """

        /// KEYS: node's counts, totals. ARGV: "full"|"delta", then channel field, count pairs
        /// ("full": channels not listed are 0). Returns `{"+field" | "-field", …}` for totals
        /// that left or reached 0.
        static let counts = """
            local out = {}
            local given = {}
            local function set(ch, new)
              local old = tonumber(redis.call('HGET', KEYS[1], ch) or '0')
              if new == old then return end
              if new > 0 then redis.call('HSET', KEYS[1], ch, new) else redis.call('HDEL', KEYS[1], ch) end
              local total = redis.call('HINCRBY', KEYS[2], ch, new - old)
              local before = total - (new - old)
              if total <= 0 then redis.call('HDEL', KEYS[2], ch) end
              if before <= 0 and total > 0 then table.insert(out, '+' .. ch)
              elseif before > 0 and total <= 0 then table.insert(out, '-' .. ch) end
            end
            for i = 2, #ARGV, 2 do
              given[ARGV[i]] = true
              set(ARGV[i], tonumber(ARGV[i + 1]))
            end
            if ARGV[1] == 'full' then
              for _, ch in ipairs(redis.call('HKEYS', KEYS[1])) do
                if not given[ch] then set(ch, 0) end
              end
            end
            return out
            """

        /// A Lua function for ``reap`` and ``sync``: removes connection `field` (its value `v`)
        /// from `conns`, takes one from its user's count in `users`, and appends `ch` and `v` to
        /// `left` when that was the user's last connection.
        static let dropConnection = """
            local function drop(conns, users, ch, field, v, left)
              redis.call('HDEL', conns, field)
              local user = string.sub(v, 1, string.find(v, '\\31', 1, true) - 1)
              if redis.call('HINCRBY', users, user, -1) <= 0 then
                redis.call('HDEL', users, user)
                table.insert(left, ch)
                table.insert(left, v)
              end
            end

            """

        /// KEYS: nodes. ARGV: now (ms), base, this node. Removes nodes whose heartbeat expired
        /// (each once: ZREM decides), with their connections and counts. Returns
        /// `{removed nodes, {channel field, value of a user who left, …}, {"-field", …}}`.
        static let reap = dropConnection + """
            local removed, left, vacated = {}, {}, {}
            local base = ARGV[2]
            for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
              if node ~= ARGV[3] and redis.call('ZREM', KEYS[1], node) == 1 then
                table.insert(removed, node)
                local prefix = node .. '\\31'
                local set = base .. ':node:' .. node
                for _, ch in ipairs(redis.call('SMEMBERS', set)) do
                  local conns = base .. ':conns:' .. ch
                  local users = base .. ':users:' .. ch
                  local all = redis.call('HGETALL', conns)
                  for i = 1, #all, 2 do
                    if string.sub(all[i], 1, #prefix) == prefix then
                      drop(conns, users, ch, all[i], all[i + 1], left)
                    end
                  end
                end
                redis.call('DEL', set)
                local subs = base .. ':subs:' .. node
                local counts = redis.call('HGETALL', subs)
                for i = 1, #counts, 2 do
                  local total = redis.call('HINCRBY', base .. ':occ', counts[i], -tonumber(counts[i + 1]))
                  if total <= 0 then
                    redis.call('HDEL', base .. ':occ', counts[i])
                    table.insert(vacated, '-' .. counts[i])
                  end
                end
                redis.call('DEL', subs)
                redis.call('SET', base .. ':reaped:' .. node, '1', 'EX', 86400)
              end
            end
            return {removed, left, vacated}
            """

        /// ARGV: base, node, heartbeat expiry, then channel field, socket id, value triples:
        /// this node's connections. Records them, removes this node's others, refreshes the
        /// heartbeat. Returns `{1 if the cluster had removed this node, joined, left}` (joined
        /// and left: channel field, value pairs of users whose count went from or to 0).
        static let sync = dropConnection + """
            local base, node = ARGV[1], ARGV[2]
            local prefix = node .. '\\31'
            local set = base .. ':node:' .. node
            local want, joined, left = {}, {}, {}
            for i = 4, #ARGV, 3 do
              local ch, field, v = ARGV[i], prefix .. ARGV[i + 1], ARGV[i + 2]
              want[ch .. '\\30' .. field] = true
              if redis.call('HSET', base .. ':conns:' .. ch, field, v) == 1 then
                local user = string.sub(v, 1, string.find(v, '\\31', 1, true) - 1)
                if redis.call('HINCRBY', base .. ':users:' .. ch, user, 1) == 1 then
                  table.insert(joined, ch)
                  table.insert(joined, v)
                end
              end
              redis.call('SADD', set, ch)
            end
            for _, ch in ipairs(redis.call('SMEMBERS', set)) do
              local conns = base .. ':conns:' .. ch
              local users = base .. ':users:' .. ch
              local all = redis.call('HGETALL', conns)
              local mine = 0
              for j = 1, #all, 2 do
                if string.sub(all[j], 1, #prefix) == prefix then
                  if want[ch .. '\\30' .. all[j]] then
                    mine = mine + 1
                  else
                    drop(conns, users, ch, all[j], all[j + 1], left)
                  end
                end
              end
              if mine == 0 then redis.call('SREM', set, ch) end
            end
            local reaped = redis.call('DEL', base .. ':reaped:' .. node)
            redis.call('ZADD', base .. ':nodes', ARGV[3], node)
            return {reaped, joined, left}
            """
    }
}

/// Wall-clock milliseconds since 1970: the heartbeat scores every node compares (nodes of one
/// cluster need clocks in step to well within the heartbeat's time to live).
enum WallClock {
    static var nowMilliseconds: Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

extension ChannelRegistry {
    /// Subscriber counts of the occupied channels of `namespace` (`nil`: the shared channels):
    /// the whole cluster's when the cluster is on (read from Redis; throws when it is
    /// unreachable), else this node's.
    public func queryOccupiedChannels(namespace: String? = nil) async throws -> [String: Int] {
        if let clusterPresence { return try await clusterPresence.occupiedChannels(namespace: namespace) }
        var result: [String: Int] = [:]
        for (key, count) in localSubscriberCounts() where key.namespace == namespace && count > 0 { result[key.name] = count }
        return result
    }

    /// Subscriber count of `channel` in `namespace`: the whole cluster's when the cluster is on
    /// (throws when Redis is unreachable), else this node's.
    public func querySubscriberCount(_ channel: String, namespace: String? = nil) async throws -> Int {
        let key = ChannelKey(namespace: namespace, name: channel)
        if let clusterPresence { return try await clusterPresence.subscriberCount(key) }
        return subscriberCount(key: key)
    }

    /// Distinct members of presence `channel` in `namespace`: the whole cluster's when the
    /// cluster is on (throws when Redis is unreachable), else this node's.
    public func queryPresenceMembers(_ channel: String, namespace: String? = nil) async throws -> [PresenceMember] {
        let key = ChannelKey(namespace: namespace, name: channel)
        if let clusterPresence { return try await clusterPresence.members(key) }
        return presenceMembers(key: key)
    }
}
