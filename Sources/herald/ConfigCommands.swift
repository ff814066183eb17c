import ArgumentParser
import Herald
import HeraldCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald check-config FILE`: validates a configuration file the way `serve` reads it.
struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration file (herald.yaml or laravel-echo-server.json) and explain any error.",
        discussion: """
            Reads the file as `herald serve --config FILE` would, with the HERALD_* environment
            applied, builds the configured plugins, and prints a summary. Errors name the file,
            line, column and key path, e.g. `herald.yaml:4:9: server.port: 70000 is not in 0…65535`.
            Exits 0 when the file is valid, 1 when it is not.
            """
    )

    @Argument(help: "The configuration file.")
    var file: String

    func run() async throws {
        let text: String
        do {
            text = String(decoding: try readFile(file), as: UTF8.self)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        do {
            let loaded = try LoadedConfiguration.load(text: text, file: file, environment: processEnvironment())
            for warning in loaded.warnings + securityWarnings(loaded.configuration) { print("warning: \(warning)") }
            print(loaded.summary)
            print("\(file): OK")
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// What `serve` and `check-config` read from a file and the environment.
struct LoadedConfiguration {
    var configuration: HeraldConfiguration
    var warnings: [String]
    var devMode: Bool
    var logLevel: String?
    var plugins: [any EventPlugin]
    var format: String

    /// Reads `text` (a Herald YAML file, or a laravel-echo-server JSON file) or, with `nil`,
    /// only the environment's `HERALD_*` overrides.
    static func load(text: String?, file: String?, environment: [String: String]) throws -> LoadedConfiguration {
        // laravel-echo-server.json is told apart by its keys; a .json file that is not a Herald
        // file (no Herald section) goes to the laravel-echo-server reader, whose errors fit it.
        let isEchoServerFile = text.map {
            HeraldConfigurationFile.looksLikeEchoServerFile($0)
                || (file?.lowercased().hasSuffix(".json") == true && !HeraldConfigurationFile.hasHeraldSections($0))
        } ?? false
        if let text, isEchoServerFile {
            do {
                let les = try EchoServerConfiguration.parse(Array(text.utf8), environment: environment)
                let overlaid = try HeraldConfigurationFile.parse("", file: file, environment: environment, base: les.configuration)
                return LoadedConfiguration(
                    configuration: overlaid.configuration, warnings: les.warnings.map { "\(file ?? "configuration"): \($0)" } + overlaid.warnings,
                    devMode: les.devMode, logLevel: overlaid.logLevel, plugins: [], format: "laravel-echo-server.json"
                )
            } catch let error as EchoServerConfigurationError {
                throw ValidationError("\(file ?? "configuration"): \(error)")
            }
        }
        let parsed = try HeraldConfigurationFile.parse(text ?? "", file: file, environment: environment)
        let plugins = try BundledPlugins.make(parsed.plugins, file: file)
        return LoadedConfiguration(
            configuration: parsed.configuration, warnings: parsed.warnings, devMode: false,
            logLevel: parsed.logLevel, plugins: plugins, format: "herald.yaml"
        )
    }

    /// A few lines saying what the configuration will do (secrets never shown).
    var summary: String {
        let c = configuration
        var lines = ["format: \(format)", "listen: \(c.host):\(c.port) (Socket.IO at \(c.socketIOPath))"]
        if let redis = c.redis {
            lines.append("redis: \(redis.address), pattern '\(c.redisPattern)'")
        } else {
            lines.append("redis: none (standalone: HTTP API and in-process publishing only)")
        }
        if let auth = c.authorization {
            lines.append("auth: \(auth.hosts.joined(separator: ", ")) \(auth.endpoint)")
        } else {
            lines.append("auth: none (private and presence channels are refused)")
        }
        lines.append("allowed origins: \(c.allowedOrigins.joined(separator: ", "))")
        for app in c.pusherApps {
            lines.append("pusher app: id \(app.id), key \(app.key), secret \(String(repeating: "*", count: 8))")
        }
        if !c.apiClients.isEmpty { lines.append("laravel-echo-server API clients: \(c.apiClients.count)") }
        if let cluster = c.cluster { lines.append("cluster: channel '\(c.clusterChannel ?? "")', node id \(cluster.nodeID)") }
        if let history = c.history {
            lines.append("history: \(history.maxEventsPerChannel) events per channel for \(history.maxAge), at most \(history.maxBytes) bytes (missed-message recovery)")
        }
        lines.append("plugins: \(plugins.isEmpty ? "none" : plugins.map(\.name).joined(separator: " → "))")
        return lines.joined(separator: "\n")
    }
}

/// `herald init`: writes a commented starter configuration, optionally prefilled from a Laravel `.env`.
struct Init: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a commented starter herald.yaml, optionally prefilled from a Laravel .env file.",
        discussion: """
            From a Laravel .env Herald takes BROADCAST_DRIVER (BROADCAST_CONNECTION), REDIS_URL or
            REDIS_HOST/REDIS_PORT/REDIS_USERNAME/REDIS_PASSWORD/REDIS_DB, REDIS_PREFIX (or the
            prefix Laravel derives from APP_NAME: Str::slug(APP_NAME, '_') . '_database_'),
            APP_URL (the auth host) and PUSHER_APP_ID/KEY/SECRET or REVERB_APP_ID/KEY/SECRET.
            Example: herald init --env ../my-app/.env --output herald.yaml
            """
    )

    @Option(help: ArgumentHelp("A Laravel .env file to prefill the configuration from.", valueName: "file"))
    var env: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the file; '-' prints it.", valueName: "file"))
    var output: String = "herald.yaml"

    @Flag(help: "Overwrite the output file if it exists.")
    var force = false

    func run() async throws {
        var values = StarterValues()
        if let env {
            let text = String(decoding: try readFile(env), as: UTF8.self)
            values = StarterValues(dotEnv: DotEnv.parse(text))
        }
        let yaml = values.render()
        // What we write must be what we read back.
        do {
            _ = try LoadedConfiguration.load(text: yaml, file: output, environment: [:])
        } catch {
            throw ValidationError("the generated configuration does not validate (\(error)); the .env file may hold an unusable value")
        }
        if output == "-" {
            print(yaml, terminator: "")
            return
        }
        if !force, access(output, F_OK) == 0 {
            throw ValidationError("\(output) exists; pass --force to overwrite it")
        }
        guard let handle = fopen(output, "w") else {
            throw ValidationError("cannot write \(output): \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        guard fputs(yaml, handle) >= 0 else { throw ValidationError("cannot write \(output)") }
        print("wrote \(output)\(env.map { " (prefilled from \($0))" } ?? ""); check it with: herald check-config \(output)")
        for note in values.notes { print("note: \(note)") }
    }
}

/// A Laravel `.env` file: `KEY=value` lines, `#` comments, optional `export`, single or double
/// quotes, and `${OTHER}` references to earlier keys (as vlucas/phpdotenv reads them).
enum DotEnv {
    static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingSpaces() }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals]).trimmingSpaces()
            var value = String(line[line.index(after: equals)...]).trimmingSpaces()
            var interpolate = true
            if let quote = value.first, quote == "\"" || quote == "'" {
                let body = value.dropFirst()
                if let end = body.firstIndex(of: quote) {
                    value = String(body[..<end])
                } else {
                    value = String(body)
                }
                interpolate = quote == "\""
                if quote == "\"" { value = value.replacingOccurrences("\\n", "\n") }
            } else if let hash = value.firstRange(of: " #") {
                value = String(value[..<hash.lowerBound]).trimmingSpaces()
            }
            if interpolate { value = substitute(value, values) }
            values[key] = value
        }
        return values
    }

    private static func substitute(_ value: String, _ known: [String: String]) -> String {
        var out = ""
        var rest = Substring(value)
        while let start = rest.firstRange(of: "${") {
            out += rest[..<start.lowerBound]
            let after = rest[start.upperBound...]
            guard let end = after.firstIndex(of: "}") else {
                out += rest[start.lowerBound...]
                return out
            }
            out += known[String(after[..<end])] ?? ""
            rest = after[after.index(after: end)...]
        }
        return out + rest
    }
}

/// The values a starter file is written with.
struct StarterValues {
    var redisURL = "redis://127.0.0.1:6379/0"
    var keyPrefix = "laravel_database_"
    var authHost = "http://localhost"
    var pusher: (id: String, key: String, secret: String)?
    var notes: [String] = []

    init() {}

    init(dotEnv env: [String: String]) {
        func value(_ key: String) -> String? { env[key].flatMap { $0.isEmpty || $0 == "null" ? nil : $0 } }
        let driver = value("BROADCAST_CONNECTION") ?? value("BROADCAST_DRIVER") ?? "redis"
        if let url = value("REDIS_URL") {
            redisURL = url
        } else {
            let host = value("REDIS_HOST") ?? "127.0.0.1"
            let port = value("REDIS_PORT") ?? "6379"
            let database = value("REDIS_DB") ?? "0"
            var credentials = ""
            if let password = value("REDIS_PASSWORD") {
                credentials = (value("REDIS_USERNAME").map(percentEncoded) ?? "") + ":" + percentEncoded(password) + "@"
            }
            redisURL = "redis://\(credentials)\(host):\(port)/\(database)"
        }
        if let prefix = env["REDIS_PREFIX"] {
            keyPrefix = prefix
        } else {
            keyPrefix = Self.laravelSlug(value("APP_NAME") ?? "laravel") + "_database_"
            notes.append("key prefix '\(keyPrefix)' derived from APP_NAME as Laravel does (set REDIS_PREFIX to choose another)")
        }
        if let url = value("APP_URL") { authHost = url }
        let prefix = driver == "reverb" ? "REVERB_" : "PUSHER_"
        if let id = value(prefix + "APP_ID"), let key = value(prefix + "APP_KEY"), let secret = value(prefix + "APP_SECRET") {
            pusher = (id, key, secret)
        } else if let id = value("PUSHER_APP_ID") ?? value("REVERB_APP_ID"),
                  let key = value("PUSHER_APP_KEY") ?? value("REVERB_APP_KEY"),
                  let secret = value("PUSHER_APP_SECRET") ?? value("REVERB_APP_SECRET") {
            pusher = (id, key, secret)
        }
        switch driver {
        case "redis":
            notes.append("BROADCAST_DRIVER=redis: Laravel publishes to Redis; Herald subscribes to '\(keyPrefix)*'")
        case "pusher", "reverb":
            notes.append("BROADCAST_DRIVER=\(driver): point PUSHER_HOST/PUSHER_PORT (or REVERB_HOST/REVERB_PORT) at Herald; Laravel then publishes over the HTTP API")
        default:
            notes.append("BROADCAST_DRIVER=\(driver): Herald understands the redis, pusher and reverb drivers")
        }
    }

    /// Laravel's `Str::slug($name, '_')` for ASCII names.
    static func laravelSlug(_ name: String) -> String {
        var out = ""
        var pendingSeparator = false
        for scalar in name.replacingOccurrences("@", " at ").unicodeScalars {
            let c = Character(scalar)
            if c.isASCII && (c.isLetter || c.isNumber) {
                if pendingSeparator && !out.isEmpty { out.append("_") }
                pendingSeparator = false
                out.append(c.lowercased())
            } else if c == " " || c == "-" || c == "_" {
                pendingSeparator = true
            }
        }
        return out
    }

    /// A YAML double-quoted string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for c in text {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out + "\""
    }

    func render() -> String {
        let apps: String
        if let pusher {
            apps = """
                  apps:
                    - id: \(Self.quoted(pusher.id))
                      key: \(Self.quoted(pusher.key))
                      secret: \(Self.quoted(pusher.secret))   # keep this file private (chmod 600)
                      max_connections: 10000           # over it: pusher:error 4004; raise with your file-descriptor limit
                      # max_event_payload: 10240         # bytes (Pusher: 10 KB)
                      # max_channel_name_length: 164
                      # max_event_name_length: 200
                      # max_presence_members: 100
                      # max_presence_member_size: 2048   # bytes of user_info
                      # client_events: true              # client-* events on private/presence channels
                      # allowed_origins: []              # empty: any origin
                      # activity_timeout: 30s
                      # cache_ttl: 1h                    # last event of cache-* channels
                      # subscription_count: false        # pusher_internal:subscription_count
                      # signin_timeout: 30s              # close (4009) without pusher:signin
                      # webhooks:                        # signed (X-Pusher-Signature), batched, retried
                      #   - url: https://shop.example.com/pusher/webhook
                      #     event_types: [channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss]
                      #     channel_name_starts_with: presence-
                      # webhook_delivery: { batch_size: 50, batch_interval: 100ms, max_attempts: 5, max_queued_events: 10000 }
                """
        } else {
            apps = """
                  apps: []
                  # apps:
                  #   - id: "1001"                      # PUSHER_APP_ID / REVERB_APP_ID
                  #     key: "app-key"                  # PUSHER_APP_KEY
                  #     secret: "app-secret"            # PUSHER_APP_SECRET
                """
        }
        return """
            # Herald configuration (YAML). Check it with: herald check-config herald.yaml
            # Every key is optional; the commented values are the defaults.
            # Precedence: command-line flags > HERALD_* environment variables > this file > defaults.
            # Durations take a unit (250ms, 25s, 5m, 1h); a bare number is milliseconds.

            server:
              # host: 0.0.0.0                      # HERALD_HOST, --host
              # port: 6001                         # HERALD_PORT, --port
              # Origins allowed to open WebSockets and polling sessions; list your sites in production.
              allowed_origins: ["*"]               # HERALD_ALLOWED_ORIGINS (comma-separated)
              # max_payload: 1000000               # bytes per message/polling body; HERALD_MAX_PAYLOAD
              # max_outbound_bytes: 1048576        # per connection before it is cut as a slow consumer
              # send_buffer_bytes: 131072          # kernel send buffer per connection; 0 = autotuning (up to 4 MiB)
              # slow_consumer_grace: 2s            # a cut slow consumer's time to read its close frame, then reset
              # max_channels_per_connection: 100   # HERALD_MAX_CHANNELS
              # client_events_per_second: 10       # whispers per connection
              # headers: {}                        # extra headers on every HTTP response
              # tls:                               # serve https/wss on this port; files re-read on SIGHUP
              #   certificate: /etc/letsencrypt/live/realtime.example.com/fullchain.pem   # HERALD_TLS_CERT
              #   private_key: /etc/letsencrypt/live/realtime.example.com/privkey.pem     # HERALD_TLS_KEY

            log:
              # level: info                        # trace, debug, info, notice, warning, error, critical; HERALD_LOG_LEVEL

            redis:
              # Where Laravel's RedisBroadcaster publishes. Remove `url` to run without Redis.
              url: \(Self.quoted(redisURL))   # HERALD_REDIS
              key_prefix: \(Self.quoted(keyPrefix))   # Laravel's REDIS_PREFIX; HERALD_KEY_PREFIX

            socket_io:
              # path: /socket.io/                  # HERALD_SOCKETIO_PATH
              # ping_interval: 25s                 # HERALD_PING_INTERVAL
              # ping_timeout: 20s                  # HERALD_PING_TIMEOUT
              # upgrade_timeout: 10s               # HERALD_SOCKET_IO_UPGRADE_TIMEOUT
              # connect_timeout: 45s               # HERALD_SOCKET_IO_CONNECT_TIMEOUT
              # max_packets_per_poll: 16
              # max_queued_packets: 10000
              # emit_to_all: false                 # seed compatibility: also emit '<channel>:<event>' to everyone

            auth:
              # The Laravel app that answers /broadcasting/auth for private and presence channels.
              hosts: [\(Self.quoted(authHost))]   # HERALD_AUTH_HOST (comma-separated)
              # endpoint: /broadcasting/auth       # HERALD_AUTH_ENDPOINT
              # timeout: 10s                       # HERALD_AUTH_TIMEOUT
              # max_concurrent_requests: 64
              # max_queued_requests: 10000
              # verify_certificates: true          # never turn off in production

            api:
              # laravel-echo-server's HTTP API (/apps/<app_id>/…), keyed by ?auth_key=
              # clients:
              #   - { app_id: "my-app", key: "a-long-random-key" }
              # publish: true                      # accept POST /apps/<app_id>/events
              # cors: { allow_origin: "https://example.com" }

            pusher:
              # Pusher Channels protocol 7 (pusher-js, Laravel Echo's pusher/reverb broadcasters)
              # at /app/<key>, and its signed HTTP API at /apps/<id>/.
              # The first app shares channels with Socket.IO and Redis; each further app's channels are its own.
            \(apps)

            # status: { token: "a-long-random-token" }   # GET /status page, /status.json, /tail; HERALD_STATUS_TOKEN, --status-token

            # Several nodes on one Redis (--cluster, HERALD_CLUSTER=true): HTTP-API events, whispers and presence
            # are shared by every node; a node that stops has its presence members removed after presence_ttl.
            # cluster: { channel: "herald:cluster", node_id: relay-1, presence_ttl: 30s }   # defaults: herald:cluster[:<key_prefix>], random id, 30s

            # Missed-message recovery (RECOVERY.md; --history, HERALD_HISTORY=true): clients that ask for it get the
            # events they missed while reconnecting. Off by default: it keeps recent events in memory.
            # history: { max_events: 100, max_age: 120s, max_bytes: 33554432 }   # per channel; per event; all channels

            # Event plugins, run in this order on every event before it is delivered.
            plugins: []
            # plugins:
            #   - use: filter                      # allow/deny by channel and event-name globs
            #     deny_channels: ["internal.*"]
            #   - use: rewrite                     # rename, map channels, set/remove/redact payload fields
            #     rules:
            #       - { op: redact, path: user.email }
            #   - use: enrich                      # add relayed_at_ms (and a node name) to payloads
            #     node: relay-1
            #     on_error: pass                   # what a failing plugin does with the event: drop (default) or pass
            #     time_budget: 50ms                # how long one call may take before it counts as failed (default 250ms)

            """
    }
}

/// Settings that work but are unsafe in production; each becomes a start-up warning (and a
/// `check-config` warning). Never includes a secret's value.
func securityWarnings(_ c: HeraldConfiguration) -> [String] {
    var warnings: [String] = []
    // Allowed origins '*' is logged by the relay itself (a notice: it is the development default).
    if c.authorization?.verifyCertificates == false {
        warnings.append("the auth endpoint's TLS certificate is not verified (--auth-insecure / auth.verify_certificates: false)")
    }
    if let hosts = c.authorization?.hosts, hosts.contains(where: { $0.hasPrefix("http://") && !$0.contains("://localhost") && !$0.contains("://127.") }) {
        warnings.append("an auth host is plain http on a non-loopback address: cookies and tokens cross the network unencrypted")
    }
    for app in c.pusherApps {
        if app.secret.count < 16 {
            warnings.append("Pusher app \(app.id): its secret is shorter than 16 characters; use a long random secret")
        }
        if app.maxConnections == nil {
            warnings.append("Pusher app \(app.id): no max_connections limit; set one so a flood cannot exhaust file descriptors")
        }
    }
    for client in c.apiClients where client.key.count < 16 {
        warnings.append("HTTP API client \(client.appID): its key is shorter than 16 characters")
    }
    if c.tls == nil && c.host != "127.0.0.1" && c.host != "localhost" && c.host != "::1" {
        warnings.append("serving plain HTTP on \(c.host): put TLS in front (Examples/Deploy/nginx.conf) or use --tls-cert/--tls-key")
    }
    return warnings
}

func printError(_ message: String) {
    let line = "error: \(message)\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(self.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
