import ArgumentParser
import Herald
import HeraldCore
import HeraldProtocols
import HeraldRedis
import Logging
import NIOCore
import ServiceLifecycle

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
            """,
        subcommands: [Serve.self, Publish.self],
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

    @Option(help: "Redis URL to ingest Laravel broadcasts from, redis://[:password@]host:port/db. Without it Herald runs standalone. [env: HERALD_REDIS]")
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

    @Option(help: "trace, debug, info, notice, warning, error or critical. [env: HERALD_LOG_LEVEL] (default: info)")
    var logLevel: String?

    func resolvedConfiguration() throws -> HeraldConfiguration {
        var config = HeraldConfiguration()
        config.host = host ?? environment("HOST") ?? config.host
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
        return config
    }

    static func integer(_ text: String, _ name: String) throws -> Int {
        guard let value = Int(text) else { throw ValidationError("\(name)='\(text)' is not a whole number") }
        return value
    }

    func run() async throws {
        let logger = try makeLogger(level: logLevel ?? environment("LOG_LEVEL") ?? "info")
        let configuration = try resolvedConfiguration()
        let relay = Relay(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: relay)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish an event through Redis in Laravel's broadcast format.",
        discussion: "Example: herald publish --redis redis://127.0.0.1:6379 orders 'App\\\\Events\\\\OrderShipped' '{\"id\":1}'"
    )

    @Option(help: "Redis URL. [env: HERALD_REDIS] (default: redis://127.0.0.1:6379)")
    var redis: String?

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
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
