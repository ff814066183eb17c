/// Where and how to reach Redis.
///
/// Built from a URL of the form `redis://[[user]:password@]host[:port][/db]`, the same form
/// Laravel's `REDIS_URL` and most Redis clients accept.
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// TCP port, 6379 by default.
    public var port: Int
    /// ACL user name for `AUTH user password`; `nil` uses the legacy `AUTH password`.
    public var username: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`.
    public var password: String?
    /// Database index for `SELECT` (ignored by pub/sub, which is global, but honoured for commands).
    public var database: Int
    /// How long a connection attempt may take.
    public var connectTimeout: Duration
    /// Reconnection backoff: first delay.
    public var reconnectBaseDelay: Duration
    /// Reconnection backoff: largest delay.
    public var reconnectMaxDelay: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        reconnectBaseDelay: Duration = .milliseconds(100),
        reconnectMaxDelay: Duration = .seconds(5)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.reconnectBaseDelay = reconnectBaseDelay
        self.reconnectMaxDelay = reconnectMaxDelay
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    ///
    /// - Throws: ``RedisError`` with kind `.invalidConfiguration` and a message naming the bad part.
    public init(url: String) throws(RedisError) {
        self.init()
        var rest = Substring(url)
        guard let schemeEnd = rest.firstRange(of: "://") else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(url)' lacks a scheme (expected redis://host:port)")
        }
        let scheme = rest[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "redis" else {
            throw RedisError(.invalidConfiguration, "Redis URL scheme '\(scheme)' is not supported (use redis://; TLS is not supported yet)")
        }
        rest = rest[schemeEnd.upperBound...]
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = String(credentials[..<colon])
                self.username = user.isEmpty ? nil : Self.percentDecode(user)
                self.password = Self.percentDecode(String(credentials[credentials.index(after: colon)...]))
            } else if !credentials.isEmpty {
                // `redis://password@host` is common enough to accept as a password.
                self.password = Self.percentDecode(String(credentials))
            }
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let db = rest[rest.index(after: slash)...].prefix { $0 != "?" }
            if !db.isEmpty {
                guard let index = Int(db), index >= 0 else {
                    throw RedisError(.invalidConfiguration, "Redis URL '\(url)': database '\(db)' is not a non-negative number")
                }
                self.database = index
            }
        }
        if hostPort.hasPrefix("[") {
            // IPv6 literal: [::1]:6379
            guard let close = hostPort.firstIndex(of: "]") else {
                throw RedisError(.invalidConfiguration, "Redis URL '\(url)': unterminated IPv6 address")
            }
            self.host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                self.port = try Self.port(after.dropFirst(), url: url)
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            self.host = String(hostPort[..<colon])
            self.port = try Self.port(hostPort[hostPort.index(after: colon)...], url: url)
        } else {
            self.host = String(hostPort)
        }
        if self.host.isEmpty { self.host = "127.0.0.1" }
    }

    private static func port(_ text: Substring, url: String) throws(RedisError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(url)': port '\(text)' is not in 1-65535")
        }
        return port
    }

    private static func percentDecode(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let h = iterator.next(), let l = iterator.next(),
               let value = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The URL with the password masked, safe to log.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        return "redis://\(auth)\(host):\(port)/\(database)"
    }
}
