// QRLogin: the seed's QR-code login, end to end, in one process.
//
// A Hummingbird 2 app (port 8080) shows a login page with a fresh, unguessable code; the page
// subscribes to `login.<code>` over Herald (Socket.IO on port 6001, run in the same
// ServiceGroup) with herald-client.js and waits, making no further requests. A phone, or any
// third party, confirms with `POST /confirm/<code>`; the app broadcasts `wechat.login` with a
// one-time token in-process through the relay, and the page redirects to `/dashboard?token=…`.
//
//     swift run QRLogin                      # then open http://127.0.0.1:8080
//     curl -X POST http://127.0.0.1:8080/confirm/<code>
//
// See README.md in this folder.
import Herald
import Hummingbird
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `text` to standard error.
func printError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.append(UInt8(ascii: "\n"))
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

let options: Options
do {
    guard let parsed = try Options.parse(Array(CommandLine.arguments.dropFirst())) else {
        print(Options.usage)
        exit(0)
    }
    options = parsed
} catch {
    printError("QRLogin: \(error)\n\n\(Options.usage)")
    exit(64)
}
guard let logLevel = Logger.Level(rawValue: options.logLevel) else {
    printError("QRLogin: unknown log level '\(options.logLevel)'")
    exit(64)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = logLevel
    return handler
}
let logger = Logger(label: "qrlogin")

// Herald: standalone (no Redis), publishing in-process; only this app's pages may connect.
let relay = Relay(
    configuration: HeraldConfiguration(
        host: options.host,
        port: options.heraldPort,
        allowedOrigins: options.allowedOrigins,
        pingInterval: options.pingInterval,
        pingTimeout: options.pingTimeout
    ),
    logger: logger
)

let router = Hummingbird.Router()
QRLoginRoutes(store: LoginStore(limits: options.limits), relay: relay, options: options, requests: RequestLog())
    .add(to: router)

var app = Application(
    router: router,
    configuration: .init(address: .hostname(options.host, port: options.port), serverName: "QRLogin"),
    logger: logger
)
app.addServices(relay)
logger.info("QRLogin", metadata: [
    "qrlogin.url": "http://\(options.host):\(options.port)/",
    "qrlogin.herald_port": "\(options.heraldPort)",
    "qrlogin.allowed_origins": "\(options.allowedOrigins)",
])
try await app.runService()
