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
    /// Most bytes a WebSocket connection may have waiting to be sent. A client that falls that
    /// far behind (it stopped reading) is disconnected as a slow consumer, so it cannot hold
    /// memory or delay anyone else: Socket.IO connections are closed with 1013, Pusher ones get
    /// `pusher:error` 4100 (reconnect after a backoff).
    public var maxOutboundBytes: Int = 1 << 20
    /// The kernel send buffer (`SO_SNDBUF`) of every accepted connection, in bytes (Linux
    /// doubles it for its bookkeeping and caps it at `net.core.wmem_max`). Left alone, Linux
    /// autotunes it up to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default) even for a client
    /// that stopped reading, so a slow consumer held that much more and took that much longer
    /// to be cut; bounded, what a connection can hold is about `maxOutboundBytes` plus this.
    /// It also bounds one connection's throughput to about twice this per round trip (128 KiB:
    /// ~2.5 MB/s at 100 ms), plenty for events. `0` leaves the kernel's autotuning.
    public var socketSendBufferBytes: Int = 128 * 1024
    /// How long a connection cut off as a slow consumer has to take its close frame (1013,
    /// Pusher 4100), which waits behind everything already queued for it; then it is reset
    /// (`SO_LINGER` 0), which frees the kernel's buffers at once. Its session leaves every
    /// channel at the cut, not after this.
    public var slowConsumerCloseGrace: Duration = .seconds(2)
    /// How private and presence subscriptions are authorized; `nil` refuses them all (403).
    public var authorization: AuthorizationConfiguration?
    /// Most channels one connection may be subscribed to at once.
    public var maxChannelsPerConnection: Int
    /// Client events (whispers) a connection may send per second (Pusher's limit is 10).
    public var clientEventsPerSecond: Int
    /// laravel-echo-server's HTTP API clients (`clients` in its config): `appId` + `key`. The
    /// API under `/apps/{appId}/` is off while this is empty.
    public var apiClients: [APIClient]
    /// CORS for the HTTP API (laravel-echo-server's `apiOriginAllow`).
    public var apiCORS: APICORS?
    /// Extra headers set on every HTTP response (laravel-echo-server's `headers`).
    public var extraHeaders: [(name: String, value: String)]
    /// Pusher Channels apps served at `/app/{key}` (WebSocket) and `/apps/{id}/…` (signed HTTP
    /// API). Empty: the Pusher protocol is off.
    public var pusherApps: [PusherApp] = []
    /// TLS for every connection (WebSocket, polling, the HTTP APIs, health and metrics);
    /// `nil` serves plain HTTP (put a TLS proxy in front, see `Examples/Deploy`).
    public var tls: TLSFiles? = nil
    /// Whether the HTTP API accepts `POST /apps/{appId}/events` (laravel-echo-server's
    /// `subscribers.http`); the read-only endpoints stay on.
    public var apiPublishEnabled: Bool = true
    /// The token of the status endpoints (`GET /status`, `/status.json`, `/tail`), sent as
    /// `Authorization: Bearer <token>` or `?token=`; `nil` turns them off (404).
    public var statusToken: String? = nil
    /// Scale-out across nodes sharing ``redis``: events that enter this node (HTTP APIs,
    /// client events, in-process publishing) are published once on a Redis channel and
    /// delivered by every other node to its subscribers (see ``ClusterBus``). `nil` (the
    /// default): a single node. Needs ``redis``.
    public var cluster: ClusterConfiguration? = nil
    /// Missed-message recovery (RECOVERY.md): a bounded in-memory history of each channel's
    /// recent events, replayed to a client that opted in when it resubscribes after a
    /// reconnect. `nil` (the default): off — no memory, no cost per event, and the protocol
    /// extension is ignored (clients see what they see on any other server).
    public var history: ChannelHistoryConfiguration? = nil

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
        maxQueuedPackets: Int = 10_000,
        authorization: AuthorizationConfiguration? = nil,
        maxChannelsPerConnection: Int = 100,
        clientEventsPerSecond: Int = 10,
        apiClients: [APIClient] = [],
        apiCORS: APICORS? = nil,
        extraHeaders: [(name: String, value: String)] = []
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
        self.authorization = authorization
        self.maxChannelsPerConnection = maxChannelsPerConnection
        self.clientEventsPerSecond = clientEventsPerSecond
        self.apiClients = apiClients
        self.apiCORS = apiCORS
        self.extraHeaders = extraHeaders
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

/// Where and how Herald asks the application to authorize private and presence channels
/// (laravel-echo-server's `authHost` + `authEndpoint`).
public struct AuthorizationConfiguration: Sendable, Hashable {
    /// Base URLs of the application (`http://localhost`). With several, the one matching the
    /// client's handshake `Referer` is used, else the first.
    public var hosts: [String]
    /// Path of the auth endpoint (`/broadcasting/auth`).
    public var endpoint: String
    /// How long one auth call may take before the subscription is refused (status 0).
    public var timeout: Duration
    /// Most auth calls in flight at once; further ones wait in line (reconnect storms).
    public var maxConcurrentRequests: Int
    /// Most auth calls waiting in line; beyond it subscriptions are refused with 503.
    public var maxQueuedRequests: Int
    /// Verify the application's TLS certificate (laravel-echo-server never did). Turn off only
    /// for local development with self-signed certificates.
    public var verifyCertificates: Bool

    public init(
        hosts: [String] = ["http://localhost"],
        endpoint: String = "/broadcasting/auth",
        timeout: Duration = .seconds(10),
        maxConcurrentRequests: Int = 64,
        maxQueuedRequests: Int = 10_000,
        verifyCertificates: Bool = true
    ) {
        self.hosts = hosts
        self.endpoint = endpoint
        self.timeout = timeout
        self.maxConcurrentRequests = maxConcurrentRequests
        self.maxQueuedRequests = maxQueuedRequests
        self.verifyCertificates = verifyCertificates
    }
}

/// A client of laravel-echo-server's HTTP API (`clients` entry).
public struct APIClient: Sendable, Hashable {
    public var appID: String
    public var key: String
    public init(appID: String, key: String) {
        self.appID = appID
        self.key = key
    }
}

/// CORS for the HTTP API (laravel-echo-server's `apiOriginAllow`).
public struct APICORS: Sendable, Hashable {
    public var allowOrigin: String
    public var allowMethods: String
    public var allowHeaders: String
    public init(allowOrigin: String, allowMethods: String, allowHeaders: String) {
        self.allowOrigin = allowOrigin
        self.allowMethods = allowMethods
        self.allowHeaders = allowHeaders
    }
}

/// One Pusher Channels app (what Soketi and Reverb call an app): credentials and limits.
public struct PusherApp: Sendable, Hashable {
    public var id: String
    public var key: String
    public var secret: String
    /// Seconds of silence after which the server pings (sent to clients as `activity_timeout`).
    public var activityTimeout: Int
    /// Most simultaneous connections; `nil` for no limit (over it: error 4004).
    public var maxConnections: Int?
    /// Largest event payload accepted from the HTTP API or a client event, in bytes (Pusher: 10 KB).
    public var maxEventPayloadBytes: Int
    /// Longest channel name (Pusher: 164).
    public var maxChannelNameLength: Int
    /// Longest event name (Pusher: 200).
    public var maxEventNameLength: Int
    /// Most distinct users in one presence channel (Pusher: 100).
    public var maxPresenceMembers: Int
    /// Largest `user_info` of a presence member, in bytes (Soketi: 2 KB).
    public var maxPresenceMemberBytes: Int
    /// Whether clients may send `client-*` events on private and presence channels.
    public var clientEventsEnabled: Bool
    /// Origins allowed to connect; empty allows any.
    public var allowedOrigins: [String]
    /// How long the last event of a cache channel is handed to new subscribers, in seconds
    /// (Soketi: 3600); 0 or less: always `pusher:cache_miss`.
    public var cacheTTL: Int
    /// Whether this app's connections get `pusher_internal:subscription_count` when a
    /// (non-presence) channel's subscriber count changes, at most one per channel per 100 ms.
    /// Off by default, as on hosted Pusher.
    public var subscriptionCountEvents: Bool
    /// How long a connection may stay without `pusher:signin` before it is closed with 4009
    /// "Connection not authorized within timeout" (Soketi: 30 s); `nil` (the default): no deadline.
    public var userAuthenticationTimeout: Duration?
    /// Where Herald POSTs this app's webhooks (PROTOCOLS.md D.14): channel existence, presence
    /// members, client events and cache misses, signed with ``secret``. Empty (the default):
    /// no webhooks. Herald's channels are shared by every app and protocol, so each app's
    /// webhooks hear about every channel, Socket.IO subscribers and whispers included.
    public var webhooks: [PusherWebhook] = []
    /// How this app's webhooks are batched, retried and bounded.
    public var webhookDelivery: PusherWebhookDelivery = PusherWebhookDelivery()

    public init(
        id: String,
        key: String,
        secret: String,
        activityTimeout: Int = 30,
        maxConnections: Int? = nil,
        maxEventPayloadBytes: Int = 10_240,
        maxChannelNameLength: Int = 164,
        maxEventNameLength: Int = 200,
        maxPresenceMembers: Int = 100,
        maxPresenceMemberBytes: Int = 2_048,
        clientEventsEnabled: Bool = true,
        allowedOrigins: [String] = [],
        cacheTTL: Int = 3_600,
        subscriptionCountEvents: Bool = false,
        userAuthenticationTimeout: Duration? = nil,
        webhooks: [PusherWebhook] = [],
        webhookDelivery: PusherWebhookDelivery = PusherWebhookDelivery()
    ) {
        self.id = id
        self.key = key
        self.secret = secret
        self.activityTimeout = activityTimeout
        self.maxConnections = maxConnections
        self.maxEventPayloadBytes = maxEventPayloadBytes
        self.maxChannelNameLength = maxChannelNameLength
        self.maxEventNameLength = maxEventNameLength
        self.maxPresenceMembers = maxPresenceMembers
        self.maxPresenceMemberBytes = maxPresenceMemberBytes
        self.clientEventsEnabled = clientEventsEnabled
        self.allowedOrigins = allowedOrigins
        self.cacheTTL = cacheTTL
        self.subscriptionCountEvents = subscriptionCountEvents
        self.userAuthenticationTimeout = userAuthenticationTimeout
        self.webhooks = webhooks
        self.webhookDelivery = webhookDelivery
    }
}

/// The kinds of Pusher webhook events (PROTOCOLS.md D.14), named as on the wire.
public enum PusherWebhookEventType: String, Sendable, Hashable, CaseIterable {
    /// A channel got its first subscriber (any protocol).
    case channelOccupied = "channel_occupied"
    /// A channel lost its last subscriber.
    case channelVacated = "channel_vacated"
    /// A user's first connection joined a presence channel.
    case memberAdded = "member_added"
    /// A user's last connection left a presence channel.
    case memberRemoved = "member_removed"
    /// A client sent a `client-*` event (a Pusher client event or a Socket.IO whisper).
    case clientEvent = "client_event"
    /// A cache channel subscriber got `pusher:cache_miss`.
    case cacheMiss = "cache_miss"
}

/// One webhook of a Pusher app: where to POST, and which events (as Soketi's `webhooks`).
public struct PusherWebhook: Sendable, Hashable {
    /// The `http://` or `https://` URL events are POSTed to.
    public var url: String
    /// The event types sent to this URL; empty (the default) sends all of them.
    public var eventTypes: Set<PusherWebhookEventType>
    /// When set, only events of channels whose name starts with this are sent.
    public var channelNameStartsWith: String?
    /// When set, only events of channels whose name ends with this are sent (both filters
    /// must match when both are set).
    public var channelNameEndsWith: String?

    /// A webhook for `url`; with the defaults it receives every event of every channel.
    public init(
        url: String,
        eventTypes: Set<PusherWebhookEventType> = [],
        channelNameStartsWith: String? = nil,
        channelNameEndsWith: String? = nil
    ) {
        self.url = url
        self.eventTypes = eventTypes
        self.channelNameStartsWith = channelNameStartsWith
        self.channelNameEndsWith = channelNameEndsWith
    }

    /// Checks the URL: `http` or `https`, with a host, no whitespace. Throws a message fit
    /// for the operator (it never contains the app's secret).
    public func validate() throws(PusherWebhookConfigurationError) {
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            rest = url.dropFirst(8)
        } else {
            throw PusherWebhookConfigurationError("webhook URL '\(url)' must start with http:// or https://")
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last.map { $0.prefix { $0 != ":" } } ?? ""
        guard !host.isEmpty else {
            throw PusherWebhookConfigurationError("webhook URL '\(url)' has no host")
        }
        guard !url.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) else {
            throw PusherWebhookConfigurationError("webhook URL '\(url)' contains whitespace")
        }
    }

    /// Whether an event of `type` on `channel` goes to this webhook.
    func accepts(_ type: PusherWebhookEventType, channel: String) -> Bool {
        if !eventTypes.isEmpty, !eventTypes.contains(type) { return false }
        if let prefix = channelNameStartsWith, !channel.hasPrefix(prefix) { return false }
        if let suffix = channelNameEndsWith, !channel.hasSuffix(suffix) { return false }
        return true
    }
}

/// A webhook configuration Herald cannot use (a bad URL).
public struct PusherWebhookConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, for the operator.
    public var message: String
    /// The message.
    public var description: String { message }
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
}

/// How a Pusher app's webhooks are delivered: batching, retries, and the bound on what may
/// wait. The defaults follow Pusher and Soketi (batches of 50 events or 100 ms).
public struct PusherWebhookDelivery: Sendable, Hashable {
    /// Most events in one POST.
    public var batchSize: Int
    /// How long the first event of a batch may wait for more before the batch is sent.
    public var batchInterval: Duration
    /// Attempts per batch (the first one included); non-2xx answers and transport errors are
    /// retried until then, after which the batch is dropped, counted and logged.
    public var maxAttempts: Int
    /// Backoff before the first retry; it doubles for each further one, up to
    /// ``maxBackoff``, with jitter (half fixed, half random).
    public var initialBackoff: Duration
    /// Longest backoff between two attempts.
    public var maxBackoff: Duration
    /// How long one POST may take (connecting included).
    public var requestTimeout: Duration
    /// Most events waiting per webhook URL; further events are dropped and counted
    /// (`herald_webhook_events_dropped_total{reason="queue_full"}`) instead of growing memory.
    public var maxQueuedEvents: Int
    /// On graceful shutdown, how long Herald keeps delivering what is queued (including the
    /// vacated and member-removed events of the connections it closes).
    public var shutdownTimeout: Duration

    /// Delivery settings; the defaults suit most endpoints.
    public init(
        batchSize: Int = 50,
        batchInterval: Duration = .milliseconds(100),
        maxAttempts: Int = 5,
        initialBackoff: Duration = .milliseconds(500),
        maxBackoff: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(10),
        maxQueuedEvents: Int = 10_000,
        shutdownTimeout: Duration = .seconds(5)
    ) {
        self.batchSize = batchSize
        self.batchInterval = batchInterval
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.requestTimeout = requestTimeout
        self.maxQueuedEvents = maxQueuedEvents
        self.shutdownTimeout = shutdownTimeout
    }
}
