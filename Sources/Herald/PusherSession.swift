import HeraldCore
import HeraldProtocols
import Logging
import NIOCore

/// One Pusher Channels protocol 7 connection (pusher-js, Laravel Echo's pusher/reverb
/// connector) at `/app/{key}`.
///
/// Like ``EngineSession`` it is an actor whose executor is its connection's event loop, so
/// inbound frames and the router's fan-out batches enter it without a hop. It shares the
/// channel registry, the router and presence with Socket.IO clients: a Socket.IO client and a
/// Pusher client of the first app on the same channel see the same events and the same
/// members. A connection of a further app subscribes in that app's own namespace
/// (``namespace``, see ``ChannelKey``): it shares channels only with its own app's clients.

actor PusherSession: Recipient, WebSocketSession {
    nonisolated let eventLoop: any EventLoop
    nonisolated let channel: any Channel
    nonisolated let app: PusherApp?
    /// The channel namespace of ``app``: `nil` (the shared channels) for the first app, else
    /// the app's id. Channel names in this session are names within it.
    nonisolated let namespace: String?
    nonisolated let socketID: String
    private nonisolated let requestedKey: String
    private nonisolated let protocolVersion: String?
    private nonisolated let server: EngineIOServer

    nonisolated var unownedExecutor: UnownedSerialExecutor {
        eventLoop.executor.asUnownedSerialExecutor()
    }

    /// Subscribed channels, by name (within ``namespace``). Byte-exact (``ChannelNameSet``):
    /// the names are valid Pusher names (ASCII), but a `Set<String>` also matched their
    /// canonical twins (`private-\u{212A}x` for `private-Kx`, U+037E for `;`), so unsubscribing
    /// a twin left the stored channel. `presence` is keyed by names taken from this set.
    private var channels = ChannelNameSet()
    /// Channels whose subscription the plugins are deciding (see "Plugin hooks" below).
    private var authorizing = ChannelNameSet()
    /// The peer's address, kept only when plugin hooks take it.
    private var remoteAddress: String?
    /// The connection observers' notice of this connection's opening; `nil` when none observe.
    private var openNotice: Task<Void, Never>?
    private var presence: [String: PresenceMember] = [:]
    /// Presence channels whose member list is on its way (a cluster asks Redis), with the
    /// presence notices that arrived meanwhile (sent after the list unless it told the same).
    private var pendingPresence: [ChannelNameSet.ExactName: [EncodedBroadcast]] = [:]
    /// Missed-message recovery: the channels whose subscription opted in (RECOVERY.md).
    private var recoveries = SessionRecoveries()
    private var closed = false
    private var needsFlush = false
    /// Frames of the current loop turn, written as one at ``flushDeliveries()``.
    private var outbound = OutboundCoalescer()
    private var lastActivity = NIODeadline.now()
    private var awaitingPong = false
    private var activityTimer: RepeatedTask?
    /// The app's signin deadline (`userAuthenticationTimeout`), cancelled at signin.
    private var signinDeadline: Scheduled<Void>?
    /// The user id this connection signed in as (`pusher:signin`, D.9).
    private(set) var userID: String?
    private var clientEventLimit = TokenBucket(perSecond: PusherSession.clientEventsPerSecond)
    private var logger: Logger

    /// Client events per second per connection (Pusher's limit).
    static let clientEventsPerSecond = 10

    init(channel: any Channel, app: PusherApp?, requestedKey: String, protocolVersion: String?, server: EngineIOServer) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.app = app
        self.namespace = app.flatMap { ChannelKey.namespace(of: $0, among: server.configuration.pusherApps) }
        self.requestedKey = requestedKey
        self.protocolVersion = protocolVersion
        self.server = server
        self.socketID = PusherSocketID.generate()
        var logger = server.logger
        logger[metadataKey: "herald.pusher.socket"] = "\(socketID)"
        logger[metadataKey: "herald.pusher.app"] = "\(app?.id ?? "?")"
        self.logger = logger
    }

    /// The registry key of this connection's channel `name`.
    private nonisolated func key(_ name: String) -> ChannelKey {
        ChannelKey(namespace: namespace, name: name)
    }

    nonisolated func onLoop(_ body: @escaping @Sendable (isolated PusherSession) -> Void) {
        if eventLoop.inEventLoop {
            assumeIsolated(body)
        } else {
            eventLoop.execute { self.assumeIsolated(body) }
        }
    }

    // MARK: Opening

    /// Checks the app and protocol, then sends `pusher:connection_established`.
    func start() {
        guard let app else {
            logger.info("Pusher connection refused: unknown app key", metadata: ["herald.pusher.key": "\(requestedKey)"])
            close(code: .applicationDoesNotExist, message: "Application does not exist")
            return
        }
        if let version = protocolVersion {
            guard let number = Int(version) else {
                close(code: .invalidVersionString, message: "Invalid version string format")
                return
            }
            guard (5...7).contains(number) else {
                close(code: .unsupportedProtocolVersion, message: "Unsupported protocol version \(number)")
                return
            }
        }
        if let max = app.maxConnections, server.pusherConnectionCount(appID: app.id) > max {
            logger.warning("Pusher connection refused: app over its connection quota", metadata: ["herald.limit": "\(max)"])
            close(code: .overConnectionQuota, message: "Application is over connection quota")
            return
        }
        server.registry.connect(self)
        if app.subscriptionCountEvents { server.registry.subscriptionCounts.enable() }
        write(PusherMessage.connectionEstablished(socketID: socketID, activityTimeout: app.activityTimeout))
        let interval = TimeAmount.seconds(Int64(max(1, app.activityTimeout)))
        activityTimer = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            self.assumeIsolated { $0.checkActivity(timeout: interval) }
        }
        if let timeout = app.userAuthenticationTimeout {
            signinDeadline = eventLoop.scheduleTask(in: Self.timeAmount(timeout)) { [self] in
                self.assumeIsolated { $0.signinDeadlinePassed() }
            }
        }
        logger.debug("Pusher connection established")
        notifyPluginsOpened()
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    private func signinDeadlinePassed() {
        guard !closed, userID == nil else { return }
        logger.info("Pusher connection closed: no signin before the deadline")
        close(code: .unauthorized, message: "Connection not authorized within timeout")
    }

    /// Pings a silent client; closes with 4201 when a ping went unanswered.
    private func checkActivity(timeout: TimeAmount) {
        guard !closed else { return }
        guard NIODeadline.now() - lastActivity >= timeout else { return }
        if awaitingPong {
            close(code: .pongReplyNotReceived, message: "Pong reply not received in time")
        } else {
            awaitingPong = true
            write(PusherMessage.ping())
        }
    }

    // MARK: Fan-out

    nonisolated func deliver(_ broadcast: EncodedBroadcast) -> Bool {
        eventLoop.assertInEventLoop()
        return callIsolatedOnLoop(broadcast) { session, broadcast in
            guard !session.closed, var frame = broadcast.pusherFrame,
                  broadcast.excludedSocketID != session.socketID else { return false }
            if broadcast.presence != nil, !session.pendingPresence.isEmpty, let mark = broadcast.presence, session.pendingPresence[ChannelNameSet.ExactName(name: mark.channel)] != nil {
                session.pendingPresence[ChannelNameSet.ExactName(name: mark.channel)]?.append(broadcast)
                return false
            }
            // Missed-message recovery: a subscription that opted in gets the offset form.
            // (Checked without binding first: connections that did not opt in pay a nil check and, while
            // history is on, a count.)
            if broadcast.recoverable != nil, !session.recoveries.isEmpty, let recoverable = broadcast.recoverable,
               let state = session.recoveries[recoverable.channel] {
                guard case .position(let position) = state, recoverable.offset > position else { return false }  // replayed
                frame = recoverable.pusherFrame
            }
            session.outbound.append(frame)
            defer { session.needsFlush = true }
            return !session.needsFlush
        }
    }

    /// Queues a `pusher_internal:subscription_count` broadcast when this connection's app opted
    /// in to them; returns whether the connection became dirty. Called on ``eventLoop``.
    nonisolated func deliverSubscriptionCount(_ broadcast: EncodedBroadcast) -> Bool {
        guard app?.subscriptionCountEvents == true else { return false }
        return deliver(broadcast)
    }

    nonisolated func flushDeliveries() {
        eventLoop.assertInEventLoop()
        callIsolatedOnLoop(()) { session, _ in
            guard session.needsFlush else { return }
            session.needsFlush = false
            if let bytes = session.outbound.take() { session.channel.writeAndFlush(bytes, promise: nil) }
            if !session.channel.isWritable { session.disconnectSlowConsumer() }
        }
    }

    // MARK: WebSocket

    nonisolated func webSocketReceivedText(_ text: ByteBuffer, on channel: any Channel) {
        onLoop { $0.receive(text) }
    }

    nonisolated func webSocketReceivedBinary(_ bytes: ByteBuffer, on channel: any Channel) {
        onLoop { $0.sendError(code: nil, message: "Binary frames are not part of the Pusher protocol") }
    }

    nonisolated func webSocketDidClose(_ channel: any Channel) {
        onLoop { $0.connectionLost() }
    }

    private func write(_ message: ByteBuffer) {
        guard channel.isActive else { return }
        // Broadcasts gathered earlier in this turn go first, to keep the order.
        if let pending = outbound.take() { channel.write(pending, promise: nil) }
        channel.writeAndFlush(WebSocketFraming.frame(opcode: .text, payload: message), promise: nil)
    }

    private func sendError(code: Int?, message: String, channel: String? = nil) {
        write(PusherMessage.error(code: code, message: message, channel: channel))
    }

    // MARK: Inbound

    private func receive(_ text: ByteBuffer) {
        guard !closed, let app else { return }
        lastActivity = NIODeadline.now()
        awaitingPong = false
        let message: PusherMessage
        do {
            message = try PusherMessage(frame: text, maxEventNameLength: app.maxEventNameLength, maxChannelNameLength: app.maxChannelNameLength)
        } catch {
            logger.info("bad Pusher frame", metadata: ["error": "\(error)"])
            sendError(code: nil, message: "\(error)")
            return
        }
        switch message.event {
        case "pusher:ping":
            write(PusherMessage.pong())
        case "pusher:pong":
            break
        case "pusher:subscribe":
            do {
                let request = try message.subscribeRequest()
                noteRecoveryRequest(request.channel, message)
                subscribe(request, app: app)
            } catch {
                sendError(code: nil, message: "Invalid subscribe request: \(error)")
            }
        case "pusher:unsubscribe":
            if let channel = try? message.unsubscribeChannel() { unsubscribe(channel) }
        case "pusher:signin":
            signin(message, app: app)
        case let name where message.isClientEvent:
            clientEvent(name, message: message, app: app)
        default:
            logger.debug("ignoring Pusher event", metadata: ["herald.event": "\(message.event)"])
        }
    }

    /// `pusher:signin` (D.9): `auth` must sign `<socket_id>::user::<user_data>` and `user_data`
    /// must hold a non-empty string `id`; anything else is 4009 and the connection is closed.
    private func signin(_ message: PusherMessage, app: PusherApp) {
        let request: PusherSigninRequest
        let user: PusherUserData
        do {
            request = try message.signinRequest()
            user = try PusherUserData(userData: request.userData)
        } catch {
            logger.info("Pusher signin refused: bad request", metadata: ["error": "\(error)"])
            close(code: .unauthorized, message: "Invalid signin request: \(error)")
            return
        }
        guard PusherSignature.verifySignin(request.auth, key: app.key, secret: app.secret, socketID: socketID, userData: request.userData) else {
            logger.info("Pusher signin refused: bad signature")
            close(code: .unauthorized, message: "Connection is unauthorized")
            return
        }
        let previous = userID
        if let previous, !previous.utf8.elementsEqual(user.id.utf8) {  // bytes: "\u{212A}ate" is not "Kate"
            // Signed in again as someone else: the former user's channel is no longer theirs.
            let ownChannel = PusherChannelName.serverToUserPrefix + previous
            if channels.contains(ownChannel) { unsubscribe(ownChannel) }
        }
        userID = user.id
        signinDeadline?.cancel()
        signinDeadline = nil
        server.pusherUserSignedIn(self, userID: user.id, previous: previous)
        logger[metadataKey: "herald.pusher.user"] = "\(user.id)"
        logger.debug("Pusher signin")
        write(PusherMessage.signinSuccess(userData: request.userData))
    }

    private func subscriptionError(_ channel: String, status: Int, type: String = "AuthError", error: String) {
        write(PusherMessage.subscriptionError(channel: channel, type: type, error: error, status: status))
    }

    private func subscribe(_ request: PusherSubscribeRequest, app: PusherApp) {
        let name = request.channel
        let parsed: PusherChannelName
        do {
            parsed = try PusherChannelName(name, maxLength: app.maxChannelNameLength)
        } catch {
            subscriptionError(name, status: 4009, type: "InvalidChannel", error: "Invalid channel name: \(error)")
            return
        }
        if channels.contains(name) {
            write(PusherMessage.subscriptionSucceeded(channel: name))  // idempotent repeat
            return
        }
        guard channels.count < server.configuration.maxChannelsPerConnection else {
            subscriptionError(name, status: 4100, type: "LimitReached", error: "Too many channels on this connection")
            return
        }
        if server.router.plugins.authorizesSubscriptions, parsed.kind != .reserved, parsed.kind != .serverToUser {
            askPlugins(request, parsed: parsed, app: app)
            return
        }
        admit(request, parsed: parsed, app: app)
    }

    /// Herald's own check of a subscription no plugin decided (signatures, server-to-user
    /// ownership), then the cache channel's last event.
    private func admit(_ request: PusherSubscribeRequest, parsed: PusherChannelName, app: PusherApp) {
        let name = request.channel
        switch parsed.kind {
        case .public:
            join(name, member: nil)
            write(PusherMessage.subscriptionSucceeded(channel: name))
        case .private, .privateEncrypted:
            guard let auth = request.auth,
                  PusherSignature.verifyChannelAuth(auth, key: app.key, secret: app.secret, socketID: socketID, channel: name, channelData: nil) else {
                logger.info("Pusher subscription refused: bad signature", metadata: ["herald.channel": "\(name)"])
                subscriptionError(name, status: 401, error: "The connection is unauthorized.")
                return
            }
            join(name, member: nil)
            write(PusherMessage.subscriptionSucceeded(channel: name))
        case .presence:
            guard let auth = request.auth, let channelData = request.channelData,
                  PusherSignature.verifyChannelAuth(auth, key: app.key, secret: app.secret, socketID: socketID, channel: name, channelData: channelData) else {
                logger.info("Pusher subscription refused: bad signature", metadata: ["herald.channel": "\(name)"])
                subscriptionError(name, status: 401, error: "The connection is unauthorized.")
                return
            }
            let pusherMember: PusherPresenceMember
            do {
                pusherMember = try PusherPresenceMember(channelData: channelData, maxUserInfoBytes: app.maxPresenceMemberBytes)
            } catch {
                subscriptionError(name, status: 4100, type: "LimitReached", error: "Invalid presence member: \(error)")
                return
            }
            let member = PresenceMember(pusherMember)
            if refusedAsFull(name, member, app: app) { return }
            join(name, member: member, cache: (parsed, app))
            return
        case .serverToUser:
            // Only for the connection signed in as that user; no signature needed (pusher-js
            // sends auth "").
            // Byte-exact: `String ==` would give `#server-to-user-Kate` to the user "\u{212A}ate".
            guard let owner = parsed.serverToUserID, let userID, owner.utf8.elementsEqual(userID.utf8) else {
                logger.info("Pusher subscription refused: server-to-user channel of another user", metadata: ["herald.channel": "\(name)"])
                subscriptionError(name, status: 401, error: "The connection is unauthorized.")
                return
            }
            join(name, member: nil)
            write(PusherMessage.subscriptionSucceeded(channel: name))
        case .reserved:
            subscriptionError(name, status: 4009, type: "AuthError", error: "This channel is not available on this server")
            return
        }
        replayCache(name, parsed: parsed, app: app)
    }

    /// This node's check of the app's presence member limit (in a cluster the join asks Redis
    /// for the whole cluster's too): true, with the error sent, when `member` would be one
    /// distinct member too many.
    private func refusedAsFull(_ name: String, _ member: PresenceMember, app: PusherApp) -> Bool {
        let current = server.registry.presenceMembers(key: key(name))
        guard current.count >= app.maxPresenceMembers, !current.contains(where: { $0.key == member.key }) else { return false }
        refuseFullPresence(name)
        return true
    }

    private func refuseFullPresence(_ name: String) {
        subscriptionError(name, status: 4100, type: "LimitReached", error: "The presence channel has reached its member limit")
    }

    private func replayCache(_ name: String, parsed: PusherChannelName, app: PusherApp) {
        if parsed.isCache {
            // Right after subscription_succeeded: the channel's last event, or pusher:cache_miss.
            let reply = server.router.channelCache.subscriberReply(channel: key(name), ttl: .seconds(Int64(app.cacheTTL)))
            write(reply.message)
            if reply.miss { server.registry.webhooks?.record(.cacheMiss(channel: key(name))) }
        }
        // Every admitted subscription ends here (after subscription_succeeded and the cached
        // event): missed-message recovery's replay comes next.
        recoverMissed(name)
    }

    /// Subscribes to `channel`; for a presence channel (a `member`) also writes
    /// `pusher_internal:subscription_succeeded` with the members, then the cache channel's last
    /// event when `cache` is given — at once on one node, once Redis answered in a cluster (on
    /// this loop).
    private func join(_ channel: String, member: PresenceMember?, cache: (parsed: PusherChannelName, app: PusherApp)? = nil) {
        guard channels.insert(channel).inserted else { return }
        logger.debug("Pusher subscribed", metadata: ["herald.channel": "\(channel)"])
        guard let member else {
            server.registry.subscribe(self, to: key(channel))
            return
        }
        presence[channel] = member
        pendingPresence[ChannelNameSet.ExactName(name: channel)] = []
        // In a cluster Redis checks the member limit for the whole cluster (`admit` checked this
        // node's members already).
        let onFull: @Sendable () -> Void = { [self] in
            assumeIsolated { session in
                session.pendingPresence[ChannelNameSet.ExactName(name: channel)] = nil
                guard !session.closed, session.presence.removeValue(forKey: channel) != nil else { return }
                session.channels.remove(channel)
                session.refuseFullPresence(channel)
            }
        }
        server.router.joinPresence(self, socketID: socketID, channel: key(channel), member: member, maxMembers: app?.maxPresenceMembers ?? 0, onFull: onFull) { [self] members in
            // Called on this session's loop (the router hops there), hence no `await`.
            assumeIsolated { session in
                let held = session.pendingPresence.removeValue(forKey: ChannelNameSet.ExactName(name: channel)) ?? []
                guard !session.closed, session.presence[channel] != nil else { return }
                session.write(PusherMessage.presenceSubscriptionSucceeded(channel: channel, members: members.map(\.member.pusherMember)))
                if let cache { session.replayCache(channel, parsed: cache.parsed, app: cache.app) }
                let listed = Set(members.map(\.member.key))
                var dirty = false
                for notice in held where notice.presence?.isNews(given: listed) == true {
                    dirty = session.deliver(notice) || dirty
                }
                if dirty { session.flushDeliveries() }
            }
        }
    }

    private func unsubscribe(_ channel: String) {
        authorizing.remove(channel)
        // Byte-exact, as the registry (see `ChannelKey`): a twin's name (U+212A for "K") is
        // not a subscribed channel's.
        guard let channel = channels.remove(channel) else { return }
        if presence[channel] != nil {
            leavePresence(channel)
        } else {
            server.registry.unsubscribe(self, from: key(channel))
        }
    }

    private func leavePresence(_ channel: String) {
        pendingPresence[ChannelNameSet.ExactName(name: channel)] = nil
        guard presence.removeValue(forKey: channel) != nil else { return }
        server.router.leavePresence(self, socketID: socketID, channel: key(channel))
    }

    /// `client-*` events: private/presence (not encrypted), subscribed, enabled for the app,
    /// ≤ 10/s. Refusals answer `pusher:error` 4301 without closing.
    private func clientEvent(_ name: String, message: PusherMessage, app: PusherApp) {
        guard app.clientEventsEnabled else {
            sendError(code: 4301, message: "Client events are not enabled for this app", channel: message.channel)
            return
        }
        // Byte-exact membership (``ChannelNameSet``): `private-\u{212A}x` is not `private-Kx`.
        guard let channel = message.channel, channels.contains(channel) else {
            sendError(code: 4301, message: "Client event rejected: not subscribed to the channel", channel: message.channel)
            return
        }
        let kind = PusherChannelName.kind(of: channel)
        guard kind == .private || kind == .presence else {
            sendError(code: 4301, message: "Client events are only allowed on private and presence channels", channel: channel)
            return
        }
        let data = message.data ?? ByteBuffer(string: "{}")
        guard data.readableBytes <= app.maxEventPayloadBytes else {
            sendError(code: 4301, message: "Client event rejected: payload over \(app.maxEventPayloadBytes) bytes", channel: channel)
            return
        }
        guard clientEventLimit.take() else {
            sendError(code: 4301, message: "Client event rejected: rate limit (10 per second)", channel: channel)
            return
        }
        var event = Event(channel: channel, name: name, data: data, excludedSocketID: socketID, source: .client, namespace: namespace)
        event.senderUserID = presence[channel]?.key
        // The client_event webhook is recorded by the router, after the plugins (a whisper a
        // plugin drops makes none).
        server.router.publish(event)
    }

    // MARK: Closing

    private func connectionLost() {
        guard !closed else { return }
        closed = true
        cleanUp()
    }

    /// Sends `pusher:error` with `code`, then closes the WebSocket with the same code.
    func close(code: PusherErrorCode, message: String) {
        guard !closed else { return }
        closed = true
        cleanUp()
        let channel = self.channel
        channel.write(WebSocketFraming.frame(opcode: .text, payload: PusherMessage.error(code: code.rawValue, message: message)), promise: nil)
        channel.writeAndFlush(WebSocketFraming.closeFrame(code: UInt16(code.rawValue), reason: message)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The client stopped reading (more than `maxOutboundBytes` wait). The session closes now —
    /// it leaves every channel and presence, and nothing more is queued for it — so it delays
    /// no one else; the connection gets `pusher:error` and close 4100 behind what is already
    /// queued, and is reset if it has not taken them within `slowConsumerCloseGrace` (see
    /// ``SlowConsumerClose``).
    private func disconnectSlowConsumer() {
        guard !closed else { return }
        logger.warning("slow consumer: outbound buffer over the limit; disconnecting", metadata: [
            "herald.limit_bytes": "\(server.configuration.maxOutboundBytes)",
        ])
        server.countSlowConsumer()
        closed = true
        cleanUp()
        let code = PusherErrorCode.overCapacity.rawValue
        SlowConsumerClose.close(channel, frames: [
            WebSocketFraming.frame(opcode: .text, payload: PusherMessage.error(code: code, message: "Slow consumer: too much data waiting")),
            WebSocketFraming.closeFrame(code: UInt16(code), reason: "slow consumer"),
        ], grace: server.configuration.slowConsumerCloseGrace.timeAmount)
    }

    private func cleanUp() {
        activityTimer?.cancel()
        signinDeadline?.cancel()
        for channel in presence.keys { leavePresence(channel) }
        let namespace = self.namespace
        server.registry.disconnect(self, channels: channels.lazy.map { ChannelKey(namespace: namespace, name: $0) })
        channels.removeAll()
        authorizing.removeAll()
        server.pusherConnectionClosed(self, userID: userID)
        notifyPluginsClosed()
    }
}

// MARK: Plugin hooks

extension PusherSession {
    private func connectionInfo() -> ConnectionInfo {
        ConnectionInfo(clientProtocol: .pusher, socketID: socketID, remoteAddress: remoteAddress, userID: userID, appID: app?.id)
    }

    /// `connection_established` went out: tell the connection observers (fire-and-forget).
    fileprivate func notifyPluginsOpened() {
        let plugins = server.router.plugins
        guard plugins.observesConnections || plugins.authorizesSubscriptions else { return }
        remoteAddress = channel.remoteAddress.map { "\($0)" }
        openNotice = plugins.connectionOpened(connectionInfo(), logger: logger)
    }

    /// The connection closed: tell the observers told of its opening.
    fileprivate func notifyPluginsClosed() {
        guard let notice = openNotice else { return }
        openNotice = nil
        server.router.plugins.connectionClosed(connectionInfo(), after: notice, logger: logger)
    }

    /// Asks the subscription authorizers; the answer comes back on this loop. The channel
    /// counts as authorizing meanwhile (an unsubscribe cancels it).
    fileprivate func askPlugins(_ request: PusherSubscribeRequest, parsed: PusherChannelName, app: PusherApp) {
        let name = request.channel
        guard !authorizing.contains(name) else { return }
        guard channels.count + authorizing.count < server.configuration.maxChannelsPerConnection else {
            subscriptionError(name, status: 4100, type: "LimitReached", error: "Too many channels on this connection")
            return
        }
        authorizing.insert(name)
        decide(SubscriptionRequest(channel: name, connection: connectionInfo(), namespace: namespace), subscribe: request, parsed: parsed, logger: logger)
    }

    private nonisolated func decide(_ question: SubscriptionRequest, subscribe request: PusherSubscribeRequest, parsed: PusherChannelName, logger: Logger) {
        let plugins = server.router.plugins
        Task {
            let decision = await plugins.authorize(question, logger: logger)
            self.onLoop { $0.finishPluginAuthorization(request, parsed: parsed, decision: decision) }
        }
    }

    private func finishPluginAuthorization(_ request: PusherSubscribeRequest, parsed: PusherChannelName, decision: SubscriptionDecision) {
        let name = request.channel
        // Unsubscribed (or disconnected) while the plugins were deciding: nothing to do.
        guard authorizing.remove(name) != nil, !closed, let app else { return }
        switch decision {
        case .deferToApp:
            admit(request, parsed: parsed, app: app)
            return
        case .deny(let status):
            logger.info("Pusher subscription refused by a plugin", metadata: ["herald.channel": "\(name)", "herald.status": "\(status)"])
            subscriptionError(name, status: status, error: "The subscription was refused.")
            return
        case .allow(let channelData):
            guard parsed.kind == .presence else {
                join(name, member: nil)
                write(PusherMessage.subscriptionSucceeded(channel: name))
                break
            }
            // Pusher presence needs a member: the plugin must name one.
            guard let member = channelData.flatMap(PresenceMember.init(channelData:)) else {
                logger.warning("a plugin admitted a presence subscription without channel_data.user_id; refused", metadata: ["herald.channel": "\(name)"])
                subscriptionError(name, status: 403, error: "The subscription has no presence member.")
                return
            }
            if refusedAsFull(name, member, app: app) { return }
            join(name, member: member, cache: (parsed, app))
            return
        }
        replayCache(name, parsed: parsed, app: app)
    }
}

// MARK: Missed-message recovery (RECOVERY.md)

extension PusherSession {
    /// A `pusher:subscribe` arrived: remembers its data's `herald_recovery` request until the
    /// subscription is admitted (or forgets an earlier one). Nothing happens while history is
    /// off or for a channel this connection is already subscribed to.
    fileprivate func noteRecoveryRequest(_ channel: String, _ message: PusherMessage) {
        guard server.router.history != nil, !channels.contains(channel) else { return }
        recoveries.note(channel, RecoveryRequest((try? message.dataValue())?[RecoveryRequest.field]), limit: server.configuration.maxChannelsPerConnection) {
            channels.contains($0) || authorizing.contains($0)
        }
    }

    /// The subscription to `name` succeeded (`subscription_succeeded` and a cache channel's
    /// last event are written): when it asked for recovery, writes the events it missed, oldest
    /// first, then `herald:recovery`; from then on its live events carry their offsets.
    ///
    /// Live events that reach the connection before this (a presence join waiting for Redis in
    /// a cluster) are skipped by ``deliver(_:)``: they were recorded before this replay reads
    /// the history, so they are in it, in order, exactly once.
    fileprivate func recoverMissed(_ name: String) {
        guard let history = server.router.history, !recoveries.isEmpty,
              let request = recoveries.admit(name, subscribed: channels.contains(name) && !closed) else { return }
        let recovery = history.recover(key(name), request: request, socketID: socketID)
        recoveries.replayed(name, upTo: recovery.offset)
        logger.debug("recovery", metadata: [
            "herald.channel": "\(name)", "herald.recovered": "\(recovery.recovered)", "herald.replayed": "\(recovery.events.count)",
        ])
        guard channel.isActive else { return }
        // Broadcasts gathered earlier in this turn go first, to keep the order.
        if let pending = outbound.take() { channel.write(pending, promise: nil) }
        for entry in recovery.events {
            channel.write(WebSocketFraming.frame(opcode: .text, payload: RecoveryWire.pusherEvent(entry, channel: name)), promise: nil)
        }
        channel.writeAndFlush(WebSocketFraming.frame(opcode: .text, payload: RecoveryWire.pusherNotice(channel: name, recovery)), promise: nil)
    }
}
