import HeraldRedis

/// Everything a Herald relay needs to know. Every field has a default that matches
/// laravel-echo-server's behaviour unless a safer one is noted.
public struct HeraldConfiguration: Sendable {
    /// Interface to bind (`0.0.0.0` binds all IPv4 interfaces).
    public var host: String
    /// Port for Socket.IO, polling and the HTTP endpoints (laravel-echo-server's 6001).
    public var port: Int
    /// Path of the Socket.IO endpoint; Socket.IO clients and Laravel Echo use `/socket.io/`.
    public var socketIOPath: String
    /// Redis to ingest Laravel broadcasts from; `nil` runs standalone.
    public var redis: RedisConfiguration?
    /// Laravel's Redis key prefix (`laravel_database_`): Herald `PSUBSCRIBE`s `<prefix>*` and
    /// strips the prefix from channel names that really start with it.
    public var keyPrefix: String
    /// Seed compatibility: also emit every public channel's event to every socket as
    /// `<channel>:<event>` with `data`, as `io.emit(channel + ':' + event, data)` did.
    public var emitToAll: Bool
    /// Origins allowed for cross-origin polling and WebSocket handshakes. `["*"]` allows any
    /// origin (the Origin is echoed with credentials, as engine.io 3 did).
    public var allowedOrigins: [String]
    /// Engine.IO heartbeat interval.
    public var pingInterval: Duration
    /// How long to wait for a pong (v4) or any packet (v3) after a ping.
    public var pingTimeout: Duration
    /// Largest polling body or WebSocket message accepted, in bytes (`maxHttpBufferSize`).
    public var maxPayload: Int
    /// How long a polling→WebSocket upgrade may take.
    public var upgradeTimeout: Duration
    /// How long a client may take to join a namespace after the Engine.IO handshake.
    public var connectTimeout: Duration
    /// Most packets in one polling response (python-engineio refuses more than 16).
    public var maxPacketsPerPoll: Int
    /// Most bytes or packets queued for a polling client before it is disconnected as too slow.
    public var maxQueuedPackets: Int

    public init(
        host: String = "0.0.0.0",
        port: Int = 6001,
        socketIOPath: String = "/socket.io/",
        redis: RedisConfiguration? = nil,
        keyPrefix: String = "",
        emitToAll: Bool = false,
        allowedOrigins: [String] = ["*"],
        pingInterval: Duration = .seconds(25),
        pingTimeout: Duration = .seconds(20),
        maxPayload: Int = 1_000_000,
        upgradeTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(45),
        maxPacketsPerPoll: Int = 16,
        maxQueuedPackets: Int = 10_000
    ) {
        self.host = host
        self.port = port
        self.socketIOPath = socketIOPath
        self.redis = redis
        self.keyPrefix = keyPrefix
        self.emitToAll = emitToAll
        self.allowedOrigins = allowedOrigins
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxPayload = maxPayload
        self.upgradeTimeout = upgradeTimeout
        self.connectTimeout = connectTimeout
        self.maxPacketsPerPoll = maxPacketsPerPoll
        self.maxQueuedPackets = maxQueuedPackets
    }

    /// The Redis pattern Herald subscribes to: `<keyPrefix>*`.
    public var redisPattern: String { Self.escapeGlob(keyPrefix) + "*" }

    /// Escapes Redis glob metacharacters so a prefix matches literally.
    static func escapeGlob(_ text: String) -> String {
        var out = ""
        for c in text {
            if "*?[]\\".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// Whether `origin` may connect.
    func allows(origin: String) -> Bool {
        allowedOrigins.contains("*") || allowedOrigins.contains(origin)
    }
}
