/// Where and how to reach Redis.
///
/// Built from a URL of the form `redis://[[user]:password@]host[:port][/db]`, the same form
/// Laravel's `REDIS_URL` and most Redis clients accept, or — to find the master through Redis
/// Sentinel — `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/master[/db]`
/// (see ``init(url:)`` and ``sentinel``).
public struct RedisConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address. With ``sentinel`` set, the master Sentinel named (on a
    /// connection's ``RedisConnection/configuration``) and otherwise unused.
    public var host: String
    /// TCP port, 6379 by default. With ``sentinel`` set, like ``host``.
    public var port: Int
    /// ACL user name for `AUTH user password`; `nil` uses the legacy `AUTH password`. With
    /// ``sentinel`` set, the data nodes' (master's) user; the sentinels' is the sentinel's own.
    public var username: String?
    /// Password for `AUTH`; `nil` sends no `AUTH`. With ``sentinel`` set, the data nodes'
    /// (master's) password.
    public var password: String?
    /// Database index for `SELECT` (ignored by pub/sub, which is global, but honoured for commands).
    public var database: Int
    /// How long a connection attempt may take: the TCP connect, and then each of the
    /// `AUTH`/`SELECT` (and, through Sentinel, `ROLE`) replies.
    public var connectTimeout: Duration
    /// Reconnection backoff: first delay.
    public var reconnectBaseDelay: Duration
    /// Reconnection backoff: largest delay.
    public var reconnectMaxDelay: Duration
    /// When set, the master is not at ``host``:``port`` but wherever Redis Sentinel says: it is
    /// looked up before every connection (and every reconnection), and a ``RedisSubscriber``
    /// follows failovers. `nil` (the default) connects to ``host``:``port`` directly.
    public var sentinel: RedisSentinelConfiguration?

    /// Creates a configuration from its parts; ``init(url:)`` parses a `redis://` URL instead.
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
        self.sentinel = nil
    }

    /// Creates a configuration that finds the master through Redis Sentinel.
    ///
    /// - Parameters:
    ///   - sentinels: the sentinels to ask, in this order (the first that answers is asked
    ///     first next time).
    ///   - masterName: the name the sentinels monitor the master under (`sentinel monitor
    ///     <name> …`).
    ///   - sentinelUsername: ACL user for `AUTH` on the sentinels.
    ///   - sentinelPassword: the sentinels' password (their `requirepass`); `nil` sends no `AUTH`.
    ///   - sentinelTimeout: how long each sentinel may take to connect and to answer.
    ///   - username: ACL user for `AUTH` on the master.
    ///   - password: the master's password.
    ///   - database: database index for `SELECT` on the master.
    public init(
        sentinels: [RedisAddress],
        masterName: String,
        sentinelUsername: String? = nil,
        sentinelPassword: String? = nil,
        sentinelTimeout: Duration = .seconds(1),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        reconnectBaseDelay: Duration = .milliseconds(100),
        reconnectMaxDelay: Duration = .seconds(5)
    ) {
        self.init(
            username: username, password: password, database: database, connectTimeout: connectTimeout,
            reconnectBaseDelay: reconnectBaseDelay, reconnectMaxDelay: reconnectMaxDelay
        )
        self.sentinel = RedisSentinelConfiguration(
            sentinels: sentinels, masterName: masterName, username: sentinelUsername,
            password: sentinelPassword, timeout: sentinelTimeout
        )
    }

    /// Parses a Redis URL:
    ///
    /// - `redis://[[user]:password@]host[:port][/db]` — one server, port 6379 by default.
    /// - `redis+sentinel://[[user]:password@]host1[:port1][,host2[:port2]…]/master[/db][?sentinel_password=…&sentinel_username=…]`
    ///   — the master named `master` as Redis Sentinel reports it, asking the listed sentinels
    ///   (port 26379 by default) in turn. The user and password before `@` are the master's; the
    ///   sentinels' own (`requirepass` in `sentinel.conf`) go in the query. `redis-sentinel://`
    ///   is accepted too. Reserved characters in passwords and names are percent-encoded.
    ///
    /// - Throws: ``RedisError`` with kind `.invalidConfiguration` and a message naming the bad part.
    public init(url: String) throws(RedisError) {
        self.init()
        var rest = Substring(url)
        guard let schemeEnd = rest.firstRange(of: "://") else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))' lacks a scheme (expected redis://host:port or redis+sentinel://host:26379/master)")
        }
        let scheme = rest[..<schemeEnd.lowerBound].lowercased()
        rest = rest[schemeEnd.upperBound...]
        if scheme == "redis+sentinel" || scheme == "redis-sentinel" {
            try parseSentinel(rest, url: url)
            return
        }
        guard scheme == "redis" else {
            throw RedisError(.invalidConfiguration, "Redis URL scheme '\(scheme)' is not supported (use redis:// or redis+sentinel://; TLS is not supported yet)")
        }
        if let at = rest.lastIndex(of: "@") {
            parseCredentials(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        var hostPort = rest
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            let db = rest[rest.index(after: slash)...].prefix { $0 != "?" }
            try parseDatabase(db, url: url)
        }
        let (host, port) = try Self.hostAndPort(hostPort, defaultPort: 6379, url: url)
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    /// `[user]:password` or a bare `password` before the `@`.
    private mutating func parseCredentials(_ credentials: Substring) {
        if let colon = credentials.firstIndex(of: ":") {
            let user = String(credentials[..<colon])
            self.username = user.isEmpty ? nil : Self.percentDecode(user)
            self.password = Self.percentDecode(String(credentials[credentials.index(after: colon)...]))
        } else if !credentials.isEmpty {
            // `redis://password@host` is common enough to accept as a password.
            self.password = Self.percentDecode(String(credentials))
        }
    }

    private mutating func parseDatabase(_ db: Substring, url: String) throws(RedisError) {
        guard !db.isEmpty else { return }
        guard let index = Int(db), index >= 0 else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))': database '\(db)' is not a non-negative number")
        }
        self.database = index
    }

    /// The part after `redis+sentinel://`:
    /// `[[user]:password@]host1[:port1][,host2[:port2]…]/master[/db][?sentinel_password=…&sentinel_username=…]`.
    private mutating func parseSentinel(_ text: Substring, url: String) throws(RedisError) {
        var rest = text
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if let at = rest.lastIndex(of: "@") {
            parseCredentials(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))' names no master (expected redis+sentinel://host:26379[,host:26379…]/<master name>[/db])")
        }
        var sentinels: [RedisAddress] = []
        for entry in rest[..<slash].split(separator: ",", omittingEmptySubsequences: false) {
            let (host, port) = try Self.hostAndPort(entry, defaultPort: 26379, url: url)
            guard !host.isEmpty else {
                throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))': a sentinel address is empty (expected host[:port] separated by commas)")
            }
            sentinels.append(RedisAddress(host: host, port: port))
        }
        var path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
        if path.count > 1, path.last?.isEmpty == true { path.removeLast() } // `/master/` or `/master/db/`
        let masterName = Self.percentDecode(String(path.first ?? ""))
        guard !masterName.isEmpty else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))' names no master (expected redis+sentinel://host:26379[,host:26379…]/<master name>[/db])")
        }
        guard path.count <= 2 else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))': expected /<master name>[/db] after the sentinels, got more path segments")
        }
        if path.count == 2 { try parseDatabase(path[1], url: url) }
        var sentinel = RedisSentinelConfiguration(sentinels: sentinels, masterName: masterName)
        for parameter in query.split(separator: "&") {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            let value = Self.percentDecode(parts.count > 1 ? String(parts[1]) : "")
            switch key {
            case "sentinel_password": sentinel.password = value
            case "sentinel_username": sentinel.username = value.isEmpty ? nil : value
            default:
                throw RedisError(.invalidConfiguration, "Redis URL '\(Self.redacted(url))': unknown parameter '\(key)' (known: sentinel_password, sentinel_username)")
            }
        }
        self.sentinel = sentinel
    }

    /// `host[:port]` or `[ipv6][:port]`; the host may come back empty.
    private static func hostAndPort(_ text: Substring, defaultPort: Int, url: String) throws(RedisError) -> (String, Int) {
        if text.hasPrefix("[") {
            // IPv6 literal: [::1]:6379
            guard let close = text.firstIndex(of: "]") else {
                throw RedisError(.invalidConfiguration, "Redis URL '\(redacted(url))': unterminated IPv6 address")
            }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            return (host, after.hasPrefix(":") ? try port(after.dropFirst(), url: url) : defaultPort)
        }
        if let colon = text.lastIndex(of: ":") {
            return (String(text[..<colon]), try port(text[text.index(after: colon)...], url: url))
        }
        return (String(text), defaultPort)
    }

    private static func port(_ text: Substring, url: String) throws(RedisError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw RedisError(.invalidConfiguration, "Redis URL '\(redacted(url))': port '\(text)' is not in 1-65535")
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

    /// `url` with everything that may be a secret masked, for error messages: the password
    /// before `@` and the value of `sentinel_password=`.
    static func redacted(_ url: String) -> String {
        var text = Substring(url)
        var result = ""
        if let schemeEnd = text.firstRange(of: "://") {
            result += text[..<schemeEnd.upperBound]
            text = text[schemeEnd.upperBound...]
        }
        // The credentials end at the last `@` before the query.
        let beforeQuery = text.prefix { $0 != "?" }
        if let at = beforeQuery.lastIndex(of: "@") {
            let credentials = text[..<at]
            if let colon = credentials.firstIndex(of: ":") {
                result += credentials[...colon] + "***"
            } else {
                result += "***"
            }
            text = text[at...]
        }
        guard let mark = text.firstIndex(of: "?") else { return result + text }
        result += text[...mark]
        let parameters = text[text.index(after: mark)...].split(separator: "&", omittingEmptySubsequences: false).map { parameter -> String in
            parameter.hasPrefix("sentinel_password=") ? "sentinel_password=***" : String(parameter)
        }
        return result + parameters.joined(separator: "&")
    }

    /// The configuration as a URL with every password masked, safe to log:
    /// `redis://[user:***@]host:port/db`, or with Sentinel
    /// `redis+sentinel://[user:***@]host1:port1,host2:port2/master/db[?sentinel_password=***]`.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        guard let sentinel else { return "redis://\(auth)\(host):\(port)/\(database)" }
        var query: [String] = []
        if let user = sentinel.username { query.append("sentinel_username=\(user)") }
        if sentinel.password != nil { query.append("sentinel_password=***") }
        return "redis+sentinel://\(auth)\(sentinel.addressList)/\(sentinel.masterName)/\(database)"
            + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// Where Redis is, without any credentials, for status pages: `redis://host:port/db`, or
    /// `redis+sentinel://host1:port1,host2:port2/master/db`.
    public var address: String {
        guard let sentinel else { return "redis://\(RedisAddress(host: host, port: port))/\(database)" }
        return "redis+sentinel://\(sentinel.addressList)/\(sentinel.masterName)/\(database)"
    }
}

/// A host and port: a sentinel's, or the master's a sentinel named.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, or `[host]:port` for an IPv6 literal.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// How to find the master through Redis Sentinel (see ``RedisConfiguration/sentinel``).
///
/// Before each connection the sentinels are asked in turn `SENTINEL get-master-addr-by-name
/// <masterName>`; the first to answer names the master (and is asked first next time). The
/// master is then checked with `ROLE`, so a stale answer in the middle of a failover is retried
/// rather than used.
public struct RedisSentinelConfiguration: Sendable, Hashable {
    /// The sentinels, in the order they are asked.
    public var sentinels: [RedisAddress]
    /// The name the sentinels monitor the master under.
    public var masterName: String
    /// ACL user for `AUTH` on the sentinels; `nil` uses the legacy `AUTH password`.
    public var username: String?
    /// The sentinels' password (`requirepass` in `sentinel.conf`); `nil` sends no `AUTH`.
    public var password: String?
    /// How long each sentinel may take to accept the connection and to answer each command.
    public var timeout: Duration

    /// Creates a Sentinel configuration.
    public init(
        sentinels: [RedisAddress],
        masterName: String,
        username: String? = nil,
        password: String? = nil,
        timeout: Duration = .seconds(1)
    ) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.username = username
        self.password = password
        self.timeout = timeout
    }

    /// `host1:port1,host2:port2`.
    var addressList: String { sentinels.map(\.description).joined(separator: ",") }
}
