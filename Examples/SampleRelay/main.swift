// SampleRelay: the seed's relay as a ready configuration.
//
// Redis in (Laravel's RedisBroadcaster, prefix from REDIS_PREFIX), Socket.IO out on port 6001,
// seed compatibility on: every public event also reaches every socket as `<channel>:<event>`.
//
//     swift run SampleRelay                       # Redis at redis://127.0.0.1:6379
//     REDIS_URL=redis://127.0.0.1:6380 swift run SampleRelay
import Herald
import HeraldRedis
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "sample-relay")

let configuration = HeraldConfiguration(
    port: env("PORT").flatMap(Int.init) ?? 6001,
    redis: try RedisConfiguration(url: env("REDIS_URL") ?? "redis://127.0.0.1:6379"),
    keyPrefix: env("REDIS_PREFIX") ?? "",
    emitToAll: true
)
let relay = Relay(configuration: configuration, logger: logger)
let group = ServiceGroup(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
try await group.run()
