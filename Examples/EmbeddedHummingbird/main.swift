// EmbeddedHummingbird: a small shop that embeds Herald in its Hummingbird 2 application.
//
// * The shop's HTTP API runs on Hummingbird (port 8080); Herald serves Socket.IO and Pusher
//   clients on its own listener (port 6001). Both run in one process, in one ServiceGroup, and
//   shut down together on SIGINT/SIGTERM.
// * `POST /orders/{id}/ship` (staff only) broadcasts `OrderShipped` on `private-orders.{id}`:
//   in-process, or with `--redis` through Redis in Laravel's wire format, which this relay (and
//   any other Herald or laravel-echo-server subscribed to that Redis) delivers.
// * `/broadcasting/auth` is answered here, in Swift: `private-orders.{id}` for the customer who
//   owns the order, `presence-store` for every signed-in customer. Herald asks it for Socket.IO
//   clients; Pusher clients (pusher-js, Laravel Echo's pusher connector) ask it directly.
// * `/herald/...` (staff only) publishes events and shows who listens where.
//
// Users are bearer tokens, as in the Laravel test app: `Authorization: Bearer user-7` is user 7.
// User 1 is staff.
//
//     swift run EmbeddedHummingbird [--port 8080] [--herald-port 6001] [--host 127.0.0.1]
//         [--redis redis://127.0.0.1:6379 [--key-prefix laravel_database_]]
//         [--pusher-app-id ID --pusher-app-key KEY --pusher-app-secret SECRET] [--log-level info]
//
// Environment: PORT, HERALD_PORT, HOST, HERALD_REDIS, HERALD_KEY_PREFIX, PUSHER_APP_ID,
// PUSHER_APP_KEY, PUSHER_APP_SECRET, LOG_LEVEL (flags win).
//
//     curl -X POST -H 'Authorization: Bearer user-1' http://127.0.0.1:8080/orders/7/ship
import Foundation
import HeraldHummingbird
import HeraldRedis
import Hummingbird
import Logging

// MARK: - The shop

/// A signed-in customer (or staff member).
struct User: Sendable {
    let id: Int
    var name: String { "User \(id)" }
    var isStaff: Bool { id == 1 }
}

struct Order: Sendable, Codable {
    let id: Int
    let ownerID: Int
    let item: String
}

/// The shop's orders (a database in a real application).
enum Orders {
    static let all: [Int: Order] = [
        7: Order(id: 7, ownerID: 7, item: "Espresso machine"),
        8: Order(id: 8, ownerID: 8, item: "Milk frother"),
        9: Order(id: 9, ownerID: 7, item: "Coffee beans"),
    ]
}

// MARK: - The broadcast event (Laravel's ShouldBroadcast, in Swift)

/// Tells the order's owner that it shipped. Clients listen for `OrderShipped` on
/// `private-orders.{id}` (Laravel Echo: `Echo.private('orders.7').listen('.OrderShipped', …)`).
struct OrderShipped: BroadcastEvent {
    let order: Order
    let carrier: String

    var broadcastOn: [BroadcastChannel] { [.private("orders.\(order.id)")] }
    var broadcastAs: String { "OrderShipped" }
    var broadcastWith: JSONValue {
        .object([
            JSONMember(key: "order", value: .object([
                JSONMember(key: "id", value: .number(String(order.id))),
                JSONMember(key: "item", value: .string(order.item)),
                JSONMember(key: "status", value: .string("shipped")),
            ])),
            JSONMember(key: "carrier", value: .string(carrier)),
        ])
    }
}

// MARK: - Requests: who is asking

/// The request context carries the signed-in user, set by ``BearerUser``.
struct ShopContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var user: User?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.user = nil
    }
}

/// `Authorization: Bearer user-<id>` signs in user `<id>` (a stand-in for real sessions or tokens).
struct BearerUser: RouterMiddleware {
    func handle(_ request: Request, context: ShopContext, next: (Request, ShopContext) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization], header.hasPrefix("Bearer user-"),
           let id = Int(header.dropFirst("Bearer user-".count)), id > 0 {
            context.user = User(id: id)
        }
        return try await next(request, context)
    }
}

/// Lets staff through; 401 without a user, 403 for customers.
struct StaffOnly: RouterMiddleware {
    func handle(_ request: Request, context: ShopContext, next: (Request, ShopContext) async throws -> Response) async throws -> Response {
        guard let user = context.user else { throw HTTPError(.unauthorized, message: "sign in first") }
        guard user.isStaff else { throw HTTPError(.forbidden, message: "staff only") }
        return try await next(request, context)
    }
}

// MARK: - Publishing to Redis (optional)

/// Publishes broadcasts to Redis in Laravel's format over one connection, reopened when lost.
actor RedisPublisher {
    let configuration: RedisConfiguration
    let keyPrefix: String
    let logger: Logger
    private var connection: RedisConnection?

    init(configuration: RedisConfiguration, keyPrefix: String, logger: Logger) {
        self.configuration = configuration
        self.keyPrefix = keyPrefix
        self.logger = logger
    }

    /// Returns how many Redis subscribers (Herald nodes, laravel-echo-servers) received it.
    func broadcast(_ event: some BroadcastEvent, excludingSocketID socketID: String?) async throws -> Int {
        let connection: RedisConnection
        if let open = self.connection, open.isActive {
            connection = open
        } else {
            connection = try await RedisConnection.connect(configuration: configuration, logger: logger)
            self.connection = connection
        }
        return try await RedisBroadcaster(connection: connection, keyPrefix: keyPrefix)
            .broadcast(event, excludingSocketID: socketID)
    }

    func close() async {
        await connection?.close()
        connection = nil
    }
}

// MARK: - Routes

struct ShipResponse: ResponseEncodable {
    let order: Order
    let status: String
    /// `in-process` or `redis`.
    let via: String
}

func makeRouter(relay: Relay, redis: RedisPublisher?, pusher: PusherApp?) -> Router<ShopContext> {
    let router = Router(context: ShopContext.self)
    router.add(middleware: BearerUser())

    router.get("/") { _, _ in "EmbeddedHummingbird ok" }

    // Ship an order and tell its owner, except on the socket that made this request
    // (`X-Socket-ID`, Laravel's toOthers()).
    router.group("orders").add(middleware: StaffOnly()).post("{id}/ship") { request, context -> ShipResponse in
        guard let id = context.parameters.get("id", as: Int.self), let order = Orders.all[id] else {
            throw HTTPError(.notFound, message: "no such order")
        }
        let shipped = OrderShipped(order: order, carrier: "Swift Parcel")
        if let redis {
            let receivers = try await redis.broadcast(shipped, excludingSocketID: request.socketID)
            context.logger.info("OrderShipped published to Redis", metadata: ["order": "\(id)", "receivers": "\(receivers)"])
            return ShipResponse(order: order, status: "shipped", via: "redis")
        }
        guard relay.broadcast(shipped, excludingSocketID: request.socketID) else {
            throw HTTPError(.serviceUnavailable, message: "the relay is overloaded; try again")
        }
        return ShipResponse(order: order, status: "shipped", via: "in-process")
    }

    // routes/channels.php, in Swift.
    var channels = BroadcastChannels<ShopContext>()
    channels.channel("orders.{id}") { _, context, subscription in
        guard let user = context.user, let id = subscription.parameters["id"].flatMap({ Int($0) }),
              let order = Orders.all[id] else { return .denied }
        return order.ownerID == user.id ? .allowed : .denied
    }
    channels.channel("store") { _, context, _ in
        guard let user = context.user else { return .denied }
        return try .member(id: user.id, info: ["name": user.name])
    }
    router.addBroadcastAuth(pusher: pusher, channels: channels)

    // Herald's publish and channel routes, for staff.
    router.group("herald").add(middleware: StaffOnly()).addHeraldRoutes(relay)
    return router
}

// MARK: - Options

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var heraldPort = 6001
    var redis: String?
    var keyPrefix = ""
    var pusherAppID: String?
    var pusherAppKey: String?
    var pusherAppSecret: String?
    var logLevel = Logger.Level.info

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// The environment first, then the flags over it.
    init(arguments: [String], environment: [String: String]) throws {
        var values: [String: String] = [
            "host": environment["HOST"], "port": environment["PORT"], "herald-port": environment["HERALD_PORT"],
            "redis": environment["HERALD_REDIS"], "key-prefix": environment["HERALD_KEY_PREFIX"],
            "pusher-app-id": environment["PUSHER_APP_ID"], "pusher-app-key": environment["PUSHER_APP_KEY"],
            "pusher-app-secret": environment["PUSHER_APP_SECRET"], "log-level": environment["LOG_LEVEL"],
        ].compactMapValues { $0 }
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard flag.hasPrefix("--") else { throw Invalid(description: "unexpected argument '\(flag)'") }
            var name = String(flag.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard ["host", "port", "herald-port", "redis", "key-prefix", "pusher-app-id", "pusher-app-key",
                   "pusher-app-secret", "log-level"].contains(name) else {
                throw Invalid(description: "unknown option '--\(name)'")
            }
            guard let given = value ?? rest.popFirst() else { throw Invalid(description: "--\(name) needs a value") }
            values[name] = given
        }

        func portNumber(_ name: String, default fallback: Int) throws -> Int {
            guard let text = values[name] else { return fallback }
            guard let port = Int(text), (1...65_535).contains(port) else {
                throw Invalid(description: "--\(name) must be a port number (1-65535), not '\(text)'")
            }
            return port
        }
        host = values["host"] ?? host
        port = try portNumber("port", default: port)
        heraldPort = try portNumber("herald-port", default: heraldPort)
        guard port != heraldPort else { throw Invalid(description: "--port and --herald-port must differ") }
        redis = values["redis"]
        keyPrefix = values["key-prefix"] ?? keyPrefix
        pusherAppID = values["pusher-app-id"]
        pusherAppKey = values["pusher-app-key"]
        pusherAppSecret = values["pusher-app-secret"]
        let pusherValues = [pusherAppID, pusherAppKey, pusherAppSecret].compactMap { $0 }
        guard pusherValues.isEmpty || pusherValues.count == 3 else {
            throw Invalid(description: "a Pusher app needs all of --pusher-app-id, --pusher-app-key and --pusher-app-secret")
        }
        if let level = values["log-level"] {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw Invalid(description: "--log-level must be one of trace, debug, info, notice, warning, error, critical")
            }
            logLevel = parsed
        }
    }

    var pusherApp: PusherApp? {
        guard let pusherAppID, let pusherAppKey, let pusherAppSecret else { return nil }
        return PusherApp(id: pusherAppID, key: pusherAppKey, secret: pusherAppSecret)
    }
}

// MARK: - Start

func run(_ options: Options) async throws {
    var logger = Logger(label: "embedded-hummingbird")
    logger.logLevel = options.logLevel

    let redisConfiguration = try options.redis.map { try RedisConfiguration(url: $0) }

    // Herald asks this application's /broadcasting/auth, on the loopback when bound to all interfaces.
    let authHost = ["0.0.0.0", "::"].contains(options.host) ? "127.0.0.1" : options.host
    var herald = HeraldConfiguration(
        host: options.host,
        port: options.heraldPort,
        redis: redisConfiguration,
        keyPrefix: options.keyPrefix,
        authorization: AuthorizationConfiguration(hosts: ["http://\(authHost):\(options.port)"])
    )
    if let app = options.pusherApp { herald.pusherApps = [app] }
    let relay = Relay(configuration: herald, logger: logger)

    let redis = redisConfiguration.map { RedisPublisher(configuration: $0, keyPrefix: options.keyPrefix, logger: logger) }
    let router = makeRouter(relay: relay, redis: redis, pusher: options.pusherApp)
    var app = Application(
        router: router,
        configuration: .init(address: .hostname(options.host, port: options.port), serverName: "EmbeddedHummingbird"),
        logger: logger
    )
    app.addServices(relay)
    try await app.runService()
    await redis?.close()
}

LoggingSystem.bootstrap(StreamLogHandler.standardError)
do {
    let options = try Options(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
    try await run(options)
} catch let error as Options.Invalid {
    FileHandle.standardError.write(Data("EmbeddedHummingbird: \(error)\n".utf8))
    exit(2)
} catch {
    FileHandle.standardError.write(Data("EmbeddedHummingbird: \(error)\n".utf8))
    exit(1)
}
