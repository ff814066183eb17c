// CustomPlugin: plugins written outside Herald, in a relay of your own.
//
// Every plugin here uses only HeraldCore's public plugin API, exactly as a third-party package
// would. Event plugins run once per event, before fan-out, in the order they are listed:
//
//   DropTestChannels  keeps `test.*` channels off the wire;
//   HideSocketIDs     removes the `socket` field Laravel copies into every payload (the
//                     sender's socket id is nobody else's business; `toOthers()` still works,
//                     it reads the envelope's copy);
//   ServerTimestamp   adds the relay's receive time, `relayed_at_ms`.
//
// Two more plugins use the other hooks:
//
//   GuestLobby        admits guests to `presence-lobby.*` without asking the app, and refuses
//                     `internal.*` channels to every client; everything else is up to the app;
//   ConnectionLog     logs clients connecting and disconnecting.
//
//     swift run CustomPlugin                 # Redis at redis://127.0.0.1:6379, port 6001
//     herald publish orders order.shipped '{"id":1,"socket":"123.456"}'
//                                            # clients get {"id":1,"relayed_at_ms":…}
//
// Environment: PORT, HOST, REDIS_URL, KEY_PREFIX (Laravel's `laravel_database_`), AUTH_HOST (the
// app answering /broadcasting/auth for private and presence channels), PUSHER_APP_ID,
// PUSHER_APP_KEY and PUSHER_APP_SECRET (to serve Pusher clients too), LOG_LEVEL.
import Herald
import Logging
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Event plugins

/// Drops events on `test.*` channels.
struct DropTestChannels: EventPlugin {
    let name = "drop-test-channels"

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        event.channel.hasPrefix("test.") ? .drop(reason: "test channel") : .pass(event)
    }
}

/// Removes `socket` from object payloads. Events without one keep their bytes untouched.
struct HideSocketIDs: EventPlugin {
    let name = "hide-socket-ids"

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard case .object(let members) = try JSONReader.parse(event.data),
              members.contains(where: { $0.key == "socket" }) else { return .pass(event) }
        var redacted = event
        redacted.data = ByteBuffer()
        JSONValue.object(members.filter { $0.key != "socket" }).write(into: &redacted.data)
        return .pass(redacted)
    }
}

/// Adds `"relayed_at_ms"` to object payloads.
struct ServerTimestamp: EventPlugin {
    let name = "server-timestamp"

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard case .object(var members) = try JSONReader.parse(event.data) else { return .pass(event) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        members.append(JSONMember(key: "relayed_at_ms", value: .number(String(Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000))))
        var stamped = event
        stamped.data = ByteBuffer()
        JSONValue.object(members).write(into: &stamped.data)
        return .pass(stamped)
    }
}

// MARK: Hooks

/// Guests may join `presence-lobby.*` without logging in: the relay admits them itself, as a
/// member named after their socket id. `internal.*` channels are for server-side consumers,
/// so every client is refused, even though they are public. Anything else: the app decides.
struct GuestLobby: SubscriptionAuthorizingPlugin {
    let name = "guest-lobby"

    func authorize(_ request: SubscriptionRequest, context: PluginContext) async throws -> SubscriptionDecision {
        if request.channel.hasPrefix("internal.") {
            return .deny(status: 403)
        }
        if request.channel.hasPrefix("presence-lobby.") {
            return .allow(channelData: .object([
                JSONMember(key: "user_id", value: .string("guest-\(request.connection.socketID)")),
                JSONMember(key: "user_info", value: .object([JSONMember(key: "name", value: .string("Guest"))])),
            ]))
        }
        return .deferToApp
    }
}

/// Logs clients connecting and disconnecting (after the fact; it never delays them).
struct ConnectionLog: ConnectionObservingPlugin {
    let name = "connection-log"

    func connectionOpened(_ connection: ConnectionInfo, context: PluginContext) async throws {
        context.logger.info("client connected", metadata: [
            "protocol": "\(connection.clientProtocol.rawValue)", "address": "\(connection.remoteAddress ?? "?")",
        ])
    }

    func connectionClosed(_ connection: ConnectionInfo, context: PluginContext) async throws {
        context.logger.info("client disconnected", metadata: ["protocol": "\(connection.clientProtocol.rawValue)"])
    }
}

// MARK: The relay

func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

let logLevel = env("LOG_LEVEL").flatMap(Logger.Level.init(rawValue:)) ?? .info
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = logLevel
    return handler
}
let logger = Logger(label: "custom-plugin")

var configuration = HeraldConfiguration(
    host: env("HOST") ?? "0.0.0.0",
    port: env("PORT").flatMap(Int.init) ?? 6001,
    redis: try RedisConfiguration(url: env("REDIS_URL") ?? "redis://127.0.0.1:6379"),
    keyPrefix: env("KEY_PREFIX") ?? "",
    authorization: env("AUTH_HOST").map { AuthorizationConfiguration(hosts: [$0]) }
)
if let id = env("PUSHER_APP_ID"), let key = env("PUSHER_APP_KEY"), let secret = env("PUSHER_APP_SECRET") {
    configuration.pusherApps = [PusherApp(id: id, key: key, secret: secret)]
}

let relay = Relay(
    configuration: configuration,
    plugins: [DropTestChannels(), HideSocketIDs(), ServerTimestamp(), GuestLobby(), ConnectionLog()],
    logger: logger
)
try await ServiceGroup(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
