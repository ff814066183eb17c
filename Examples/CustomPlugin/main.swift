// CustomPlugin: write an event plugin in Swift and run a relay with it.
//
// `ServerTimestamp` adds the relay's receive time to every object payload, and
// `DropTestChannels` keeps `test.*` channels off the wire. Both use only HeraldCore's public
// plugin API (`EventPlugin`), exactly as a third-party package would.
//
//     swift run CustomPlugin                 # Redis at redis://127.0.0.1:6379, port 6001
//     herald publish orders order.shipped '{"id":1}'   # clients get {"id":1,"relayed_at_ms":…}
import Herald
import Logging
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adds `"relayed_at_ms"` to object payloads. Runs once per event, before fan-out.
struct ServerTimestamp: EventPlugin {
    let name = "server-timestamp"

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard case .object(var members) = try JSONReader.parse(event.data) else { return .pass(event) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        members.append(JSONMember(key: "relayed_at_ms", value: .number(String(Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000))))
        var rewritten = event
        rewritten.data = ByteBuffer()
        JSONValue.object(members).write(into: &rewritten.data)
        return .pass(rewritten)
    }
}

/// Drops events on `test.*` channels.
struct DropTestChannels: EventPlugin {
    let name = "drop-test-channels"

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        event.channel.hasPrefix("test.") ? .drop(reason: "test channel") : .pass(event)
    }
}

func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "custom-plugin")
let relay = Relay(
    configuration: HeraldConfiguration(
        port: env("PORT").flatMap(Int.init) ?? 6001,
        redis: try RedisConfiguration(url: env("REDIS_URL") ?? "redis://127.0.0.1:6379")
    ),
    plugins: [DropTestChannels(), ServerTimestamp()],
    logger: logger
)
try await ServiceGroup(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
