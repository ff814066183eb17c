/// The demo's command line.
struct Options: Sendable {
    /// Interface both servers bind.
    var host = "127.0.0.1"
    /// The web app's port.
    var port = 8080
    /// Herald's Socket.IO port.
    var heraldPort = 6001
    /// Herald's address as the browser should use it (`wss://example.com:6001`); `nil` means
    /// the page's own host name with ``heraldPort``.
    var heraldURL: String?
    /// Page origins Herald admits besides this app's own (`http://<host>:<port>`, and
    /// `localhost`/`127.0.0.1` for a loopback host).
    var extraOrigins: [String] = []
    /// Limits of codes, tokens and sessions.
    var limits = LoginLimits()
    /// Herald's heartbeat (Engine.IO pingInterval / pingTimeout).
    var pingInterval: Duration = .seconds(25)
    var pingTimeout: Duration = .seconds(20)
    /// Log level (`info`; `debug` shows Herald's subscriptions).
    var logLevel = "info"

    static let usage = """
        USAGE: QRLogin [options]

          --host <address>          interface for both servers (default 127.0.0.1)
          --port <port>             the web app (default 8080)
          --herald-port <port>      Herald's Socket.IO endpoint (default 6001)
          --herald-url <url>        Herald as the browser reaches it (default ws://<page host>:<herald port>)
          --origin <origin>         another page origin Herald admits (repeatable)
          --code-ttl <seconds>      how long a login code can be confirmed (default 300)
          --ping-interval <seconds> Herald's heartbeat interval (default 25)
          --ping-timeout <seconds>  how long Herald waits for a pong (default 20)
          --log-level <level>       trace, debug, info, notice, warning, error (default info)
          --help                    this text
        """

    /// What went wrong with the command line.
    struct UsageError: Error, CustomStringConvertible {
        let description: String
    }

    /// Parses `arguments` (without the program name). Returns `nil` for `--help`.
    static func parse(_ arguments: [String]) throws(UsageError) -> Options? {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) throws(UsageError) -> String {
            guard let value = rest.popFirst() else { throw UsageError(description: "\(flag) needs a value") }
            return value
        }
        func port(_ flag: String) throws(UsageError) -> Int {
            let text = try value(flag)
            guard let port = Int(text), (1...65_535).contains(port) else {
                throw UsageError(description: "\(flag) must be a port number (1-65535), not '\(text)'")
            }
            return port
        }
        func seconds(_ flag: String) throws(UsageError) -> Duration {
            let text = try value(flag)
            guard let seconds = Int(text), (1...86_400).contains(seconds) else {
                throw UsageError(description: "\(flag) must be a whole number of seconds (1-86400), not '\(text)'")
            }
            return .seconds(seconds)
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--help", "-h": return nil
            case "--host": options.host = try value(flag)
            case "--port": options.port = try port(flag)
            case "--herald-port": options.heraldPort = try port(flag)
            case "--herald-url": options.heraldURL = try value(flag)
            case "--origin": options.extraOrigins.append(try value(flag))
            case "--code-ttl": options.limits.codeLifetime = try seconds(flag)
            case "--ping-interval": options.pingInterval = try seconds(flag)
            case "--ping-timeout": options.pingTimeout = try seconds(flag)
            case "--log-level": options.logLevel = try value(flag)
            default: throw UsageError(description: "unknown option '\(flag)'")
            }
        }
        guard options.port != options.heraldPort else {
            throw UsageError(description: "--port and --herald-port must differ (both are \(options.port))")
        }
        if let url = options.heraldURL, !["ws://", "wss://", "http://", "https://"].contains(where: url.hasPrefix) {
            throw UsageError(description: "--herald-url must start with ws://, wss://, http:// or https://")
        }
        return options
    }

    /// The origins Herald admits: this app's own, plus ``extraOrigins``.
    var allowedOrigins: [String] {
        var origins = ["http://\(host.contains(":") ? "[\(host)]" : host):\(port)"]
        if ["127.0.0.1", "localhost", "0.0.0.0", "::1", "::"].contains(host) {
            origins += ["http://127.0.0.1:\(port)", "http://localhost:\(port)", "http://[::1]:\(port)"]
        }
        var unique: [String] = []
        for origin in origins + extraOrigins where !unique.contains(origin) { unique.append(origin) }
        return unique
    }
}
