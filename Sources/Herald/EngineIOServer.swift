import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The Engine.IO endpoint: the table of sessions and the HTTP side of the protocol
/// (handshakes, polling requests, WebSocket upgrades, error replies).
final class EngineIOServer: Sendable {
    let configuration: HeraldConfiguration
    let registry: ChannelRegistry
    let router: Router
    let authorizer: ChannelAuthorizer?
    let logger: Logger
    private let sessions = Mutex<[String: EngineSession]>([:])
    private let slowConsumers = Atomic<Int>(0)

    /// Connections closed because they stopped reading.
    var slowConsumerDisconnects: Int { slowConsumers.load(ordering: .relaxed) }

    func countSlowConsumer() {
        slowConsumers.add(1, ordering: .relaxed)
        registry.metrics.slowConsumerDisconnects.increment()
    }

    init(configuration: HeraldConfiguration, registry: ChannelRegistry, router: Router, authorizer: ChannelAuthorizer?, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.router = router
        self.authorizer = authorizer
        self.logger = logger
    }

    // MARK: Session table

    func session(_ id: String) -> EngineSession? { sessions.withLock { $0[id] } }

    func removeSession(_ id: String) { sessions.withLock { _ = $0.removeValue(forKey: id) } }

    var sessionCount: Int { sessions.withLock { $0.count } }

    /// Open connections by protocol, for the status page: one pass over the session table
    /// (Engine.IO 3 or 4, each session's `version` is a constant) and the Pusher table's count.
    var connectionCounts: (socketIOv3: Int, socketIOv4: Int, pusher: Int) {
        let (v3, total) = sessions.withLock { table in
            (table.values.reduce(0) { $0 + ($1.version == .v3 ? 1 : 0) }, table.count)
        }
        return (v3, total - v3, pusherConnections.withLock { $0.connections.count })
    }

    /// Every open session (for shutdown).
    var allSessions: [EngineSession] { sessions.withLock { Array($0.values) } }

    private func makeSession(version: EngineIOVersion, eventLoop: any EventLoop, transport: EngineSession.Transport, handshake: HandshakeInfo) -> EngineSession {
        while true {
            let id = Self.randomID()
            let session = EngineSession(id: id, version: version, eventLoop: eventLoop, transport: transport, handshake: handshake, server: self)
            let inserted = sessions.withLock { table -> Bool in
                guard table[id] == nil else { return false }
                table[id] = session
                return true
            }
            if inserted { return session }
        }
    }

    func makeSocketID() -> String { Self.randomID() }

    /// 20 random URL-safe characters (as engine.io's ids).
    static func randomID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<20).map { _ in alphabet[Int(generator.next() % 64)] }, as: UTF8.self)
    }

    // MARK: Request checks

    /// Query parameters of a request URI (percent- and `+`-decoded; a repeated key keeps its
    /// last value).
    static func query(_ uri: String) -> [String: String] {
        guard let q = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for (name, value) in PusherHTTPAPI.parseQuery(uri[uri.index(after: q)...]) { result[name] = value }
        return result
    }

    static func path(_ uri: String) -> Substring {
        uri.firstIndex(of: "?").map { uri[..<$0] } ?? Substring(uri)
    }

    /// Whether `path` is the Socket.IO endpoint (with or without the trailing slash).
    func isEndpoint(_ path: Substring) -> Bool {
        let base = configuration.socketIOPath
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        return path == base || path == trimmed
    }

    /// Checks `EIO` and the Origin; returns the protocol version or the error to answer with.
    func checkHandshake(query: [String: String], headers: HTTPHeaders) -> Result<EngineIOVersion, EngineIOError> {
        if let origin = headers.first(name: "Origin"), !configuration.allows(origin: origin) {
            return .failure(.forbidden)
        }
        switch query["EIO"] {
        case "4": return .success(.v4)
        case "3": return .success(.v3)
        default: return .failure(.unsupportedProtocolVersion)
        }
    }

    /// CORS headers for a request carrying `Origin` (echoed with credentials when allowed).
    func corsHeaders(for request: HTTPHeaders) -> HTTPHeaders {
        var headers = HTTPHeaders()
        guard let origin = request.first(name: "Origin"), configuration.allows(origin: origin) else { return headers }
        headers.add(name: "Access-Control-Allow-Origin", value: origin)
        headers.add(name: "Access-Control-Allow-Credentials", value: "true")
        headers.add(name: "Vary", value: "Origin")
        return headers
    }

    // MARK: Polling

    /// Handles a complete HTTP request to the Socket.IO endpoint. Returns the session when the
    /// request is a poll that session may hold open.
    @discardableResult
    func handle(head: HTTPRequestHead, body: ByteBuffer, channel: any Channel, keepAlive: Bool) -> EngineSession? {
        let query = Self.query(head.uri)
        let responder = PollResponder(channel: channel, headers: corsHeaders(for: head.headers), keepAlive: keepAlive)
        if head.method == .OPTIONS {
            var headers = responder.headers
            headers.add(name: "Access-Control-Allow-Methods", value: "GET,POST")
            if let requested = head.headers.first(name: "Access-Control-Request-Headers") {
                headers.add(name: "Access-Control-Allow-Headers", value: requested)
            }
            PollResponder(channel: channel, headers: headers, keepAlive: keepAlive)
                .respond(status: .noContent, contentType: "text/plain", body: ByteBuffer())
            return nil
        }
        let version: EngineIOVersion
        switch checkHandshake(query: query, headers: head.headers) {
        case .failure(let error):
            responder.respond(error: error)
            return nil
        case .success(let v):
            version = v
        }
        switch query["transport"] {
        case "polling":
            break
        case "websocket":
            // A WebSocket request that reached us was not upgraded: either no (valid) Upgrade
            // header, or the upgrade was refused (unknown sid, …).
            if case .failure(let error) = upgradeTarget(for: head) {
                responder.respond(error: error)
            } else {
                responder.respond(error: .badRequest)
            }
            return nil
        default:
            responder.respond(error: .unknownTransport)
            return nil
        }
        guard let sid = query["sid"] else {
            guard head.method == .GET else {
                responder.respond(error: .badHandshakeMethod)
                return nil
            }
            let session = makeSession(version: version, eventLoop: channel.eventLoop, transport: .polling, handshake: HandshakeInfo(head.headers))
            session.onLoop { session in
                session.start(handshake: responder)
            }
            return nil
        }
        guard let session = session(sid) else {
            responder.respond(error: .unknownSession)
            return nil
        }
        switch head.method {
        case .GET:
            session.onLoop { $0.handlePollGet(responder) }
            return session
        case .POST:
            session.onLoop { $0.handlePollPost(body, responder: responder) }
        default:
            responder.respond(error: .badRequest)
        }
        return nil
    }

    // MARK: WebSocket

    /// Decides whether a WebSocket upgrade request is acceptable. Returns the session it will
    /// belong to (existing for an upgrade, `nil` for a new WebSocket-only session) or an error.
    enum UpgradeTarget: Sendable {
        case new(EngineIOVersion, HandshakeInfo)
        case existing(EngineSession)
        /// A Pusher protocol connection at `/app/{key}`; `app` is nil for an unknown key (the
        /// connection is accepted, then closed with 4001 as Pusher does).
        case pusher(app: PusherApp?, key: String, protocolVersion: String?)
    }

    func upgradeTarget(for head: HTTPRequestHead) -> Result<UpgradeTarget, EngineIOError> {
        let query = Self.query(head.uri)
        let path = Self.path(head.uri)
        if !configuration.pusherApps.isEmpty, path.hasPrefix("/app/") {
            let key = String(path.dropFirst("/app/".count))
            let app = configuration.pusherApps.first { $0.key == key }
            if let app, !app.allowedOrigins.isEmpty, let origin = head.headers.first(name: "Origin"),
               !app.allowedOrigins.contains(origin), !app.allowedOrigins.contains("*") {
                return .failure(.forbidden)
            }
            return .success(.pusher(app: app, key: key, protocolVersion: query["protocol"]))
        }
        guard isEndpoint(Self.path(head.uri)) else { return .failure(.badRequest) }
        guard query["transport"] == "websocket" else { return .failure(.badRequest) }
        let version: EngineIOVersion
        switch checkHandshake(query: query, headers: head.headers) {
        case .failure(let error): return .failure(error)
        case .success(let v): version = v
        }
        guard let sid = query["sid"] else { return .success(.new(version, HandshakeInfo(head.headers))) }
        guard let session = session(sid) else { return .failure(.unknownSession) }
        return .success(.existing(session))
    }

    /// Wires an upgraded WebSocket channel to its session (called on the channel's loop).
    func attachWebSocket(_ channel: any Channel, target: UpgradeTarget) -> any WebSocketSession {
        switch target {
        case .new(let version, let handshake):
            let session = makeSession(version: version, eventLoop: channel.eventLoop, transport: .webSocket(channel), handshake: handshake)
            session.assumeIsolated { $0.start(handshake: nil) }
            return session
        case .existing(let session):
            session.onLoop { session in
                if !session.attachProbe(channel) {
                    channel.close(promise: nil)
                }
            }
            return session
        case .pusher(let app, let key, let version):
            let session = PusherSession(channel: channel, app: app, requestedKey: key, protocolVersion: version, server: self)
            pusherConnections.withLock { $0.add(session) }
            return session
        }
    }

    /// Open Pusher connections and, for signed-in ones, who they are.
    struct PusherConnectionTable: Sendable {
        /// Every open Pusher connection (for shutdown and connection limits).
        var connections: [ObjectIdentifier: PusherSession] = [:]
        /// Open connections per app id (for `maxConnections`).
        var countByApp: [String: Int] = [:]
        /// Signed-in connections by app id, then user id (for `terminate_connections`). User ids
        /// are told apart by their bytes, as the app's signatures do (`"Kate"` and
        /// `"\u{212A}ate"` are two users).
        var users: [String: [ChannelNameSet.ExactName: [ObjectIdentifier: PusherSession]]] = [:]

        mutating func add(_ session: PusherSession) {
            guard connections.updateValue(session, forKey: ObjectIdentifier(session)) == nil else { return }
            if let appID = session.app?.id { countByApp[appID, default: 0] += 1 }
        }

        mutating func remove(_ session: PusherSession) {
            guard connections.removeValue(forKey: ObjectIdentifier(session)) != nil, let appID = session.app?.id else { return }
            countByApp[appID, default: 1] -= 1
            if countByApp[appID] == 0 { countByApp[appID] = nil }
        }

        mutating func removeUser(_ session: PusherSession, appID: String, userID: String) {
            let id = ObjectIdentifier(session)
            let user = ChannelNameSet.ExactName(name: userID)
            guard users[appID]?[user]?.removeValue(forKey: id) != nil else { return }
            if users[appID]?[user]?.isEmpty == true { users[appID]?[user] = nil }
            if users[appID]?.isEmpty == true { users[appID] = nil }
        }
    }

    /// Pusher connections (for shutdown, connection limits and user signin).
    let pusherConnections = Mutex<PusherConnectionTable>(PusherConnectionTable())

    /// Forgets a closed Pusher connection (and its signed-in user, if any).
    func pusherConnectionClosed(_ session: PusherSession, userID: String? = nil) {
        pusherConnections.withLock { table in
            table.remove(session)
            if let userID, let appID = session.app?.id { table.removeUser(session, appID: appID, userID: userID) }
        }
    }

    /// Records that `session` signed in as `userID` (replacing `previous`, a former signin of
    /// the same connection). Ignored for a connection already closed.
    func pusherUserSignedIn(_ session: PusherSession, userID: String, previous: String?) {
        guard let appID = session.app?.id else { return }
        pusherConnections.withLock { table in
            let id = ObjectIdentifier(session)
            if let previous { table.removeUser(session, appID: appID, userID: previous) }
            guard table.connections[id] != nil else { return }
            table.users[appID, default: [:]][ChannelNameSet.ExactName(name: userID), default: [:]][id] = session
        }
    }

    /// The open connections signed in as `userID` to app `appID`.
    func pusherUserConnections(appID: String, userID: String) -> [PusherSession] {
        pusherConnections.withLock { table in
            table.users[appID]?[ChannelNameSet.ExactName(name: userID)].map { Array($0.values) } ?? []
        }
    }

    /// `POST /apps/<id>/users/<user_id>/terminate_connections`: every connection signed in as
    /// `userID` gets `pusher:error` 4009 and is closed with 4009. Returns how many.
    @discardableResult
    func terminatePusherUser(appID: String, userID: String) -> Int {
        let connections = pusherUserConnections(appID: appID, userID: userID)
        for connection in connections {
            connection.onLoop { $0.close(code: .unauthorized, message: "You got disconnected by the app.") }
        }
        return connections.count
    }

    func pusherConnectionCount(appID: String) -> Int {
        pusherConnections.withLock { $0.countByApp[appID] ?? 0 }
    }

    /// Closes every session (graceful shutdown): Socket.IO sessions close, Pusher connections
    /// are told to reconnect (4200) as Soketi does.
    func closeAll() {
        for session in allSessions {
            session.onLoop { $0.close(reason: "server shutting down") }
        }
        for connection in pusherConnections.withLock({ Array($0.connections.values) }) {
            connection.onLoop { $0.close(code: .genericReconnect, message: "Server shutting down") }
        }
    }
}

/// What a session keeps of its handshake request, for authorization calls.
struct HandshakeInfo: Sendable {
    var cookie: String?
    var referer: String?

    init(_ headers: HTTPHeaders) {
        cookie = headers.first(name: "Cookie")
        referer = headers.first(name: "Referer")
    }
}
