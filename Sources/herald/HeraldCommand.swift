import ArgumentParser
import Herald
import HeraldCore
import HeraldProtocols
import HeraldRedis
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct HeraldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A real-time event relay for Laravel and other web back ends.",
        discussion: """
            Every option can also be set through an environment variable named HERALD_ and the
            option in capitals (HERALD_PORT, HERALD_REDIS, HERALD_KEY_PREFIX, …). A flag wins over
            the environment; the environment wins over the default.

            Configuration file: `herald --config herald.yaml` (write a commented starter with `herald init`, or `herald init --env .env` to prefill it from a Laravel .env; validate with `herald check-config herald.yaml`). Precedence: flags > HERALD_* > the file > defaults.

            Migrating from laravel-echo-server: `herald --config laravel-echo-server.json` reads its configuration file and LARAVEL_ECHO_SERVER_* variables (flags > HERALD_* > LARAVEL_ECHO_SERVER_* > file > defaults); every option Herald does not support is named in a warning at start-up.
            """,
        subcommands: [Serve.self, CheckConfig.self, Init.self, Publish.self, StatusCommand.self, TailCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// Reads `HERALD_<NAME>` from the environment.
func environment(_ name: String) -> String? {
    guard let value = getenv("HERALD_" + name) else { return nil }
    return String(cString: value)
}

func makeLogger(level: String) throws -> Logger {
    guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
        throw ValidationError("log level '\(level)' is not one of trace, debug, info, notice, warning, error, critical")
    }
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = parsed
        return handler
    }
    var logger = Logger(label: "herald")
    logger.logLevel = parsed
    return logger
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the relay (the default).")

    @Option(help: "Interface to bind. [env: HERALD_HOST] (default: 0.0.0.0)")
    var host: String?

    @Option(help: "Port for Socket.IO and the HTTP endpoints. [env: HERALD_PORT] (default: 6001)")
    var port: Int?

    @Option(help: "Redis URL to ingest Laravel broadcasts from: redis://[:password@]host:port/db, or redis+sentinel://sentinel1:26379,sentinel2:26379/<master>[/db] to follow Sentinel failovers. Without it Herald runs standalone. [env: HERALD_REDIS]")
    var redis: String?

    @Option(help: "Laravel's Redis key prefix, e.g. laravel_database_. Herald subscribes to <prefix>* and strips it from channel names. [env: HERALD_KEY_PREFIX] (default: empty)")
    var keyPrefix: String?

    @Flag(help: "Seed compatibility: also emit each public channel's event to every socket as '<channel>:<event>'. [env: HERALD_EMIT_TO_ALL=true]")
    var emitToAll = false

    @Option(help: "Comma-separated list of allowed Origins for polling and WebSocket handshakes, or '*'. [env: HERALD_ALLOWED_ORIGINS] (default: *)")
    var allowedOrigins: String?

    @Option(help: "Path of the Socket.IO endpoint. [env: HERALD_SOCKETIO_PATH] (default: /socket.io/)")
    var socketioPath: String?

    @Option(help: "Largest polling body or WebSocket message, in bytes. [env: HERALD_MAX_PAYLOAD] (default: 1000000)")
    var maxPayload: Int?

    @Option(help: "Engine.IO ping interval in milliseconds. [env: HERALD_PING_INTERVAL] (default: 25000)")
    var pingInterval: Int?

    @Option(help: "Engine.IO ping timeout in milliseconds. [env: HERALD_PING_TIMEOUT] (default: 20000)")
    var pingTimeout: Int?

    @Option(help: ArgumentHelp("PEM certificate chain: serve everything over TLS (https/wss). Reloaded on SIGHUP. [env: HERALD_TLS_CERT]", valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("PEM private key for --tls-cert. [env: HERALD_TLS_KEY]", valueName: "file"))
    var tlsKey: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: HERALD_LOG_LEVEL] (default: info, or debug with laravel-echo-server's devMode)")
    var logLevel: String?

    @Option(help: ArgumentHelp("Read a configuration file: Herald's herald.yaml (see `herald init`), or laravel-echo-server's laravel-echo-server.json (LARAVEL_ECHO_SERVER_* variables override it). Herald's flags and HERALD_* variables override the file. [env: HERALD_CONFIG]", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Base URL of the application that authorizes private and presence channels, e.g. http://localhost; repeat or separate with commas for several (the handshake Referer picks one). [env: HERALD_AUTH_HOST]", valueName: "url"))
    var authHost: [String] = []

    @Option(help: "Path of the application's auth endpoint. [env: HERALD_AUTH_ENDPOINT] (default: /broadcasting/auth)")
    var authEndpoint: String?

    @Option(help: "How long one auth request may take, in milliseconds. [env: HERALD_AUTH_TIMEOUT] (default: 10000)")
    var authTimeout: Int?

    @Flag(help: "Do not verify the TLS certificate of an https auth host (self-signed development certificates; laravel-echo-server never verified). [env: HERALD_AUTH_INSECURE=true]")
    var authInsecure = false

    @Option(help: "Most channels one connection may be subscribed to. [env: HERALD_MAX_CHANNELS] (default: 100)")
    var maxChannels: Int?

    /// The configuration, the warnings to log, and laravel-echo-server's devMode.
    /// Precedence: flags > HERALD_* > LARAVEL_ECHO_SERVER_* > the --config file > defaults.
    @Option(help: "Most bytes a WebSocket connection may have waiting before it is disconnected as a slow consumer. [env: HERALD_MAX_OUTBOUND_BYTES] (default: 1048576)")
    var maxOutboundBytes: Int?

    @Option(help: ArgumentHelp("Kernel send buffer (SO_SNDBUF) of each connection, in bytes; 0 leaves Linux's autotuning (up to 4 MiB per socket, even for a client that stopped reading). [env: HERALD_SEND_BUFFER_BYTES] (default: 131072)", valueName: "bytes"))
    var sendBufferBytes: Int?

    @Option(help: ArgumentHelp("How long a connection cut off as a slow consumer has to read its close frame (1013, Pusher 4100) before it is reset: 500ms, 2s (a bare number is milliseconds). [env: HERALD_SLOW_CONSUMER_GRACE] (default: 2s)", valueName: "duration"))
    var slowConsumerGrace: String?

    @Option(help: "Pusher app id: serve the Pusher protocol at /app/<key> and its signed HTTP API at /apps/<id>/. [env: HERALD_APP_ID, PUSHER_APP_ID, REVERB_APP_ID]")
    var appId: String?

    @Option(help: "Pusher app key. [env: HERALD_APP_KEY, PUSHER_APP_KEY, REVERB_APP_KEY]")
    var appKey: String?

    @Option(help: "Pusher app secret. [env: HERALD_APP_SECRET, PUSHER_APP_SECRET, REVERB_APP_SECRET]")
    var appSecret: String?

    @Flag(help: "Send pusher_internal:subscription_count to the Pusher app's subscribers when a non-presence channel's subscriber count changes (at most one per channel per 100 ms). [env: HERALD_SUBSCRIPTION_COUNT=true]")
    var subscriptionCount = false

    @Option(help: "Seconds the last event of a Pusher cache channel (cache-*, private-cache-*, …) is kept for new subscribers. [env: HERALD_CACHE_TTL] (default: 3600)")
    var cacheTtl: Int?

    @Option(help: "Seconds a Pusher connection may stay without pusher:signin before it is closed with 4009 (Soketi uses 30; fractions allowed). [env: HERALD_SIGNIN_TIMEOUT] (default: no deadline)")
    var signinTimeout: Double?

    @Option(help: ArgumentHelp("POST Pusher webhooks (channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss; signed with the app secret) to this http(s) URL, for every Pusher app; repeat or separate with commas for several. [env: HERALD_WEBHOOK_URL]", valueName: "url"))
    var webhook: [String] = []

    @Option(help: ArgumentHelp("Turn on the status page (GET /status), /status.json and the live event tail (GET /tail), for requests carrying this token (Authorization: Bearer <token> or ?token=). Off without it. [env: HERALD_STATUS_TOKEN]", valueName: "token"))
    var statusToken: String?

    @Flag(help: "Scale-out: send the events that enter this node (Pusher and laravel-echo-server HTTP APIs, client events) once through Redis to the other nodes sharing it, and deliver theirs. Needs --redis. [env: HERALD_CLUSTER=true]")
    var cluster = false

    @Option(help: ArgumentHelp("The Redis channel the cluster's nodes share; every node of one cluster needs the same one. [env: HERALD_CLUSTER_CHANNEL] (default: herald:cluster, or herald:cluster:<key prefix> with a key prefix)", valueName: "name"))
    var clusterChannel: String?

    @Option(help: ArgumentHelp("This node's id in the cluster (1-64 characters, unique per node). [env: HERALD_CLUSTER_NODE_ID] (default: random per process)", valueName: "id"))
    var clusterNodeId: String?

    @Flag(help: "Missed-message recovery (RECOVERY.md): keep each channel's recent events in memory and replay what a client missed when it resubscribes asking for it (herald_recovery). [env: HERALD_HISTORY=true]")
    var history = false

    @Option(help: ArgumentHelp("Most events kept per channel for recovery. [env: HERALD_HISTORY_MAX_EVENTS] (default: 100)", valueName: "n"))
    var historyMaxEvents: Int?

    @Option(help: ArgumentHelp("How long an event is kept for recovery: 500ms, 120s, 5m (a bare number is milliseconds). [env: HERALD_HISTORY_MAX_AGE] (default: 120s)", valueName: "duration"))
    var historyMaxAge: String?

    @Option(help: ArgumentHelp("Memory bound of the recovery history, in bytes (oldest entries evicted past it). [env: HERALD_HISTORY_MAX_BYTES] (default: 33554432)", valueName: "bytes"))
    var historyMaxBytes: Int?

    @Option(help: ArgumentHelp("How long a cluster node's presence heartbeat in Redis lasts: a node that stops has its presence members removed (and their leaves announced) within about this long; at least 1. [env: HERALD_CLUSTER_PRESENCE_TTL] (default: 30)", valueName: "seconds"))
    var clusterPresenceTtl: Int?

    /// The first of `HERALD_<name>`, `PUSHER_<name>`, `REVERB_<name>` that is set (the names a
    /// Laravel `.env` already has).
    static func pusherEnvironment(_ name: String) -> String? {
        if let value = environment(name) { return value }
        for prefix in ["PUSHER_", "REVERB_"] {
            if let value = getenv(prefix + name) { return String(cString: value) }
        }
        return nil
    }

    func resolvedConfiguration() throws -> (configuration: HeraldConfiguration, warnings: [String], devMode: Bool) {
        try resolved().configuration
    }

    /// The configuration with the file's log level and plugins.
    func resolved() throws -> (configuration: (configuration: HeraldConfiguration, warnings: [String], devMode: Bool), logLevel: String?, plugins: [any EventPlugin]) {
        let file = (self.config ?? environment("CONFIG")).flatMap { $0.isEmpty ? nil : $0 }
        let text = try file.map { String(decoding: try readFile($0), as: UTF8.self) }
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(text: text, file: file, environment: processEnvironment())
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("\(error)")
        }
        var config = loaded.configuration
        var warnings = loaded.warnings
        let devMode = loaded.devMode
        config.host = host ?? environment("HOST") ?? config.host
        switch (tlsCert, tlsKey) {
        case (nil, nil): break
        case (let cert?, let key?): config.tls = TLSFiles(certificateChainPath: cert, privateKeyPath: key)
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        if let port = try port ?? environment("PORT").map({ try Self.integer($0, "HERALD_PORT") }) {
            guard (0...65535).contains(port) else { throw ValidationError("port \(port) is not in 0-65535") }
            config.port = port
        }
        if let url = redis ?? environment("REDIS"), !url.isEmpty {
            do {
                config.redis = try RedisConfiguration(url: url)
            } catch {
                throw ValidationError(error.message)
            }
        }
        config.keyPrefix = keyPrefix ?? environment("KEY_PREFIX") ?? config.keyPrefix
        config.emitToAll = emitToAll || ["1", "true", "yes", "on"].contains(environment("EMIT_TO_ALL")?.lowercased() ?? "")
        if let origins = allowedOrigins ?? environment("ALLOWED_ORIGINS") {
            let list = origins.split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty }
            guard !list.isEmpty else { throw ValidationError("--allowed-origins is empty; use '*' to allow every origin") }
            config.allowedOrigins = list
        }
        if let path = socketioPath ?? environment("SOCKETIO_PATH") {
            guard path.hasPrefix("/") else { throw ValidationError("--socketio-path must start with '/'") }
            config.socketIOPath = path.hasSuffix("/") ? path : path + "/"
        }
        if let max = try maxPayload ?? environment("MAX_PAYLOAD").map({ try Self.integer($0, "HERALD_MAX_PAYLOAD") }) {
            guard max >= 1024 else { throw ValidationError("max payload must be at least 1024 bytes") }
            config.maxPayload = max
        }
        if let ms = try pingInterval ?? environment("PING_INTERVAL").map({ try Self.integer($0, "HERALD_PING_INTERVAL") }) {
            guard ms >= 100 else { throw ValidationError("ping interval must be at least 100 ms") }
            config.pingInterval = .milliseconds(ms)
        }
        if let ms = try pingTimeout ?? environment("PING_TIMEOUT").map({ try Self.integer($0, "HERALD_PING_TIMEOUT") }) {
            guard ms >= 100 else { throw ValidationError("ping timeout must be at least 100 ms") }
            config.pingTimeout = .milliseconds(ms)
        }
        var hosts = authHost.isEmpty ? (environment("AUTH_HOST").map { [$0] } ?? []) : authHost
        hosts = hosts.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters() } }.filter { !$0.isEmpty }
        for host in hosts where !(host.hasPrefix("http://") || host.hasPrefix("https://")) {
            throw ValidationError("auth host '\(host)' must start with http:// or https://")
        }
        let endpoint = authEndpoint ?? environment("AUTH_ENDPOINT")
        if !hosts.isEmpty || endpoint != nil {
            var auth = config.authorization ?? AuthorizationConfiguration()
            if !hosts.isEmpty { auth.hosts = hosts }
            if let endpoint { auth.endpoint = endpoint }
            config.authorization = auth
        }
        if let endpoint = config.authorization?.endpoint, !endpoint.hasPrefix("/") {
            throw ValidationError("auth endpoint '\(endpoint)' must start with '/'")
        }
        if let ms = try authTimeout ?? environment("AUTH_TIMEOUT").map({ try Self.integer($0, "HERALD_AUTH_TIMEOUT") }) {
            guard ms >= 1 else { throw ValidationError("auth timeout must be at least 1 ms") }
            if config.authorization == nil {
                warnings.append("--auth-timeout has no effect without --auth-host (or a --config file)")
            }
            config.authorization?.timeout = .milliseconds(ms)
        }
        if authInsecure || Self.isTrue(environment("AUTH_INSECURE")) {
            if config.authorization == nil {
                warnings.append("--auth-insecure has no effect without --auth-host (or a --config file)")
            }
            config.authorization?.verifyCertificates = false
        }
        if let max = try maxChannels ?? environment("MAX_CHANNELS").map({ try Self.integer($0, "HERALD_MAX_CHANNELS") }) {
            guard max >= 1 else { throw ValidationError("max channels must be at least 1") }
            config.maxChannelsPerConnection = max
        }
        if let bytes = try maxOutboundBytes ?? environment("MAX_OUTBOUND_BYTES").map({ try Self.integer($0, "HERALD_MAX_OUTBOUND_BYTES") }) {
            guard bytes >= 4096 else { throw ValidationError("max outbound bytes must be at least 4096") }
            config.maxOutboundBytes = bytes
        }
        if let bytes = try sendBufferBytes ?? environment("SEND_BUFFER_BYTES").map({ try Self.integer($0, "HERALD_SEND_BUFFER_BYTES") }) {
            guard (0...(1 << 30)).contains(bytes) else { throw ValidationError("send buffer bytes \(bytes) is not in 0-1073741824 (0: the kernel's autotuning)") }
            config.socketSendBufferBytes = bytes
        }
        if let text = slowConsumerGrace ?? environment("SLOW_CONSUMER_GRACE") {
            guard let grace = ConfigurationFileDuration.parse(text), grace >= .zero, grace <= .seconds(3600) else {
                throw ValidationError("slow consumer grace '\(text)' is not a duration between 0 and 1h (write 500ms, 2s)")
            }
            config.slowConsumerCloseGrace = grace
        }
        let id = appId ?? Self.pusherEnvironment("APP_ID")
        let key = appKey ?? Self.pusherEnvironment("APP_KEY")
        let secret = appSecret ?? Self.pusherEnvironment("APP_SECRET")
        switch (id, key, secret) {
        case (nil, nil, nil):
            break
        case (let id?, let key?, let secret?) where !id.isEmpty && !key.isEmpty && !secret.isEmpty:
            config.pusherApps = [PusherApp(id: id, key: key, secret: secret)]
        default:
            throw ValidationError("a Pusher app needs all three of --app-id, --app-key and --app-secret (or PUSHER_APP_ID/KEY/SECRET)")
        }
        let countEvents = subscriptionCount || Self.isTrue(environment("SUBSCRIPTION_COUNT"))
        let ttl = try cacheTtl ?? environment("CACHE_TTL").map { try Self.integer($0, "HERALD_CACHE_TTL") }
        if let ttl, ttl < 0 { throw ValidationError("cache TTL must be 0 or more seconds") }
        let signinSeconds = try signinTimeout ?? environment("SIGNIN_TIMEOUT").map { text in
            guard let value = Double(text) else { throw ValidationError("HERALD_SIGNIN_TIMEOUT='\(text)' is not a number") }
            return value
        }
        if let signinSeconds, !(signinSeconds > 0 && signinSeconds.isFinite) {
            throw ValidationError("signin timeout must be more than 0 seconds")
        }
        var webhookURLs = webhook.isEmpty ? (environment("WEBHOOK_URL").map { [$0] } ?? []) : webhook
        webhookURLs = webhookURLs.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters() } }.filter { !$0.isEmpty }
        for url in webhookURLs {
            do {
                try PusherWebhook(url: url).validate()
            } catch {
                throw ValidationError(error.message)
            }
        }
        if config.pusherApps.isEmpty {
            if !webhookURLs.isEmpty { warnings.append("--webhook has no effect without a Pusher app (--app-id, --app-key, --app-secret)") }
            if signinSeconds != nil { warnings.append("--signin-timeout has no effect without a Pusher app (--app-id, --app-key, --app-secret)") }
            if countEvents { warnings.append("--subscription-count has no effect without a Pusher app (--app-id, --app-key, --app-secret)") }
            if ttl != nil { warnings.append("--cache-ttl has no effect without a Pusher app (--app-id, --app-key, --app-secret)") }
        }
        if let token = statusToken ?? environment("STATUS_TOKEN") {
            config.statusToken = token.isEmpty ? nil : token
        }
        if cluster { config.cluster = config.cluster ?? ClusterConfiguration() }
        for (flag, value) in [("--cluster-channel", clusterChannel), ("--cluster-node-id", clusterNodeId)] where value != nil && config.cluster == nil {
            warnings.append("\(flag) \(value ?? "") has no effect without --cluster")
        }
        if let channel = clusterChannel {
            if let problem = ClusterConfiguration.problem(channel: channel) { throw ValidationError(problem) }
            config.cluster?.channel = channel
        }
        if let id = clusterNodeId {
            if let problem = ClusterConfiguration.problem(nodeID: id) { throw ValidationError(problem) }
            config.cluster?.nodeID = id
        }
        if let seconds = clusterPresenceTtl {
            guard seconds >= 1 else { throw ValidationError("--cluster-presence-ttl must be at least 1 second") }
            if config.cluster == nil { warnings.append("--cluster-presence-ttl has no effect without --cluster") }
            config.cluster?.presenceTTL = .seconds(seconds)
        }
        if config.cluster != nil && config.redis == nil {
            throw ValidationError("the cluster needs Redis: give --redis (HERALD_REDIS, redis.url) too")
        }
        if history { config.history = config.history ?? ChannelHistoryConfiguration() }
        for (flag, set) in [("--history-max-events", historyMaxEvents != nil), ("--history-max-age", historyMaxAge != nil), ("--history-max-bytes", historyMaxBytes != nil)]
        where set && config.history == nil {
            warnings.append("\(flag) has no effect without --history")
        }
        if let n = historyMaxEvents {
            guard (1...100_000).contains(n) else { throw ValidationError("--history-max-events \(n) is not in 1-100000") }
            config.history?.maxEventsPerChannel = n
        }
        if let text = historyMaxAge {
            guard let age = ConfigurationFileDuration.parse(text), age >= .milliseconds(1), age <= .seconds(86_400) else {
                throw ValidationError("--history-max-age '\(text)' is not a duration between 1ms and 24h (write 500ms, 120s, 5m)")
            }
            config.history?.maxAge = age
        }
        if let bytes = historyMaxBytes {
            guard bytes >= 65_536 else { throw ValidationError("--history-max-bytes must be at least 65536") }
            config.history?.maxBytes = bytes
        }
        if let token = config.statusToken, token.count < 16 {
            warnings.append("the status token is short (\(token.count) characters); use a long random one, e.g. `openssl rand -hex 24`")
        }
        for index in config.pusherApps.indices {
            if countEvents { config.pusherApps[index].subscriptionCountEvents = true }
            if let ttl { config.pusherApps[index].cacheTTL = ttl }
            if let signinSeconds { config.pusherApps[index].userAuthenticationTimeout = .milliseconds(max(1, Int64((signinSeconds * 1000).rounded()))) }
            for url in webhookURLs where !config.pusherApps[index].webhooks.contains(where: { $0.url == url && $0.eventTypes.isEmpty }) {
                config.pusherApps[index].webhooks.append(PusherWebhook(url: url))
            }
        }
        return ((config, warnings, devMode), loaded.logLevel, loaded.plugins)
    }

    static func isTrue(_ value: String?) -> Bool {
        ["1", "true", "yes", "on"].contains(value?.lowercased() ?? "")
    }

    static func integer(_ text: String, _ name: String) throws -> Int {
        guard let value = Int(text) else { throw ValidationError("\(name)='\(text)' is not a whole number") }
        return value
    }

    func run() async throws {
        let ((configuration, warnings, devMode), fileLogLevel, plugins) = try resolved()
        let logger = try makeLogger(level: logLevel ?? environment("LOG_LEVEL") ?? fileLogLevel ?? (devMode ? "debug" : "info"))
        for warning in warnings + securityWarnings(configuration) {
            logger.warning("\(warning)")
        }
        // The process's metrics go to one Prometheus registry, served at GET /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let relay = Relay(configuration: configuration, plugins: plugins, metrics: .prometheus(registry), logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: relay)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        // SIGHUP reloads the TLS certificate (certbot's deploy hook: systemctl kill -s HUP herald).
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    do {
                        try relay.reloadCertificates()
                    } catch {
                        logger.error("TLS certificate not reloaded; the previous one stays", metadata: ["error": "\(error)"])
                    }
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish an event through Redis in Laravel's broadcast format, or through a node's signed Pusher HTTP API.",
        discussion: """
            Through Redis (every node subscribed to it delivers the event):
              herald publish --redis redis://127.0.0.1:6379 orders 'App\\Events\\OrderShipped' '{"id":1}'
            Through the Pusher HTTP API of one node (signed with the app's secret):
              herald publish --api http://127.0.0.1:6001 --app-id 1001 --app-key key --app-secret secret orders order.shipped '{"id":1}'
            """
    )

    @Option(help: "Redis URL. [env: HERALD_REDIS] (default: redis://127.0.0.1:6379)")
    var redis: String?

    @Option(help: ArgumentHelp("Publish through this node's Pusher HTTP API instead of Redis, e.g. http://127.0.0.1:6001. [env: HERALD_API]", valueName: "url"))
    var api: String?

    @Option(help: "Pusher app id for --api. [env: HERALD_APP_ID, PUSHER_APP_ID, REVERB_APP_ID]")
    var appId: String?

    @Option(help: "Pusher app key for --api. [env: HERALD_APP_KEY, PUSHER_APP_KEY, REVERB_APP_KEY]")
    var appKey: String?

    @Option(help: "Pusher app secret for --api. [env: HERALD_APP_SECRET, PUSHER_APP_SECRET, REVERB_APP_SECRET]")
    var appSecret: String?

    @Option(help: "Key prefix to put in front of the channel, as Laravel does. [env: HERALD_KEY_PREFIX]")
    var keyPrefix: String?

    @Option(help: "Socket id to exclude (Laravel's toOthers()).")
    var socket: String?

    @Argument(help: "Channel name, e.g. orders or private-orders.1.")
    var channel: String

    @Argument(help: "Event name, e.g. App\\Events\\OrderShipped.")
    var event: String

    @Argument(help: "The payload, as JSON.")
    var data: String = "{}"

    func run() async throws {
        let logger = try makeLogger(level: environment("LOG_LEVEL") ?? "warning")
        let payload = ByteBuffer(string: data)
        do {
            try JSONReader.validate(payload)
        } catch {
            throw ValidationError("the payload is not valid JSON: \(error)")
        }
        if let api = api ?? environment("API") {
            try await publishThroughAPI(api, payload: payload)
            return
        }
        let config: RedisConfiguration
        do {
            config = try RedisConfiguration(url: redis ?? environment("REDIS") ?? "redis://127.0.0.1:6379")
        } catch {
            throw ValidationError(error.message)
        }
        let connection = try await RedisConnection.connect(configuration: config, logger: logger)
        let message = LaravelBroadcast(event: event, data: payload, socket: socket).encoded()
        let receivers = try await connection.publish(message, to: (keyPrefix ?? environment("KEY_PREFIX") ?? "") + channel)
        await connection.close()
        print("published to \(receivers) subscriber(s)")
    }

    /// `POST /apps/<id>/events`, signed as Pusher's server libraries sign it.
    private func publishThroughAPI(_ base: String, payload: ByteBuffer) async throws {
        guard let id = appId ?? Serve.pusherEnvironment("APP_ID"), let key = appKey ?? Serve.pusherEnvironment("APP_KEY"),
              let secret = appSecret ?? Serve.pusherEnvironment("APP_SECRET") else {
            throw ValidationError("--api needs --app-id, --app-key and --app-secret (or PUSHER_APP_ID/KEY/SECRET)")
        }
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw ValidationError("--api '\(base)' must start with http:// or https://")
        }
        var members = [
            JSONMember(key: "name", value: .string(event)),
            JSONMember(key: "channels", value: .array([.string(channel)])),
            JSONMember(key: "data", value: .string(String(buffer: payload))),
        ]
        if let socket { members.append(JSONMember(key: "socket_id", value: .string(socket))) }
        var body = ByteBuffer()
        JSONValue.object(members).write(into: &body)
        let path = "/apps/\(id)/events"
        let now = Int64(time(nil))
        let query = PusherSignature.signedQuery(method: "POST", path: path, body: body, key: key, secret: secret, timestamp: now)
            .map { "\($0.name)=\(percentEncoded($0.value))" }
            .joined(separator: "&")
        let url = (base.hasSuffix("/") ? String(base.dropLast()) : base) + path + "?" + query
        let (status, text) = try await postJSON(url: url, body: body)
        guard (200..<300).contains(status) else {
            throw ValidationError("the node answered \(status): \(text)")
        }
        print("published through \(base) (HTTP \(status))")
    }
}

/// Reads a whole (small) file.
func readFile(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else {
        throw ValidationError("cannot read the configuration file '\(path)': \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count > 0 { bytes.append(contentsOf: chunk[..<count]) }
        if count < chunk.count { break }
        guard bytes.count <= 16 << 20 else { throw ValidationError("the configuration file '\(path)' is larger than 16 MiB") }
    }
    if ferror(file) != 0 { throw ValidationError("cannot read the configuration file '\(path)'") }
    return bytes
}

/// The process environment as a dictionary.
func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return result
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
