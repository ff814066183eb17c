import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1

/// A held polling `GET` (or a `POST`) waiting for its answer. Writing the answer is safe from
/// any thread: it goes to the request's own channel.
struct PollResponder: Sendable {
    let channel: any Channel
    let headers: HTTPHeaders
    let keepAlive: Bool

    func respond(status: HTTPResponseStatus = .ok, contentType: String, body: ByteBuffer) {
        var head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        head.headers.replaceOrAdd(name: "Content-Type", value: contentType)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        head.headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        if !keepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        let channel = self.channel
        let keepAlive = self.keepAlive
        channel.write(HTTPServerResponsePart.head(head), promise: nil)
        channel.write(HTTPServerResponsePart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    func respond(error: EngineIOError) {
        respond(status: HTTPResponseStatus(statusCode: error.httpStatus), contentType: "application/json", body: ByteBuffer(string: error.jsonBody))
    }
}

/// One Engine.IO session and the Socket.IO socket on it.
///
/// The actor runs on the event loop of the connection that opened it (its executor *is* that
/// loop), so code already on the loop enters it with `assumeIsolated` and no hop: inbound
/// packets from its own connection, and fan-out batches from the router. Its rules:
/// Engine.IO transports (polling, WebSocket, the upgrade between them), heartbeats, the
/// Socket.IO namespace handshake, and the client's channel subscriptions (always among
/// Herald's shared channels, see ``ChannelKey``).
public actor EngineSession: Recipient {
    enum Transport {
        /// Long-polling: packets wait in `queue` for the next GET.
        case polling
        /// WebSocket (from the start, or after an upgrade).
        case webSocket(any Channel)
    }

    enum Upgrade {
        case none
        /// A WebSocket probe connection is open; the client has or has not sent `2probe` yet.
        case probing(any Channel, probed: Bool)
    }

    nonisolated let eventLoop: any EventLoop
    /// The Engine.IO session id (`sid`).
    public nonisolated let id: String
    /// The Engine.IO protocol generation.
    public nonisolated let version: EngineIOVersion
    private nonisolated let server: EngineIOServer

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        eventLoop.executor.asUnownedSerialExecutor()
    }

    private var transport: Transport
    private var upgrade: Upgrade = .none
    private var queue = LazyPacketQueue()
    private var pendingGet: PollResponder?
    private var closed = false
    private var needsFlush = false
    /// WebSocket frames of the current loop turn, written as one at ``flush()``.
    private var outbound = OutboundCoalescer()
    /// The Socket.IO socket id once the client joined `/` (what Laravel's `X-Socket-ID` holds).
    private(set) var socketID: String?
    /// Subscribed channels. Byte-exact sets (see ``ChannelNameSet``): a `Set<String>` took
    /// `private-user.\u{212A}ate` for `private-user.Kate`, so a socket on one twin could not
    /// subscribe to the other.
    private var channels = ChannelNameSet()
    /// Private/presence channels whose auth call is in flight.
    private var authorizing = ChannelNameSet()
    /// Presence channels this socket is a member of.
    private var presenceChannels = ChannelNameSet()
    /// Presence channels whose member list is on its way (a cluster asks Redis), with the
    /// presence notices that arrived meanwhile (sent after the list unless it told the same).
    private var pendingPresence: [ChannelNameSet.ExactName: [EncodedBroadcast]] = [:]
    /// Missed-message recovery: the channels whose subscription opted in (RECOVERY.md).
    private var recoveries = SessionRecoveries()
    private let handshake: HandshakeInfo
    /// Client-event rate limit: a token bucket refilled at `clientEventsPerSecond`.
    private var clientEventLimit: TokenBucket
    private var pendingAttachments = 0
    /// Refusals logged in the current one-second window (a hostile client must not flood logs).
    private var refusalWindow = NIODeadline.now()
    private var refusalsInWindow = 0
    private var pingTimer: Scheduled<Void>?
    private var pongDeadline: Scheduled<Void>?
    private var connectDeadline: Scheduled<Void>?
    private var upgradeDeadline: Scheduled<Void>?
    /// The relay's logger with this session's ids. Made when something is logged, not kept:
    /// a stored copy's metadata dictionary cost every idle connection ~0.1 KiB.
    private var logger: Logger {
        var logger = server.logger
        logger[metadataKey: "herald.sid"] = "\(id)"
        if let socketID { logger[metadataKey: "herald.socket"] = "\(socketID)" }
        return logger
    }
    /// The peer's address, kept only when plugin hooks take it (see "Plugin hooks" below).
    private var remoteAddress: String?
    /// The connection observers' notice of this socket's opening; `nil` when none observe.
    private var openNotice: Task<Void, Never>?

    init(id: String, version: EngineIOVersion, eventLoop: any EventLoop, transport: Transport, handshake: HandshakeInfo, server: EngineIOServer) {
        self.handshake = handshake
        self.clientEventLimit = TokenBucket(perSecond: server.configuration.clientEventsPerSecond)
        self.id = id
        self.version = version
        self.eventLoop = eventLoop
        self.transport = transport
        self.server = server
    }

    /// Runs `body` isolated to this session: inline when already on its loop, else on its loop.
    nonisolated func onLoop(_ body: @escaping @Sendable (isolated EngineSession) -> Void) {
        if eventLoop.inEventLoop {
            assumeIsolated(body)
        } else {
            eventLoop.execute { self.assumeIsolated(body) }
        }
    }

    // MARK: Opening

    /// Sends the `open` packet and starts the timers. Over polling the open packet answers the
    /// handshake GET (`handshake`); over WebSocket it is the first frame.
    ///
    /// Engine.IO 3 clients (socket.io 2.x) join `/` implicitly: the server sends `40` right
    /// after `open`, and the socket id is the Engine.IO sid.
    func start(handshake: PollResponder?) {
        let upgrades: [String]
        if case .polling = transport { upgrades = ["websocket"] } else { upgrades = [] }
        let config = server.configuration
        let open = EngineIOCodec.packet(.open, EngineIOCodec.handshakeJSON(
            sid: id,
            upgrades: upgrades,
            pingInterval: Int(config.pingInterval.milliseconds),
            pingTimeout: Int(config.pingTimeout.milliseconds),
            maxPayload: version == .v4 ? config.maxPayload : nil
        ))
        server.registry.connect(self)
        rememberRemoteAddress(handshake)
        logger.debug("session opened", metadata: ["herald.transport": "\(upgrades.isEmpty ? "websocket" : "polling")", "herald.eio": "\(version.rawValue)"])
        var first = [open]
        switch version {
        case .v4:
            schedulePing()
            connectDeadline = eventLoop.scheduleTask(in: config.connectTimeout.timeAmount) { [self] in
                self.assumeIsolated { session in
                    if session.socketID == nil { session.close(reason: "connect timeout") }
                }
            }
        case .v3:
            resetHeartbeatDeadline()
            joinDefaultNamespace(socketID: id)
            first.append(SocketIOCodec.connectReplyV4())
        }
        switch transport {
        case .webSocket(let channel):
            for packet in first { channel.write(WebSocketFraming.frame(opcode: .text, payload: packet), promise: nil) }
            channel.flush()
        case .polling:
            handshake?.respond(contentType: "text/plain; charset=UTF-8", body: pollBody(first))
        }
    }

    private func joinDefaultNamespace(socketID sid: String) {
        socketID = sid
        connectDeadline?.cancel()
        notifyPluginsOpened()
    }

    /// A polling response body in this session's framing.
    private func pollBody(_ packets: [ByteBuffer]) -> ByteBuffer {
        var body = ByteBuffer()
        switch version {
        case .v4: EngineIOCodec.encodePayloadV4(packets, into: &body)
        case .v3: EngineIOCodec.encodePayloadV3(packets, into: &body)
        }
        return body
    }

    private func respondNoop(_ responder: PollResponder) {
        responder.respond(contentType: "text/plain; charset=UTF-8", body: pollBody([EngineIOCodec.packet(.noop)]))
    }

    // MARK: Fan-out (called by the router on this loop)

    nonisolated func deliver(_ broadcast: EncodedBroadcast) -> Bool {
        eventLoop.assertInEventLoop()
        return callIsolatedOnLoop(broadcast) { session, broadcast in session.enqueue(broadcast) }
    }

    nonisolated func flushDeliveries() {
        eventLoop.assertInEventLoop()
        callIsolatedOnLoop(()) { session, _ in session.flush() }
    }

    /// Queues a broadcast unless this socket is excluded or not yet joined. Returns true when
    /// the session just became dirty (needs a ``flush()``).
    func enqueue(_ broadcast: EncodedBroadcast) -> Bool {
        guard !closed, let socketID, socketID != broadcast.excludedSocketID else { return false }
        if broadcast.presence != nil, !pendingPresence.isEmpty, let mark = broadcast.presence, pendingPresence[ChannelNameSet.ExactName(name: mark.channel)] != nil {
            pendingPresence[ChannelNameSet.ExactName(name: mark.channel)]?.append(broadcast)
            return false
        }
        // Missed-message recovery: a subscription that opted in gets the offset form.
        var recoverable: RecoverableEvent? = nil
        // (Checked without binding first: sockets that did not opt in pay a nil check and, while
        // history is on, a count.)
        if broadcast.recoverable != nil, !recoveries.isEmpty, let candidate = broadcast.recoverable, let state = recoveries[candidate.channel] {
            guard case .position(let position) = state, candidate.offset > position else { return false }  // replayed
            recoverable = candidate
        }
        let wasDirty = needsFlush
        switch transport {
        case .webSocket:
            outbound.append(recoverable?.socketIOFrame ?? broadcast.webSocketFrame)
        case .polling:
            guard queue.count < server.configuration.maxQueuedPackets else {
                logger.warning("polling client too slow: queue limit reached; closing", metadata: ["herald.queued": "\(queue.count)"])
                close(reason: "slow consumer")
                return false
            }
            queue.append(recoverable?.socketIOPacket ?? broadcast.packet)
        }
        needsFlush = true
        return !wasDirty
    }

    /// Writes out whatever ``enqueue(_:)`` queued since the last flush.
    func flush() {
        guard needsFlush else { return }
        needsFlush = false
        switch transport {
        case .webSocket(let channel):
            if let bytes = outbound.take() { channel.writeAndFlush(bytes, promise: nil) }
            if !channel.isWritable { disconnectSlowConsumer(channel) }
        case .polling:
            flushPolling()
        }
    }

    // MARK: Sending

    private func send(_ packet: ByteBuffer) {
        guard !closed else { return }
        switch transport {
        case .webSocket(let channel):
            // Broadcasts gathered earlier in this turn go first, to keep the order.
            if let pending = outbound.take() { channel.write(pending, promise: nil) }
            channel.writeAndFlush(WebSocketFraming.frame(opcode: .text, payload: packet), promise: nil)
        case .polling:
            queue.append(packet)
            flushPolling()
        }
    }

    private func flushPolling() {
        guard let responder = pendingGet, !queue.isEmpty else { return }
        pendingGet = nil
        respondToPoll(responder)
    }

    private func respondToPoll(_ responder: PollResponder) {
        let count = min(queue.count, server.configuration.maxPacketsPerPoll)
        var batch: [ByteBuffer] = []
        batch.reserveCapacity(count)
        for _ in 0..<count { batch.append(queue.removeFirst()) }
        responder.respond(contentType: "text/plain; charset=UTF-8", body: pollBody(batch))
    }

    // MARK: Polling requests

    func handlePollGet(_ responder: PollResponder) {
        if closed {
            responder.respond(error: .unknownSession)
            return
        }
        switch transport {
        case .webSocket:
            responder.respond(error: .badRequest)
            return
        case .polling:
            break
        }
        if pendingGet != nil {
            logger.warning("overlapping polling GET; closing the session")
            responder.respond(error: .badRequest)
            close(reason: "overlapping poll")
            return
        }
        if case .probing = upgrade, queue.isEmpty {
            // While the client upgrades, release polls at once so it can finish.
            respondNoop(responder)
            return
        }
        if queue.isEmpty {
            pendingGet = responder
        } else {
            respondToPoll(responder)
        }
    }

    /// The HTTP connection `channel` closed. If it held this session's poll, that is a
    /// transport close (as in engine.io): nothing may be written into a dead response and lost.
    func pollConnectionClosed(_ channel: any Channel) {
        guard let pending = pendingGet, pending.channel === channel else { return }
        pendingGet = nil
        close(reason: "transport close")
    }

    func handlePollPost(_ body: ByteBuffer, responder: PollResponder) {
        if closed {
            responder.respond(error: .unknownSession)
            return
        }
        if case .webSocket = transport {
            responder.respond(error: .badRequest)
            return
        }
        let packets: [EngineIOPacket]
        do {
            switch version {
            case .v4: packets = try EngineIOCodec.decodePayloadV4(body)
            case .v3: packets = try EngineIOCodec.decodePayloadV3(body)
            }
        } catch {
            logger.info("bad polling payload; closing the session", metadata: ["error": "\(error)"])
            responder.respond(error: .badRequest)
            close(reason: "parse error")
            return
        }
        responder.respond(contentType: "text/html", body: ByteBuffer(string: "ok"))
        for packet in packets where !closed {
            receive(packet)
        }
    }

    // MARK: WebSocket

    /// A WebSocket connection carrying this session's `sid` asks to take over.
    func attachProbe(_ channel: any Channel) -> Bool {
        guard !closed, case .polling = transport, case .none = upgrade else { return false }
        upgrade = .probing(channel, probed: false)
        upgradeDeadline = eventLoop.scheduleTask(in: server.configuration.upgradeTimeout.timeAmount) { [self] in
            self.assumeIsolated { session in
                if case .probing(let channel, _) = session.upgrade {
                    session.logger.info("upgrade timed out; closing the probe")
                    session.upgrade = .none
                    channel.close(promise: nil)
                }
            }
        }
        return true
    }

    /// A text frame arrived on `channel` (the session's WebSocket, or a probe).
    func receiveWebSocketText(_ text: ByteBuffer, on channel: any Channel) {
        guard !closed else { return }
        let packet: EngineIOPacket
        do {
            packet = try EngineIOCodec.decodePacket(text)
        } catch {
            logger.info("bad WebSocket packet; closing the session", metadata: ["error": "\(error)"])
            close(reason: "parse error")
            return
        }
        if case .probing(let probe, let probed) = upgrade, probe === channel {
            handleProbePacket(packet, probe: probe, probed: probed)
            return
        }
        guard case .webSocket(let current) = transport, current === channel else { return }
        receive(packet)
    }

    /// A binary frame arrived.
    func receiveWebSocketBinary(_ bytes: ByteBuffer, on channel: any Channel) {
        guard !closed, case .webSocket(let current) = transport, current === channel else { return }
        do {
            receive(try EngineIOCodec.decodeBinaryFrame(bytes, version: version))
        } catch {
            logger.info("bad binary frame; closing the session", metadata: ["error": "\(error)"])
            close(reason: "parse error")
        }
    }

    /// The WebSocket `channel` closed.
    func webSocketClosed(_ channel: any Channel) {
        if case .probing(let probe, _) = upgrade, probe === channel {
            upgrade = .none
            upgradeDeadline?.cancel()
            return
        }
        if case .webSocket(let current) = transport, current === channel {
            close(reason: "transport close")
        }
    }

    private func handleProbePacket(_ packet: EngineIOPacket, probe: any Channel, probed: Bool) {
        switch packet.type {
        case .ping where String(buffer: packet.data) == "probe":
            upgrade = .probing(probe, probed: true)
            probe.writeAndFlush(WebSocketFraming.frame(opcode: .text, payload: ByteBuffer(string: "3probe")), promise: nil)
            // Release the held poll so the client can send the upgrade packet.
            if let responder = pendingGet {
                pendingGet = nil
                if queue.isEmpty {
                    respondNoop(responder)
                } else {
                    respondToPoll(responder)
                }
            }
        case .upgrade where probed:
            upgradeDeadline?.cancel()
            upgrade = .none
            transport = .webSocket(probe)
            if let responder = pendingGet {
                pendingGet = nil
                respondNoop(responder)
            }
            // Everything still queued for polling goes over the WebSocket now.
            while let packet = queue.popFirst() {
                probe.write(WebSocketFraming.frame(opcode: .text, payload: packet), promise: nil)
            }
            probe.flush()
            logger.debug("upgraded to WebSocket")
        default:
            logger.info("unexpected packet during upgrade; closing the probe", metadata: ["herald.packet": "\(packet.type)"])
            upgradeDeadline?.cancel()
            upgrade = .none
            probe.close(promise: nil)
        }
    }

    // MARK: Engine.IO packets

    private func receive(_ packet: EngineIOPacket) {
        if version == .v3 { resetHeartbeatDeadline() }
        switch packet.type {
        case .pong where version == .v4:
            pongDeadline?.cancel()
            pongDeadline = nil
            schedulePing()
        case .ping where version == .v3:
            // Engine.IO 3: the client pings, the server answers at once.
            send(EngineIOCodec.packet(.pong, String(buffer: packet.data)))
        case .pong:
            logger.info("client sent pong on Engine.IO 3; closing")
            close(reason: "parse error")
        case .message:
            if packet.isBinary {
                guard pendingAttachments > 0 else {
                    logger.info("unexpected binary message; closing")
                    close(reason: "parse error")
                    return
                }
                pendingAttachments -= 1
                return
            }
            receiveSocketIO(packet.data)
        case .close:
            close(reason: "client close")
        case .ping:
            // v4 servers send pings; a client ping is a protocol error.
            logger.info("client sent ping on Engine.IO v4; closing")
            close(reason: "parse error")
        case .open, .upgrade, .noop:
            logger.info("unexpected Engine.IO packet; closing", metadata: ["herald.packet": "\(packet.type)"])
            close(reason: "parse error")
        }
    }

    /// Engine.IO 3: the session dies when no packet arrives for pingInterval + pingTimeout.
    private func resetHeartbeatDeadline() {
        pongDeadline?.cancel()
        let config = server.configuration
        pongDeadline = eventLoop.scheduleTask(in: (config.pingInterval + config.pingTimeout).timeAmount) { [self] in
            self.assumeIsolated { $0.close(reason: "ping timeout") }
        }
    }

    private func schedulePing() {
        pingTimer?.cancel()
        let config = server.configuration
        pingTimer = eventLoop.scheduleTask(in: config.pingInterval.timeAmount) { [self] in
            self.assumeIsolated { session in
                guard !session.closed else { return }
                session.send(EngineIOCodec.packet(.ping))
                session.pongDeadline = session.eventLoop.scheduleTask(in: config.pingTimeout.timeAmount) {
                    session.assumeIsolated { $0.close(reason: "ping timeout") }
                }
            }
        }
    }

    // MARK: Socket.IO

    private func receiveSocketIO(_ text: ByteBuffer) {
        if pendingAttachments > 0 {
            logger.info("text packet while binary attachments are pending; closing")
            close(reason: "parse error")
            return
        }
        let packet: SocketIOPacket
        do {
            packet = try SocketIOCodec.decode(text)
        } catch {
            logger.info("bad Socket.IO packet; closing the session", metadata: ["error": "\(error)"])
            close(reason: "parse error")
            return
        }
        pendingAttachments = packet.attachments
        if packet.namespace != "/" {
            if packet.type == .connect {
                // Herald serves the default namespace only (as laravel-echo-server).
                let namespace = String(packet.namespace.prefix { $0 != "?" })
                send(SocketIOCodec.connectError(namespace: namespace, message: "Invalid namespace", legacy: version == .v3))
            }
            return
        }
        switch packet.type {
        case .connect where version == .v3:
            // socket.io 2.x joins `/` implicitly; a CONNECT for `/` is answered again, harmlessly.
            send(SocketIOCodec.connectReplyV4())
        case .connect:
            guard socketID == nil else {
                logger.info("repeated CONNECT; closing")
                close(reason: "parse error")
                return
            }
            let sid = server.makeSocketID()
            joinDefaultNamespace(socketID: sid)
            send(SocketIOCodec.connectReply(sid: sid))
        case .disconnect:
            leaveAllChannels()
            notifyPluginsClosed()
            socketID = nil
        case .event, .binaryEvent:
            guard socketID != nil else {
                logger.info("EVENT before CONNECT; closing")
                close(reason: "parse error")
                return
            }
            handleEvent(packet)
        case .ack, .binaryAck, .connectError:
            break
        }
    }

    private func handleEvent(_ packet: SocketIOPacket) {
        guard let payload = packet.payload, case .array(let items)? = try? JSONReader.parse(payload),
              case .string(let name)? = items.first else { return }
        var argument = items.count > 1 ? items[1] : .null
        // laravel-echo-server accepts the argument as an object or as a JSON string.
        if case .string(let text) = argument, let parsed = try? JSONReader.parse(text) { argument = parsed }
        switch name {
        case "subscribe":
            guard let channel = Self.channelName(argument) else {
                logger.info("subscribe refused: no valid channel name (1-\(Self.maxChannelNameLength) bytes)")
                return
            }
            noteRecoveryRequest(channel, argument)
            subscribe(channel, auth: argument["auth"])
        case "unsubscribe":
            guard let channel = Self.channelName(argument) else {
                logger.info("unsubscribe ignored: no valid channel name")
                return
            }
            unsubscribe(channel)
        case "client event":
            clientEvent(argument)
        default:
            logger.debug("ignoring client event", metadata: ["herald.event": "\(name)"])
        }
    }

    /// Longest channel name accepted (Soketi's limit).
    static let maxChannelNameLength = 200

    /// Whether `name` holds a control character (Unicode general category Cc).
    static func hasControlCharacter(_ name: String) -> Bool {
        name.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    private static func channelName(_ argument: JSONValue) -> String? {
        guard case .string(let name)? = argument["channel"], !name.isEmpty, name.utf8.count <= maxChannelNameLength else { return nil }
        return name
    }

    private func subscriptionError(_ channel: String, status: Int) {
        var packet = ByteBuffer()
        SocketIOCodec.writeEvent(name: "subscription_error", arguments: [Self.quoted(channel), ByteBuffer(string: String(status))], into: &packet)
        send(packet)
    }

    private func subscribe(_ channel: String, auth: JSONValue?) {
        guard !channels.contains(channel), !authorizing.contains(channel) else { return }
        guard channels.count + authorizing.count < server.configuration.maxChannelsPerConnection else {
            logRefusal("subscription refused: channel limit reached", metadata: ["herald.channel": "\(channel)", "herald.limit": "\(server.configuration.maxChannelsPerConnection)"])
            subscriptionError(channel, status: 429)
            return
        }
        // `#…` names are Pusher's reserved channels (`#server-to-user-<id>` carries one user's
        // events): never a public channel for a Socket.IO client.
        guard !channel.hasPrefix("#") else {
            logRefusal("subscription refused: reserved channel name", metadata: ["herald.channel": "\(channel)"])
            subscriptionError(channel, status: 403)
            return
        }
        // No channel name holds control characters (U+0000–U+001F, U+007F–U+009F): they are
        // no one's channel, and would make logs and the status page lie about names.
        guard !Self.hasControlCharacter(channel) else {
            logRefusal("subscription refused: control character in the channel name", metadata: ["herald.channel": "\(channel.debugDescription)"])
            subscriptionError(channel, status: 403)
            return
        }
        if server.router.plugins.authorizesSubscriptions, let socketID {
            askPlugins(channel, auth: auth, socketID: socketID)
            return
        }
        subscribeDeferred(channel, auth: auth)
    }

    /// A subscription no plugin decided: public channels are open, private and presence ones
    /// are the app's to authorize.
    private func subscribeDeferred(_ channel: String, auth: JSONValue?) {
        let kind = ChannelKind(channel)
        guard kind.requiresAuthorization else {
            join(channel, member: nil)
            recoverMissed(channel)
            return
        }
        guard let authorizer = server.authorizer else {
            logger.info("subscription refused: no auth host is configured for private/presence channels", metadata: ["herald.channel": "\(channel)"])
            subscriptionError(channel, status: 403)
            return
        }
        var headers: [(name: String, value: String)] = []
        if case .object(let members)? = auth?["headers"] {
            for member in members {
                if case .string(let value) = member.value { headers.append((member.key, value)) }
            }
        }
        authorizing.insert(channel)
        let request = AuthorizationRequest(channel: channel, headers: headers, handshakeCookie: handshake.cookie, handshakeReferer: handshake.referer)
        authorizer.authorize(request, on: eventLoop).whenSuccess { [self] result in
            self.assumeIsolated { $0.finishAuthorization(channel, result: result) }
        }
    }

    private func finishAuthorization(_ channel: String, result: AuthorizationResult) {
        // Unsubscribed (or disconnected) while the app was answering: nothing to do.
        guard authorizing.remove(channel) != nil, !closed else { return }
        switch result {
        case .refused(let status, let reason):
            logger.info("subscription refused by the app", metadata: ["herald.channel": "\(channel)", "herald.status": "\(status)", "herald.reason": "\(reason)"])
            subscriptionError(channel, status: status)
        case .allowed(let channelData):
            var member: PresenceMember? = nil
            if ChannelKind(channel) == .presence {
                member = channelData.flatMap(PresenceMember.init(channelData:))
                if member == nil {
                    logger.warning("presence auth answer has no channel_data.user_id; joined without presence", metadata: ["herald.channel": "\(channel)"])
                }
            }
            join(channel, member: member)
            recoverMissed(channel)
        }
    }

    private func join(_ channel: String, member: PresenceMember?) {
        guard let socketID, channels.insert(channel).inserted else { return }
        logger.debug("subscribed", metadata: ["herald.channel": "\(channel)"])
        guard let member else {
            server.registry.subscribe(self, to: ChannelKey(shared: channel))
            return
        }
        presenceChannels.insert(channel)
        pendingPresence[ChannelNameSet.ExactName(name: channel)] = []
        // At once on one node; in a cluster once Redis answered (on this loop).
        server.router.joinPresence(self, socketID: socketID, channel: ChannelKey(shared: channel), member: member) { [self] members in
            // Called on this session's loop (the router hops there), hence no `await`.
            assumeIsolated { session in
                let held = session.pendingPresence.removeValue(forKey: ChannelNameSet.ExactName(name: channel)) ?? []
                guard !session.closed, session.presenceChannels.contains(channel) else { return }
                var list = ByteBuffer()
                JSONValue.array(members.map { $0.member.json(socketID: $0.socketID) }).write(into: &list)
                var packet = ByteBuffer()
                SocketIOCodec.writeChannelEvent(event: "presence:subscribed", channel: channel, data: list, into: &packet)
                session.send(packet)
                let listed = Set(members.map(\.member.key))
                var dirty = false
                for notice in held where notice.presence?.isNews(given: listed) == true {
                    dirty = session.enqueue(notice) || dirty
                }
                if dirty { session.flush() }
            }
        }
    }

    private func unsubscribe(_ channel: String) {
        authorizing.remove(channel)
        // Byte-exact, as the registry (see `ChannelKey`): leaving one Unicode twin keeps the other.
        guard let channel = channels.remove(channel) else { return }
        if presenceChannels.contains(channel) {
            leavePresence(channel)
        } else {
            server.registry.unsubscribe(self, from: ChannelKey(shared: channel))
        }
        logger.debug("unsubscribed", metadata: ["herald.channel": "\(channel)"])
    }

    private func leavePresence(_ channel: String) {
        pendingPresence[ChannelNameSet.ExactName(name: channel)] = nil
        guard presenceChannels.remove(channel) != nil, let socketID else { return }
        server.router.leavePresence(self, socketID: socketID, channel: ChannelKey(shared: channel))
    }

    /// A whisper: `{channel, event: "client-*", data}` from a member of a private or presence
    /// channel goes to the channel's other members (through the plugins, like every event).
    private func clientEvent(_ argument: JSONValue) {
        guard let channel = Self.channelName(argument), case .string(let event)? = argument["event"] else {
            logger.info("client event refused: needs channel and event")
            return
        }
        guard event.hasPrefix("client-"), event.utf8.count <= 200 else {
            logger.info("client event refused: event names must start with client-", metadata: ["herald.channel": "\(channel)", "herald.event": "\(event)"])
            return
        }
        let kind = ChannelKind(channel)
        guard kind == .private || kind == .presence else {
            logger.info("client event refused: only private and presence channels take client events", metadata: ["herald.channel": "\(channel)"])
            return
        }
        // Byte-exact membership (``ChannelNameSet``): a member of `private-user.\u{212A}ate` is
        // not one of `private-user.Kate`, though the two Strings compare equal.
        guard channels.contains(channel) else {
            logger.info("client event refused: the sender is not subscribed", metadata: ["herald.channel": "\(channel)"])
            return
        }
        var data = ByteBuffer()
        (argument["data"] ?? .null).write(into: &data)
        // The shared channels are also the first Pusher app's, and a Pusher client must never
        // receive a client event over its app's limit (Pusher: 10 KB): refused here, as that
        // app's own connections are refused (4301), rather than delivered to some members only.
        if let limit = server.configuration.pusherApps.first?.maxEventPayloadBytes, data.readableBytes > limit {
            logger.info("client event refused: payload over the first Pusher app's limit", metadata: [
                "herald.channel": "\(channel)", "herald.bytes": "\(data.readableBytes)", "herald.limit": "\(limit)",
            ])
            return
        }
        guard clientEventLimit.take() else {
            logRefusal("client event refused: rate limit", metadata: ["herald.channel": "\(channel)", "herald.limit_per_second": "\(Int(clientEventLimit.rate))"])
            return
        }
        var whisper = Event(channel: channel, name: event, data: data, excludedSocketID: socketID, source: .client)
        // On presence channels the sender's user id goes along (Pusher clients get it as
        // `user_id`; the client_event webhook, recorded by the router after the plugins, too).
        if kind == .presence { whisper.senderUserID = server.registry.presenceUserID(ChannelKey(shared: channel), of: self) }
        server.router.publish(whisper)
    }

    /// Logs a refused request at most 5 times a second per connection, then once more with the
    /// number suppressed when the window ends.
    private func logRefusal(_ message: Logger.Message, metadata: Logger.Metadata) {
        let now = NIODeadline.now()
        if now - refusalWindow > .seconds(1) {
            if refusalsInWindow > 5 {
                logger.warning("further refusals suppressed", metadata: ["herald.suppressed": "\(refusalsInWindow - 5)"])
            }
            refusalWindow = now
            refusalsInWindow = 0
        }
        refusalsInWindow += 1
        if refusalsInWindow <= 5 { logger.warning(message, metadata: metadata) }
    }

    private static func quoted(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        JSONValue.writeQuoted(text, into: &buffer)
        return buffer
    }

    private func leaveAllChannels() {
        authorizing.removeAll()
        for channel in channels {
            if presenceChannels.contains(channel) {
                leavePresence(channel)
            } else {
                server.registry.unsubscribe(self, from: ChannelKey(shared: channel))
            }
        }
        channels.removeAll()
    }

    // MARK: Closing

    /// The client stopped reading: more than `maxOutboundBytes` wait for it. The session closes
    /// now — it leaves every channel and presence, and nothing more is queued for it — so it
    /// delays no one else; the connection gets close 1013 behind what is already queued, and is
    /// reset if it has not taken it within `slowConsumerCloseGrace` (see ``SlowConsumerClose``).
    private func disconnectSlowConsumer(_ channel: any Channel) {
        logger.warning("slow consumer: outbound buffer over the limit; disconnecting", metadata: [
            "herald.limit_bytes": "\(server.configuration.maxOutboundBytes)",
        ])
        server.countSlowConsumer()
        close(reason: "slow consumer", notifyClient: false)
        SlowConsumerClose.close(channel, frames: [WebSocketFraming.closeFrame(code: 1013, reason: "slow consumer")],
                                grace: server.configuration.slowConsumerCloseGrace.timeAmount)
    }

    /// Closes the session: leaves every channel, tells the client when it can still hear it,
    /// and releases the transport.
    func close(reason: String, notifyClient: Bool = true) {
        guard !closed else { return }
        closed = true
        pingTimer?.cancel()
        pongDeadline?.cancel()
        connectDeadline?.cancel()
        upgradeDeadline?.cancel()
        authorizing.removeAll()
        for channel in presenceChannels { leavePresence(channel) }
        server.registry.disconnect(self, channels: channels.lazy.map(ChannelKey.init(shared:)))
        channels.removeAll()
        server.removeSession(id)
        notifyPluginsClosed()
        logger.debug("session closed", metadata: ["herald.reason": "\(reason)"])
        if case .probing(let probe, _) = upgrade { probe.close(promise: nil) }
        switch transport {
        case .webSocket(let channel):
            if notifyClient && reason != "transport close" {
                if let pending = outbound.take() { channel.write(pending, promise: nil) }
                channel.write(WebSocketFraming.frame(opcode: .text, payload: EngineIOCodec.packet(.close)), promise: nil)
                channel.writeAndFlush(WebSocketFraming.closeFrame(code: 1000, reason: "")).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        case .polling:
            if let responder = pendingGet {
                pendingGet = nil
                responder.respond(contentType: "text/plain; charset=UTF-8", body: EngineIOCodec.packet(.close))
            }
        }
        queue.removeAll()
    }
}

// MARK: Plugin hooks

extension EngineSession {
    /// Keeps the peer's address when a plugin hook will want it (the handshake's connection for
    /// polling, the WebSocket otherwise).
    fileprivate func rememberRemoteAddress(_ handshake: PollResponder?) {
        let plugins = server.router.plugins
        guard plugins.observesConnections || plugins.authorizesSubscriptions else { return }
        var peer = handshake?.channel
        if case .webSocket(let channel) = transport { peer = channel }
        remoteAddress = peer?.remoteAddress.map { "\($0)" }
    }

    private func connectionInfo(socketID: String) -> ConnectionInfo {
        ConnectionInfo(clientProtocol: .socketIO, socketID: socketID, remoteAddress: remoteAddress)
    }

    /// The socket joined `/`: tell the connection observers (fire-and-forget).
    fileprivate func notifyPluginsOpened() {
        guard let socketID, server.router.plugins.observesConnections else { return }
        openNotice = server.router.plugins.connectionOpened(connectionInfo(socketID: socketID), logger: logger)
    }

    /// The socket left `/` or the session closed: tell the observers told of its opening.
    fileprivate func notifyPluginsClosed() {
        guard let notice = openNotice, let socketID else { return }
        openNotice = nil
        server.router.plugins.connectionClosed(connectionInfo(socketID: socketID), after: notice, logger: logger)
    }

    /// Asks the subscription authorizers about `channel`; the answer comes back on this loop.
    /// The channel counts as authorizing meanwhile (an unsubscribe cancels it).
    fileprivate func askPlugins(_ channel: String, auth: JSONValue?, socketID: String) {
        var headers: [(name: String, value: String)] = []
        if case .object(let members)? = auth?["headers"] {
            for member in members {
                if case .string(let value) = member.value { headers.append((member.key, value)) }
            }
        }
        if let cookie = handshake.cookie { headers.append(("Cookie", cookie)) }
        authorizing.insert(channel)
        let request = SubscriptionRequest(channel: channel, connection: connectionInfo(socketID: socketID), headers: headers)
        decide(request, auth: auth, logger: logger)
    }

    private nonisolated func decide(_ request: SubscriptionRequest, auth: JSONValue?, logger: Logger) {
        let plugins = server.router.plugins
        Task {
            let decision = await plugins.authorize(request, logger: logger)
            self.onLoop { $0.finishPluginAuthorization(request.channel, auth: auth, decision: decision) }
        }
    }

    private func finishPluginAuthorization(_ channel: String, auth: JSONValue?, decision: SubscriptionDecision) {
        // Unsubscribed (or disconnected) while the plugins were deciding: nothing to do.
        guard authorizing.remove(channel) != nil, !closed else { return }
        switch decision {
        case .deferToApp:
            subscribeDeferred(channel, auth: auth)
        case .deny(let status):
            logger.info("subscription refused by a plugin", metadata: ["herald.channel": "\(channel)", "herald.status": "\(status)"])
            subscriptionError(channel, status: status)
        case .allow(let channelData):
            var member: PresenceMember? = nil
            if ChannelKind(channel) == .presence {
                member = channelData.flatMap(PresenceMember.init(channelData:))
                if member == nil {
                    logger.warning("a plugin admitted a presence subscription without channel_data.user_id; joined without presence", metadata: ["herald.channel": "\(channel)"])
                }
            }
            join(channel, member: member)
            recoverMissed(channel)
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

// MARK: Missed-message recovery (RECOVERY.md)

extension EngineSession {
    /// A `subscribe` arrived: remembers its `herald_recovery` request until the subscription is
    /// admitted (or forgets an earlier one). Nothing happens while history is off or for a
    /// channel this socket is already subscribed to (its recovery state stays as it is).
    fileprivate func noteRecoveryRequest(_ channel: String, _ argument: JSONValue) {
        guard server.router.history != nil, !channels.contains(channel) else { return }
        recoveries.note(channel, RecoveryRequest(argument[RecoveryRequest.field]), limit: server.configuration.maxChannelsPerConnection) {
            channels.contains($0) || authorizing.contains($0)
        }
    }

    /// The subscription to `channel` was admitted (the socket is in the registry): when it
    /// asked for recovery, sends the events it missed, oldest first, then `herald:recovery`;
    /// from then on its live events carry their offsets. Runs in the same loop turn as the
    /// admission, so no live event of the channel reaches the socket before the replay, and
    /// those recorded before the replay are skipped when they arrive (``enqueue(_:)``).
    fileprivate func recoverMissed(_ channel: String) {
        guard let history = server.router.history, !recoveries.isEmpty,
              let request = recoveries.admit(channel, subscribed: channels.contains(channel) && !closed) else { return }
        let recovery = history.recover(ChannelKey(shared: channel), request: request, socketID: socketID)
        recoveries.replayed(channel, upTo: recovery.offset)
        var packets = recovery.events.map { RecoveryWire.socketIOEvent($0, channel: channel) }
        packets.append(RecoveryWire.socketIONotice(channel: channel, recovery))
        logger.debug("recovery", metadata: [
            "herald.channel": "\(channel)", "herald.recovered": "\(recovery.recovered)", "herald.replayed": "\(recovery.events.count)",
        ])
        switch transport {
        case .webSocket(let socket):
            // Broadcasts gathered earlier in this turn go first, to keep the order.
            if let pending = outbound.take() { socket.write(pending, promise: nil) }
            for packet in packets { socket.write(WebSocketFraming.frame(opcode: .text, payload: packet), promise: nil) }
            socket.flush()
        case .polling:
            guard queue.count + packets.count <= server.configuration.maxQueuedPackets else {
                logger.warning("polling client too slow: queue limit reached by the recovery; closing", metadata: ["herald.queued": "\(queue.count)"])
                close(reason: "slow consumer")
                return
            }
            for packet in packets { queue.append(packet) }
            flushPolling()
        }
    }
}
