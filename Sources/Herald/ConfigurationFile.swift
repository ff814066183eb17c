import HeraldCore
import HeraldRedis
import Yams

/// Herald's configuration file (`herald.yaml`): one YAML document covering every option.
///
/// ```yaml
/// server:
///   port: 6001
/// redis:
///   url: redis://127.0.0.1:6379/0
///   key_prefix: laravel_database_
/// pusher:
///   apps:
///     - { id: "1001", key: app-key, secret: app-secret }
/// plugins:
///   - use: filter
///     deny_channels: ["internal.*"]
/// ```
///
/// `herald init` writes a commented starter file with every key and its default. Every scalar
/// option can also come from an environment variable (its name is given in the starter file;
/// `server.port` is `HERALD_PORT`, `socket_io.upgrade_timeout` is `HERALD_SOCKET_IO_UPGRADE_TIMEOUT`)
/// which wins over the file. Durations are written with a unit (`250ms`, `25s`, `5m`, `1h`); a
/// bare number is milliseconds. Unknown keys, wrong types and out-of-range values are errors
/// naming the file, line, column and key path:
/// `herald.yaml:7:9: server.port: 70000 is not in 0…65535`.
public struct HeraldConfigurationFile: Sendable {
    /// The relay configuration the file describes, with environment overrides applied.
    public var configuration: HeraldConfiguration
    /// `log.level`, if set.
    public var logLevel: String?
    /// The `plugins` list, in order; the application (the `herald` binary) turns each entry into
    /// a plugin by its `use` name.
    public var plugins: [PluginConfiguration]
    /// Settings that are accepted but unsafe or without effect; log each at start-up.
    public var warnings: [String]

    /// Parses a configuration file.
    ///
    /// - Parameters:
    ///   - text: the file's contents (YAML; JSON is YAML too).
    ///   - file: the file's name, for error messages.
    ///   - environment: the process environment; `HERALD_*` entries override the file.
    ///   - base: the values that stand where the file (and environment) says nothing.
    /// - Throws: ``ConfigurationFileError`` for the first problem found.
    public static func parse(
        _ text: String,
        file: String? = nil,
        environment: [String: String] = [:],
        base: HeraldConfiguration = HeraldConfiguration()
    ) throws(ConfigurationFileError) -> HeraldConfigurationFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationFileError(file: file, line: nil, column: nil, keyPath: "", message: "not valid YAML: \(error)")
        }
        let context = ReaderContext(file: file, environment: environment)
        var top = try ConfigSection(node: root, path: "", context: context, environmentPrefix: "HERALD_")
        var config = base
        var warnings: [String] = []

        if var server = try top.section("server") {
            config.host = try server.string("host", environment: "HOST") ?? config.host
            if let port = try server.integer("port", in: 0...65_535, environment: "PORT") { config.port = port }
            if let origins = try server.stringList("allowed_origins", environment: "ALLOWED_ORIGINS") {
                guard !origins.isEmpty else { throw server.error("allowed_origins", "is empty; use ['*'] to allow every origin") }
                config.allowedOrigins = origins
            }
            if let max = try server.integer("max_payload", in: 1024...Int.max, environment: "MAX_PAYLOAD") { config.maxPayload = max }
            if let max = try server.integer("max_outbound_bytes", in: 4096...Int.max, environment: "MAX_OUTBOUND_BYTES") { config.maxOutboundBytes = max }
            if let bytes = try server.integer("send_buffer_bytes", in: 0...(1 << 30), environment: "SEND_BUFFER_BYTES") { config.socketSendBufferBytes = bytes }
            if let d = try server.duration("slow_consumer_grace", minimum: .zero, environment: "SLOW_CONSUMER_GRACE") { config.slowConsumerCloseGrace = d }
            if let max = try server.integer("max_channels_per_connection", in: 1...Int.max, environment: "MAX_CHANNELS") { config.maxChannelsPerConnection = max }
            if let rate = try server.integer("client_events_per_second", in: 1...Int.max) { config.clientEventsPerSecond = rate }
            if let headers = try server.stringMap("headers") { config.extraHeaders = headers }
            if var tls = try server.section("tls") {
                let certificate = try tls.string("certificate", environment: "TLS_CERT")
                let key = try tls.string("private_key", environment: "TLS_KEY")
                switch (certificate, key) {
                case (nil, nil): break
                case (let certificate?, let key?): config.tls = TLSFiles(certificateChainPath: certificate, privateKeyPath: key)
                case (nil, _): throw tls.error("certificate", "is required with private_key (a PEM certificate chain)")
                case (_, nil): throw tls.error("private_key", "is required with certificate (a PEM private key)")
                }
                try tls.finish()
            }
            try server.finish()
        }
        var logLevel: String?
        if var log = try top.section("log") {
            if let level = try log.string("level", environment: "LOG_LEVEL") {
                let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                guard levels.contains(level.lowercased()) else {
                    throw log.error("level", "'\(level)' is not one of \(levels.joined(separator: ", "))")
                }
                logLevel = level.lowercased()
            }
            try log.finish()
        }
        if var redis = try top.section("redis") {
            if let url = try redis.string("url", environment: "REDIS"), !url.isEmpty {
                do {
                    config.redis = try RedisConfiguration(url: url)
                } catch {
                    throw redis.error("url", error.message)
                }
            }
            config.keyPrefix = try redis.string("key_prefix", environment: "KEY_PREFIX") ?? config.keyPrefix
            try redis.finish()
        }
        if var sio = try top.section("socket_io") {
            if let path = try sio.string("path", environment: "SOCKETIO_PATH") {
                guard path.hasPrefix("/") else { throw sio.error("path", "must start with '/'") }
                config.socketIOPath = path.hasSuffix("/") ? path : path + "/"
            }
            if let d = try sio.duration("ping_interval", minimum: .milliseconds(100), environment: "PING_INTERVAL") { config.pingInterval = d }
            if let d = try sio.duration("ping_timeout", minimum: .milliseconds(100), environment: "PING_TIMEOUT") { config.pingTimeout = d }
            if let d = try sio.duration("upgrade_timeout", minimum: .milliseconds(100)) { config.upgradeTimeout = d }
            if let d = try sio.duration("connect_timeout", minimum: .milliseconds(100)) { config.connectTimeout = d }
            if let n = try sio.integer("max_packets_per_poll", in: 1...1_000) { config.maxPacketsPerPoll = n }
            if let n = try sio.integer("max_queued_packets", in: 1...Int.max) { config.maxQueuedPackets = n }
            if let flag = try sio.bool("emit_to_all", environment: "EMIT_TO_ALL") { config.emitToAll = flag }
            try sio.finish()
        }
        if var auth = try top.section("auth") {
            var value = config.authorization ?? AuthorizationConfiguration()
            var present = false
            if let hosts = try auth.stringList("hosts", environment: "AUTH_HOST") {
                for (index, host) in hosts.enumerated() where !(host.hasPrefix("http://") || host.hasPrefix("https://")) {
                    throw auth.error("hosts", "entry \(index) '\(host)' must start with http:// or https://")
                }
                if !hosts.isEmpty {
                    value.hosts = hosts
                    present = true
                }
            }
            if let endpoint = try auth.string("endpoint", environment: "AUTH_ENDPOINT") {
                guard endpoint.hasPrefix("/") else { throw auth.error("endpoint", "must start with '/'") }
                value.endpoint = endpoint
                present = true
            }
            if let d = try auth.duration("timeout", minimum: .milliseconds(1), environment: "AUTH_TIMEOUT") { value.timeout = d }
            if let n = try auth.integer("max_concurrent_requests", in: 1...100_000) { value.maxConcurrentRequests = n }
            if let n = try auth.integer("max_queued_requests", in: 0...10_000_000) { value.maxQueuedRequests = n }
            if let verify = try auth.bool("verify_certificates") {
                value.verifyCertificates = verify
                if !verify { warnings.append("auth.verify_certificates is false: the application's TLS certificate is not checked") }
            }
            if present || config.authorization != nil { config.authorization = value }
            try auth.finish()
        }
        if var api = try top.section("api") {
            if let clients = try api.sequence("clients") {
                var list: [APIClient] = []
                for var item in clients {
                    let appID = try item.requiredString("app_id")
                    let key = try item.requiredString("key")
                    try item.finish()
                    list.append(APIClient(appID: appID, key: key))
                }
                config.apiClients = list
            }
            if let publish = try api.bool("publish") { config.apiPublishEnabled = publish }
            if api.has("cors"), var cors = try api.section("cors") {
                let origin = try cors.requiredString("allow_origin")
                let methods = try cors.string("allow_methods") ?? "GET, POST"
                let headers = try cors.string("allow_headers") ?? "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, X-CSRF-TOKEN, X-Socket-Id"
                try cors.finish()
                config.apiCORS = APICORS(allowOrigin: origin, allowMethods: methods, allowHeaders: headers)
            }
            try api.finish()
        }
        if var pusher = try top.section("pusher") {
            if let apps = try pusher.sequence("apps") {
                var list: [PusherApp] = []
                for var item in apps {
                    let app = try Self.pusherApp(&item)
                    if list.contains(where: { $0.id == app.id }) { throw item.error("id", "app id '\(app.id)' is used twice") }
                    if list.contains(where: { $0.key == app.key }) { throw item.error("key", "app key '\(app.key)' is used twice") }
                    list.append(app)
                }
                config.pusherApps = list
            }
            try pusher.finish()
        }
        if var status = try top.section("status") {
            if let token = try status.string("token", environment: "STATUS_TOKEN") { config.statusToken = token.isEmpty ? nil : token }
            try status.finish()
        }
        // A `cluster:` section turns scale-out on unless it says `enabled: false`;
        // HERALD_CLUSTER=true turns it on without one.
        let clusterInFile = top.has("cluster")
        if var cluster = try top.section("cluster") {
            let enabled = try cluster.bool("enabled", environment: "CLUSTER") ?? (clusterInFile ? true : nil)
            let channel = try cluster.string("channel")
            let nodeID = try cluster.string("node_id")
            let queueSize = try cluster.integer("queue_size", in: 1...Int.max)
            let presenceTTL = try cluster.duration("presence_ttl", minimum: .seconds(1), environment: "CLUSTER_PRESENCE_TTL")
            if let channel, let problem = ClusterConfiguration.problem(channel: channel) { throw cluster.error("channel", problem) }
            if let nodeID, let problem = ClusterConfiguration.problem(nodeID: nodeID) { throw cluster.error("node_id", problem) }
            switch enabled {
            case true?:
                var value = config.cluster ?? ClusterConfiguration()
                if let channel { value.channel = channel }
                if let nodeID { value.nodeID = nodeID }
                if let queueSize { value.queueSize = queueSize }
                if let presenceTTL { value.presenceTTL = presenceTTL }
                config.cluster = value
            case false?:
                config.cluster = nil
            case nil:
                break
            }
            try cluster.finish()
        }
        // A `history:` section turns missed-message recovery on unless it says `enabled: false`;
        // HERALD_HISTORY=true turns it on without one (RECOVERY.md).
        let historyInFile = top.has("history")
        if var history = try top.section("history") {
            let enabled = try history.bool("enabled", environment: "HISTORY") ?? (historyInFile ? true : nil)
            let maxEvents = try history.integer("max_events", in: 1...100_000)
            let maxAge = try history.duration("max_age", minimum: .milliseconds(1))
            if let maxAge, maxAge > .seconds(86_400) { throw history.error("max_age", "is longer than the maximum 24h") }
            let maxBytes = try history.integer("max_bytes", in: 65_536...Int.max)
            switch enabled {
            case false?:
                config.history = nil
            case true?, nil where config.history != nil:
                var value = config.history ?? ChannelHistoryConfiguration()
                if let maxEvents { value.maxEventsPerChannel = maxEvents }
                if let maxAge { value.maxAge = maxAge }
                if let maxBytes { value.maxBytes = maxBytes }
                config.history = value
            case nil:
                if maxEvents != nil || maxAge != nil || maxBytes != nil {
                    warnings.append("history.max_events, max_age and max_bytes have no effect while history is off (set history.enabled or HERALD_HISTORY=true)")
                }
            }
            try history.finish()
        }
        var plugins: [PluginConfiguration] = []
        if let entries = try top.sequence("plugins") {
            for entry in entries {
                plugins.append(try entry.pluginConfiguration())
            }
        }
        try top.finish()
        return HeraldConfigurationFile(configuration: config, logLevel: logLevel, plugins: plugins, warnings: warnings)
    }

    private static func pusherApp(_ item: inout ConfigSection) throws(ConfigurationFileError) -> PusherApp {
        let id = try item.requiredString("id")
        let key = try item.requiredString("key")
        let secret = try item.requiredString("secret")
        var app = PusherApp(id: id, key: key, secret: secret)
        if let d = try item.duration("activity_timeout", minimum: .seconds(1)) { app.activityTimeout = Int(d.components.seconds) }
        if let n = try item.integer("max_connections", in: 1...Int.max) { app.maxConnections = n }
        if let n = try item.integer("max_event_payload", in: 1...Int.max) { app.maxEventPayloadBytes = n }
        if let n = try item.integer("max_channel_name_length", in: 1...10_000) { app.maxChannelNameLength = n }
        if let n = try item.integer("max_event_name_length", in: 1...10_000) { app.maxEventNameLength = n }
        if let n = try item.integer("max_presence_members", in: 1...Int.max) { app.maxPresenceMembers = n }
        if let n = try item.integer("max_presence_member_size", in: 1...Int.max) { app.maxPresenceMemberBytes = n }
        if let flag = try item.bool("client_events") { app.clientEventsEnabled = flag }
        if let origins = try item.stringList("allowed_origins") { app.allowedOrigins = origins }
        if let d = try item.duration("cache_ttl", minimum: .zero) { app.cacheTTL = Int(d.components.seconds) }
        if let flag = try item.bool("subscription_count") { app.subscriptionCountEvents = flag }
        if let d = try item.duration("signin_timeout", minimum: .milliseconds(1)) { app.userAuthenticationTimeout = d }
        if let hooks = try item.sequence("webhooks") {
            for var hook in hooks {
                var webhook = PusherWebhook(url: try hook.requiredString("url"))
                for (index, name) in (try hook.stringList("event_types") ?? []).enumerated() {
                    guard let type = PusherWebhookEventType(rawValue: name) else {
                        let known = PusherWebhookEventType.allCases.map(\.rawValue).joined(separator: ", ")
                        throw hook.error("event_types", "entry \(index) '\(name)' is not one of \(known)")
                    }
                    webhook.eventTypes.insert(type)
                }
                webhook.channelNameStartsWith = try hook.string("channel_name_starts_with")
                webhook.channelNameEndsWith = try hook.string("channel_name_ends_with")
                do {
                    try webhook.validate()
                } catch {
                    throw hook.error("url", error.message)
                }
                try hook.finish()
                app.webhooks.append(webhook)
            }
        }
        if var delivery = try item.section("webhook_delivery") {
            var d = app.webhookDelivery
            if let n = try delivery.integer("batch_size", in: 1...10_000) { d.batchSize = n }
            if let v = try delivery.duration("batch_interval", minimum: .milliseconds(1)) { d.batchInterval = v }
            if let n = try delivery.integer("max_attempts", in: 1...100) { d.maxAttempts = n }
            if let v = try delivery.duration("initial_backoff", minimum: .milliseconds(1)) { d.initialBackoff = v }
            if let v = try delivery.duration("max_backoff", minimum: .milliseconds(1)) { d.maxBackoff = v }
            if let v = try delivery.duration("request_timeout", minimum: .milliseconds(1)) { d.requestTimeout = v }
            if let n = try delivery.integer("max_queued_events", in: 1...Int.max) { d.maxQueuedEvents = n }
            if let v = try delivery.duration("shutdown_timeout", minimum: .zero) { d.shutdownTimeout = v }
            try delivery.finish()
            app.webhookDelivery = d
        }
        try item.finish()
        return app
    }

    /// Whether `text` looks like laravel-echo-server's `laravel-echo-server.json` rather than a
    /// Herald file: a top-level key only laravel-echo-server has, and none of Herald's sections.
    public static func looksLikeEchoServerFile(_ text: String) -> Bool {
        guard let root = try? Yams.compose(yaml: text), case .mapping(let mapping) = root else { return false }
        let keys = Set(mapping.compactMap { $0.key.scalar?.string })
        let echoKeys: Set<String> = [
            "authHost", "authEndpoint", "clients", "database", "databaseConfig", "devMode", "host", "port",
            "protocol", "socketio", "sslCertPath", "sslKeyPath", "sslCertChainPath", "sslPassphrase",
            "subscribers", "apiOriginAllow", "headers",
        ]
        return !keys.isDisjoint(with: echoKeys) && keys.isDisjoint(with: sectionNames)
    }

    /// Whether `text` is a YAML mapping with at least one of Herald's top-level sections.
    public static func hasHeraldSections(_ text: String) -> Bool {
        guard let root = try? Yams.compose(yaml: text), case .mapping(let mapping) = root else { return false }
        return mapping.contains { $0.key.scalar.map { sectionNames.contains($0.string) } ?? false }
    }

    /// The top-level sections of a Herald file.
    public static let sectionNames: Set<String> = ["server", "log", "redis", "socket_io", "auth", "api", "pusher", "status", "cluster", "history", "plugins"]
}

/// One entry of the `plugins` list: `use` names the plugin, the other keys are its options.
public struct PluginConfiguration: Sendable, Hashable {
    /// The plugin's name (`filter`, `rewrite`, `enrich`, or one an application registers).
    public var use: String
    /// The entry's other keys, as JSON (YAML scalars become strings, numbers, booleans or null).
    public var options: JSONValue
    /// Where the entry is (`plugins[1]`), for error messages.
    public var keyPath: String
    /// The entry's position in the file, for error messages.
    public var line: Int?

    /// - Parameters: see the properties.
    public init(use: String, options: JSONValue, keyPath: String, line: Int? = nil) {
        self.use = use
        self.options = options
        self.keyPath = keyPath
        self.line = line
    }
}

/// A problem in a configuration file or an environment override, with where it is.
public struct ConfigurationFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file's name, if known.
    public var file: String?
    /// 1-based line of the offending node.
    public var line: Int?
    /// 1-based column of the offending node.
    public var column: Int?
    /// The dotted key path (`pusher.apps[0].secret`), or the environment variable's name.
    public var keyPath: String
    /// What is wrong.
    public var message: String

    /// - Parameters: see the properties.
    public init(file: String?, line: Int?, column: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        if file == nil && line == nil && keyPath.hasPrefix("HERALD_") { return "\(keyPath): \(message)" }
        var location = file ?? "configuration"
        if let line { location += ":\(line)" }
        if let column { location += ":\(column)" }
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

// MARK: - Reading

struct ReaderContext {
    let file: String?
    let environment: [String: String]
}

/// A YAML mapping being read: tracks which keys were used, so unknown ones are errors.
struct ConfigSection {
    private let pairs: [(key: String, value: Node, mark: Mark?)]
    private let mark: Mark?
    let path: String
    private let context: ReaderContext
    /// `HERALD_<SECTION>_` for sections whose keys have environment overrides; `nil` inside lists.
    private let environmentPrefix: String?
    private var used: Set<String> = []

    init(node: Node?, path: String, context: ReaderContext, environmentPrefix: String?) throws(ConfigurationFileError) {
        self.path = path
        self.context = context
        self.environmentPrefix = environmentPrefix
        self.mark = node?.mark
        guard let node else {
            self.pairs = []
            return
        }
        guard case .mapping(let mapping) = node else {
            if case .scalar(let scalar) = node, Self.isNull(scalar) {
                self.pairs = []
                return
            }
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: path, message: "expected a mapping of keys to values")
        }
        var pairs: [(key: String, value: Node, mark: Mark?)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                throw ConfigurationFileError(file: context.file, line: key.mark?.line, column: key.mark?.column, keyPath: path, message: "keys must be plain strings")
            }
            if pairs.contains(where: { $0.key == name }) {
                throw ConfigurationFileError(file: context.file, line: key.mark?.line, column: key.mark?.column, keyPath: Self.join(path, name), message: "key appears twice")
            }
            pairs.append((name, value, key.mark))
        }
        self.pairs = pairs
    }

    /// Whether the file has `key` here.
    func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func error(_ key: String, _ message: String) -> ConfigurationFileError {
        let node = pairs.first(where: { $0.key == key })?.value
        return ConfigurationFileError(file: context.file, line: node?.mark?.line ?? mark?.line, column: node?.mark?.column ?? mark?.column, keyPath: Self.join(path, key), message: message)
    }

    /// The environment variable that overrides `key`, if this section has overrides.
    private func environmentName(_ key: String, _ explicit: String?) -> String? {
        guard let prefix = environmentPrefix else { return nil }
        if let explicit { return "HERALD_" + explicit }
        return (prefix + key).uppercased()
    }

    /// The raw text for `key`: from the environment if overridden, else the file's scalar.
    private mutating func scalar(_ key: String, environment explicit: String?) throws(ConfigurationFileError) -> (text: String, origin: String, plain: Bool, mark: Mark?)? {
        used.insert(key)
        if let name = environmentName(key, explicit), let value = context.environment[name] {
            return (value, name, true, nil)
        }
        guard let node = pairs.first(where: { $0.key == key })?.value else { return nil }
        guard case .scalar(let scalar) = node else {
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: Self.join(path, key), message: "expected a single value, not a list or mapping")
        }
        if Self.isNull(scalar) { return nil }
        return (scalar.string, Self.join(path, key), scalar.style == .plain, scalar.mark)
    }

    private func fail(_ origin: String, _ mark: Mark?, _ message: String) -> ConfigurationFileError {
        if mark == nil, origin.hasPrefix("HERALD_") {
            return ConfigurationFileError(file: nil, line: nil, column: nil, keyPath: origin, message: message + " (from the environment)")
        }
        return ConfigurationFileError(file: context.file, line: mark?.line, column: mark?.column, keyPath: origin, message: message)
    }

    mutating func string(_ key: String, environment: String? = nil) throws(ConfigurationFileError) -> String? {
        try scalar(key, environment: environment)?.text
    }

    mutating func requiredString(_ key: String) throws(ConfigurationFileError) -> String {
        guard let value = try string(key), !value.isEmpty else {
            throw ConfigurationFileError(file: context.file, line: mark?.line, column: mark?.column, keyPath: Self.join(path, key), message: "is required")
        }
        return value
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>, environment: String? = nil) throws(ConfigurationFileError) -> Int? {
        guard let raw = try scalar(key, environment: environment) else { return nil }
        let text = raw.text.replacingUnderscores()
        guard let value = Int(text) else { throw fail(raw.origin, raw.mark, "'\(raw.text)' is not a whole number") }
        guard range.contains(value) else {
            let upper = range.upperBound == Int.max ? "" : "\(range.upperBound)"
            throw fail(raw.origin, raw.mark, "\(value) is not in \(range.lowerBound)…\(upper)")
        }
        return value
    }

    mutating func bool(_ key: String, environment: String? = nil) throws(ConfigurationFileError) -> Bool? {
        guard let raw = try scalar(key, environment: environment) else { return nil }
        switch raw.text.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw fail(raw.origin, raw.mark, "'\(raw.text)' is not true or false")
        }
    }

    /// `250ms`, `25s`, `5m`, `1h`, or a bare number of milliseconds.
    mutating func duration(_ key: String, minimum: Duration, environment: String? = nil) throws(ConfigurationFileError) -> Duration? {
        guard let raw = try scalar(key, environment: environment) else { return nil }
        guard let value = Self.parseDuration(raw.text) else {
            throw fail(raw.origin, raw.mark, "'\(raw.text)' is not a duration (write 250ms, 25s, 5m or 1h; a bare number is milliseconds)")
        }
        guard value >= minimum else { throw fail(raw.origin, raw.mark, "'\(raw.text)' is shorter than the minimum \(minimum)") }
        return value
    }

    static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces()
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).trimmingSpaces()
        guard let number = Double(digits), number.isFinite, number >= 0 else { return nil }
        let milliseconds: Double
        switch unit {
        case "", "ms": milliseconds = number
        case "s": milliseconds = number * 1_000
        case "m", "min": milliseconds = number * 60_000
        case "h": milliseconds = number * 3_600_000
        default: return nil
        }
        guard milliseconds < 1e12 else { return nil }
        return .milliseconds(Int64(milliseconds.rounded()))
    }

    /// A list of strings: a YAML sequence, or one string with comma-separated entries (the
    /// environment form).
    mutating func stringList(_ key: String, environment explicit: String? = nil) throws(ConfigurationFileError) -> [String]? {
        used.insert(key)
        if let name = environmentName(key, explicit), let value = context.environment[name] {
            return value.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        }
        guard let node = pairs.first(where: { $0.key == key })?.value else { return nil }
        switch node {
        case .sequence(let sequence):
            var out: [String] = []
            for (index, element) in sequence.enumerated() {
                guard let text = element.scalar?.string else {
                    throw ConfigurationFileError(file: context.file, line: element.mark?.line, column: element.mark?.column, keyPath: Self.join(path, key) + "[\(index)]", message: "expected a string")
                }
                out.append(text)
            }
            return out
        case .scalar(let scalar):
            if Self.isNull(scalar) { return nil }
            return scalar.string.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        default:
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: Self.join(path, key), message: "expected a list of strings")
        }
    }

    /// A mapping of string to string (HTTP headers), in file order.
    mutating func stringMap(_ key: String) throws(ConfigurationFileError) -> [(name: String, value: String)]? {
        used.insert(key)
        guard let node = pairs.first(where: { $0.key == key })?.value else { return nil }
        guard case .mapping(let mapping) = node else {
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: Self.join(path, key), message: "expected a mapping of names to values")
        }
        var out: [(name: String, value: String)] = []
        for (name, value) in mapping {
            guard let n = name.scalar?.string, let v = value.scalar?.string else {
                throw ConfigurationFileError(file: context.file, line: value.mark?.line, column: value.mark?.column, keyPath: Self.join(path, key), message: "expected string names and values")
            }
            out.append((n, v))
        }
        return out
    }

    /// A nested section. A section the file leaves out is read as empty, so its keys'
    /// environment overrides still apply.
    mutating func section(_ key: String) throws(ConfigurationFileError) -> ConfigSection? {
        used.insert(key)
        let node = pairs.first(where: { $0.key == key })?.value
        let prefix = environmentPrefix.map { $0 + key.uppercased() + "_" }
        if node == nil && prefix == nil { return nil }
        return try ConfigSection(node: node, path: Self.join(path, key), context: context, environmentPrefix: prefix)
    }

    /// A list of mappings (`pusher.apps`, `api.clients`); entries have no environment overrides.
    mutating func sequence(_ key: String) throws(ConfigurationFileError) -> [ConfigSection]? {
        used.insert(key)
        guard let node = pairs.first(where: { $0.key == key })?.value else { return nil }
        if case .scalar(let scalar) = node, Self.isNull(scalar) { return [] }
        guard case .sequence(let sequence) = node else {
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: Self.join(path, key), message: "expected a list")
        }
        var out: [ConfigSection] = []
        for (index, element) in sequence.enumerated() {
            out.append(try ConfigSection(node: element, path: Self.join(path, key) + "[\(index)]", context: context, environmentPrefix: nil))
        }
        return out
    }

    /// Every key was known.
    func finish() throws(ConfigurationFileError) {
        for pair in pairs where !used.contains(pair.key) {
            let known = used.sorted()
            var message = "unknown key"
            if let guess = known.min(by: { Self.distance($0, pair.key) < Self.distance($1, pair.key) }), Self.distance(guess, pair.key) <= 3 {
                message += " (did you mean '\(guess)'?)"
            } else if !known.isEmpty {
                message += "; known keys here: \(known.joined(separator: ", "))"
            }
            throw ConfigurationFileError(file: context.file, line: pair.mark?.line, column: pair.mark?.column, keyPath: Self.join(path, pair.key), message: message)
        }
    }

    /// The entry as a plugin configuration: `use` plus the other keys as JSON.
    func pluginConfiguration() throws(ConfigurationFileError) -> PluginConfiguration {
        guard let use = pairs.first(where: { $0.key == "use" })?.value.scalar?.string, !use.isEmpty else {
            throw ConfigurationFileError(file: context.file, line: mark?.line, column: mark?.column, keyPath: Self.join(path, "use"), message: "is required: the plugin's name (filter, rewrite, enrich, …)")
        }
        var members: [JSONMember] = []
        for pair in pairs where pair.key != "use" {
            members.append(JSONMember(key: pair.key, value: try json(pair.value, path: Self.join(path, pair.key))))
        }
        return PluginConfiguration(use: use, options: .object(members), keyPath: path, line: mark?.line)
    }

    private func json(_ node: Node, path: String) throws(ConfigurationFileError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if Self.isNull(scalar) { return .null }
            guard scalar.style == .plain else { return .string(scalar.string) }
            switch scalar.string {
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default:
                if case .number(let literal)? = try? JSONReader.parse(scalar.string) {
                    return .number(literal)
                }
                return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (index, element) in sequence.enumerated() { items.append(try json(element, path: path + "[\(index)]")) }
            return .array(items)
        case .mapping(let mapping):
            var members: [JSONMember] = []
            for (key, value) in mapping {
                guard let name = key.scalar?.string else {
                    throw ConfigurationFileError(file: context.file, line: key.mark?.line, column: key.mark?.column, keyPath: path, message: "keys must be plain strings")
                }
                members.append(JSONMember(key: name, value: try json(value, path: Self.join(path, name))))
            }
            return .object(members)
        case .alias:
            throw ConfigurationFileError(file: context.file, line: node.mark?.line, column: node.mark?.column, keyPath: path, message: "YAML aliases are not supported here")
        }
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// Parses the configuration file's durations (`250ms`, `25s`, `5m`, `1h`, or a bare number of
/// milliseconds), for applications that read their own plugin options.
public enum ConfigurationFileDuration {
    /// The duration `text` stands for, or `nil` if it is not one.
    public static func parse(_ text: String) -> Duration? { ConfigSection.parseDuration(text) }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    func replacingUnderscores() -> String { String(self.filter { $0 != "_" }) }
}
