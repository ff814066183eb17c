import HeraldCore
import HeraldRedis
import NIOCore

/// Reads laravel-echo-server's configuration file (`laravel-echo-server.json`) and its
/// `LARAVEL_ECHO_SERVER_*` environment variables into a ``HeraldConfiguration``.
///
/// ```swift
/// let les = try EchoServerConfiguration.parse(bytes, environment: ProcessInfo.processInfo.environment)
/// for warning in les.warnings { logger.warning("\(warning)") }
/// let relay = Relay(configuration: les.configuration, logger: logger)
/// ```
///
/// Behaviour follows laravel-echo-server's `src/echo-server.ts` and `src/cli/cli.ts`:
/// defaults are merged shallowly (`Object.assign`), so a nested object that is present replaces
/// the whole default object (a `subscribers` without `http` turns the HTTP publish off, as in
/// laravel-echo-server; Herald says so in a warning). Every key Herald does not honour is named
/// in ``warnings``; nothing is ignored silently. A key with the wrong type is an error naming
/// its path (`databaseConfig.redis.port: expected a number`).
public struct EchoServerConfiguration: Sendable {
    /// The relay configuration the file describes.
    public var configuration: HeraldConfiguration
    /// `devMode` (or `LARAVEL_ECHO_SERVER_DEBUG`): laravel-echo-server's verbose logging; Herald
    /// maps it to log level `debug` unless a log level is given explicitly.
    public var devMode: Bool
    /// Keys Herald does not honour, and behaviour that differs from laravel-echo-server; log
    /// each at start-up.
    public var warnings: [String]

    /// The environment variables laravel-echo-server reads (they override the file).
    public static let environmentVariables = [
        "LARAVEL_ECHO_SERVER_AUTH_HOST", "LARAVEL_ECHO_SERVER_DEBUG", "LARAVEL_ECHO_SERVER_HOST",
        "LARAVEL_ECHO_SERVER_PORT", "LARAVEL_ECHO_SERVER_REDIS_HOST", "LARAVEL_ECHO_SERVER_REDIS_PORT",
        "LARAVEL_ECHO_SERVER_REDIS_PASSWORD", "LARAVEL_ECHO_SERVER_PROTO", "LARAVEL_ECHO_SERVER_SSL_CERT",
        "LARAVEL_ECHO_SERVER_SSL_KEY", "LARAVEL_ECHO_SERVER_SSL_CHAIN", "LARAVEL_ECHO_SERVER_SSL_PASS",
    ]

    /// Parses a laravel-echo-server configuration file.
    ///
    /// - Parameters:
    ///   - bytes: the file's contents (JSON).
    ///   - environment: the process environment; `LARAVEL_ECHO_SERVER_*` entries override the file.
    ///   - base: the configuration whose values stand where laravel-echo-server has no equivalent.
    /// - Throws: ``EchoServerConfigurationError`` naming the key path of the first bad value.
    public static func parse(
        _ bytes: some Collection<UInt8>,
        environment: [String: String] = [:],
        base: HeraldConfiguration = HeraldConfiguration()
    ) throws(EchoServerConfigurationError) -> EchoServerConfiguration {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        let root: JSONValue
        do {
            root = try JSONReader.parse(buffer)
        } catch {
            throw EchoServerConfigurationError(path: "", message: "not valid JSON (\(error))")
        }
        guard case .object(let members) = root else {
            throw EchoServerConfigurationError(path: "", message: "expected a JSON object at the top level")
        }
        var parser = Parser(base: base)
        try parser.read(members)
        try parser.applyEnvironment(environment)
        return try parser.finish()
    }

    /// Parses a laravel-echo-server configuration file given as text.
    public static func parse(
        _ text: String,
        environment: [String: String] = [:],
        base: HeraldConfiguration = HeraldConfiguration()
    ) throws(EchoServerConfigurationError) -> EchoServerConfiguration {
        try parse(Array(text.utf8), environment: environment, base: base)
    }
}

/// A laravel-echo-server configuration Herald cannot use, with the key path at fault.
public struct EchoServerConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key path (`databaseConfig.redis.port`), or empty for the file as a whole.
    public var path: String
    /// What is wrong with the value.
    public var message: String

    /// Creates an error for the value at key path `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `<path>: <message>`, or the message alone for the file as a whole.
    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

private struct Parser {
    var config: HeraldConfiguration
    var warnings: [String] = []
    var devMode = false

    // laravel-echo-server's options, with its defaults.
    var authHosts: [String] = ["http://localhost"]
    var authEndpoint = "/broadcasting/auth"
    var database = "redis"
    var redisHost = "127.0.0.1"
    var redisPort = 6379
    var redisPassword: String?
    var redisDB = 0
    var keyPrefix = ""
    var host: String?
    var port = 6001
    var proto = "http"
    var ssl: [(key: String, value: String)] = [
        ("sslCertPath", ""), ("sslKeyPath", ""), ("sslCertChainPath", ""), ("sslPassphrase", ""),
    ]
    var secureOptionsSet = false
    var httpSubscriber = true
    var redisSubscriber = true

    init(base: HeraldConfiguration) {
        self.config = base
    }

    typealias Error = EchoServerConfigurationError

    // MARK: file

    mutating func read(_ members: [JSONMember]) throws(Error) {
        for member in members {
            let key = member.key
            let value = member.value
            switch key {
            case "authHost":
                switch value {
                case .string(let s):
                    authHosts = [s]
                case .array(let items):
                    var hosts: [String] = []
                    for (i, item) in items.enumerated() {
                        guard case .string(let s) = item else { throw Error(path: "authHost[\(i)]", message: "expected a string") }
                        hosts.append(s)
                    }
                    guard !hosts.isEmpty else { throw Error(path: "authHost", message: "expected at least one host") }
                    authHosts = hosts
                default:
                    throw Error(path: "authHost", message: "expected a string or a list of strings")
                }
            case "authEndpoint":
                authEndpoint = try string(value, key)
            case "clients":
                try readClients(value)
            case "database":
                let db = try string(value, key)
                guard db == "redis" || db == "sqlite" else {
                    throw Error(path: key, message: "expected \"redis\" or \"sqlite\", got \"\(db)\"")
                }
                database = db
            case "databaseConfig":
                try readDatabaseConfig(value)
            case "devMode":
                devMode = try bool(value, key)
            case "host":
                if case .null = value { host = nil } else { host = try string(value, key) }
            case "port":
                port = try Self.port(value, path: key)
            case "protocol":
                proto = try string(value, key)
                guard proto == "http" || proto == "https" else {
                    throw Error(path: key, message: "expected \"http\" or \"https\", got \"\(proto)\"")
                }
            case "sslCertPath", "sslKeyPath", "sslCertChainPath", "sslPassphrase":
                let text: String
                if case .null = value { text = "" } else { text = try string(value, key) }
                setSSL(key, text)
            case "secureOptions":
                guard case .number = value else { throw Error(path: key, message: "expected a number") }
                secureOptionsSet = true
            case "socketio":
                guard case .object(let options) = value else { throw Error(path: key, message: "expected an object") }
                if !options.isEmpty {
                    warnings.append("socketio is ignored: Herald does not take socket.io server options (ignored keys: \(options.map { "socketio.\($0.key)" }.joined(separator: ", "))); see herald --help for --ping-interval, --ping-timeout, --max-payload, --socketio-path and --allowed-origins")
                }
            case "subscribers":
                guard case .object(let subs) = value else { throw Error(path: key, message: "expected an object") }
                // Object.assign is shallow: a missing member is undefined, i.e. off.
                httpSubscriber = false
                redisSubscriber = false
                for sub in subs {
                    switch sub.key {
                    case "http": httpSubscriber = try bool(sub.value, "subscribers.http")
                    case "redis": redisSubscriber = try bool(sub.value, "subscribers.redis")
                    default: warnings.append("subscribers.\(sub.key) is not a laravel-echo-server subscriber; ignored")
                    }
                }
                if !subs.contains(where: { $0.key == "http" }) {
                    warnings.append("subscribers.http is missing: laravel-echo-server treats that as false, so POST /apps/:appId/events is off")
                }
                if !subs.contains(where: { $0.key == "redis" }) {
                    warnings.append("subscribers.redis is missing: laravel-echo-server treats that as false, so Herald does not subscribe to Redis")
                }
            case "apiOriginAllow":
                try readCORS(value)
            case "headers":
                guard case .object(let headers) = value else { throw Error(path: key, message: "expected an object") }
                var list: [(name: String, value: String)] = []
                for header in headers {
                    let path = "headers.\(header.key)"
                    guard !header.key.isEmpty, header.key.utf8.allSatisfy(Self.isTokenByte) else {
                        throw Error(path: path, message: "not a valid HTTP header name")
                    }
                    let text: String
                    switch header.value {
                    case .string(let s): text = s
                    case .number(let n): text = n
                    case .bool(let b): text = b ? "true" : "false"
                    default: throw Error(path: path, message: "expected a string")
                    }
                    guard !text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) else {
                        throw Error(path: path, message: "header values may not contain line breaks")
                    }
                    list.append((header.key, text))
                }
                config.extraHeaders = list
            default:
                warnings.append("unknown key '\(key)' is not a laravel-echo-server option; ignored")
            }
        }
    }

    mutating func readClients(_ value: JSONValue) throws(Error) {
        guard case .array(let items) = value else { throw Error(path: "clients", message: "expected a list of {\"appId\", \"key\"}") }
        var clients: [APIClient] = []
        for (i, item) in items.enumerated() {
            let path = "clients[\(i)]"
            guard case .object(let fields) = item else { throw Error(path: path, message: "expected an object with appId and key") }
            var appID: String?
            var key: String?
            for field in fields {
                switch field.key {
                case "appId": appID = try string(field.value, "\(path).appId")
                case "key": key = try string(field.value, "\(path).key")
                default: warnings.append("\(path).\(field.key) is not a client field; ignored")
                }
            }
            guard let appID, !appID.isEmpty else { throw Error(path: "\(path).appId", message: "missing (expected a non-empty string)") }
            guard let key, !key.isEmpty else { throw Error(path: "\(path).key", message: "missing (expected a non-empty string)") }
            clients.append(APIClient(appID: appID, key: key))
        }
        config.apiClients = clients
    }

    mutating func readDatabaseConfig(_ value: JSONValue) throws(Error) {
        guard case .object(let members) = value else { throw Error(path: "databaseConfig", message: "expected an object") }
        for member in members {
            let path = "databaseConfig.\(member.key)"
            switch member.key {
            case "redis":
                guard case .object(let fields) = member.value else { throw Error(path: path, message: "expected an object") }
                try readRedis(fields)
            case "sqlite":
                // Only used with "database": "sqlite" (warned about in finish()).
                guard case .object = member.value else { throw Error(path: path, message: "expected an object") }
            case "publishPresence":
                if try bool(member.value, path) {
                    warnings.append("databaseConfig.publishPresence is not supported: Herald keeps presence in memory and does not PUBLISH PresenceChannelUpdated")
                }
            default:
                warnings.append("\(path) is not a laravel-echo-server database option; ignored")
            }
        }
    }

    mutating func readRedis(_ fields: [JSONMember]) throws(Error) {
        for field in fields {
            let path = "databaseConfig.redis.\(field.key)"
            switch field.key {
            case "host":
                redisHost = try string(field.value, path)
            case "port":
                redisPort = try Self.port(field.value, path: path, stripSuffix: false)
            case "password":
                if case .null = field.value { redisPassword = nil } else {
                    let password = try string(field.value, path)
                    redisPassword = password.isEmpty ? nil : password
                }
            case "db":
                let db = try integer(field.value, path)
                guard db >= 0 else { throw Error(path: path, message: "expected a non-negative number") }
                redisDB = db
            case "keyPrefix":
                keyPrefix = try string(field.value, path)
            case "family", "connectTimeout", "enableReadyCheck", "lazyConnect", "maxRetriesPerRequest", "retryStrategy", "reconnectOnError", "connectionName":
                warnings.append("\(path) is an ioredis option Herald does not use; ignored (Herald reconnects with its own backoff)")
            default:
                warnings.append("\(path) is not supported by Herald (supported: host, port, password, db, keyPrefix); ignored")
            }
        }
    }

    mutating func readCORS(_ value: JSONValue) throws(Error) {
        guard case .object(let fields) = value else { throw Error(path: "apiOriginAllow", message: "expected an object") }
        var allow = false
        var origin = ""
        var methods = ""
        var headers = ""
        for field in fields {
            let path = "apiOriginAllow.\(field.key)"
            switch field.key {
            case "allowCors": allow = try bool(field.value, path)
            case "allowOrigin": origin = try string(field.value, path)
            case "allowMethods": methods = try string(field.value, path)
            case "allowHeaders": headers = try string(field.value, path)
            default: warnings.append("\(path) is not a laravel-echo-server CORS option; ignored")
            }
        }
        config.apiCORS = allow ? APICORS(allowOrigin: origin, allowMethods: methods, allowHeaders: headers) : nil
    }

    mutating func setSSL(_ key: String, _ value: String) {
        if let index = ssl.firstIndex(where: { $0.key == key }) { ssl[index].value = value }
    }

    // MARK: environment

    mutating func applyEnvironment(_ env: [String: String]) throws(Error) {
        func value(_ name: String) -> String? { env["LARAVEL_ECHO_SERVER_" + name] }
        if let v = value("AUTH_HOST") { authHosts = [v] }
        if let v = value("DEBUG") {
            switch v.lowercased() {
            case "true", "1", "yes", "on": devMode = true
            case "false", "0", "no", "off", "": devMode = false
            default: throw Error(path: "LARAVEL_ECHO_SERVER_DEBUG", message: "expected true or false, got '\(v)'")
            }
        }
        if let v = value("HOST") { host = v.isEmpty ? nil : v }
        if let v = value("PORT") { port = try Self.port(.string(v), path: "LARAVEL_ECHO_SERVER_PORT") }
        if let v = value("REDIS_HOST") { redisHost = v }
        if let v = value("REDIS_PORT") { redisPort = try Self.port(.string(v), path: "LARAVEL_ECHO_SERVER_REDIS_PORT", stripSuffix: false) }
        if let v = value("REDIS_PASSWORD") { redisPassword = v.isEmpty ? nil : v }
        if let v = value("PROTO") {
            guard v == "http" || v == "https" else {
                throw Error(path: "LARAVEL_ECHO_SERVER_PROTO", message: "expected http or https, got '\(v)'")
            }
            proto = v
        }
        if let v = value("SSL_CERT") { setSSL("sslCertPath", v) }
        if let v = value("SSL_KEY") { setSSL("sslKeyPath", v) }
        if let v = value("SSL_CHAIN") { setSSL("sslCertChainPath", v) }
        if let v = value("SSL_PASS") { setSSL("sslPassphrase", v) }
    }

    // MARK: result

    mutating func finish() throws(Error) -> EchoServerConfiguration {
        config.authorization = AuthorizationConfiguration(
            hosts: authHosts,
            endpoint: authEndpoint,
            timeout: config.authorization?.timeout ?? .seconds(10),
            verifyCertificates: config.authorization?.verifyCertificates ?? true
        )
        config.host = host ?? "0.0.0.0"
        config.port = port
        config.keyPrefix = keyPrefix
        config.apiPublishEnabled = httpSubscriber
        if redisSubscriber {
            config.redis = RedisConfiguration(host: redisHost, port: redisPort, password: redisPassword, database: redisDB)
        } else {
            config.redis = nil
            warnings.append("subscribers.redis is false: Herald does not subscribe to Redis (Laravel's redis broadcasts will not arrive)")
        }
        if database == "sqlite" {
            warnings.append("database \"sqlite\" is not supported: Herald keeps presence members in memory (databaseConfig.sqlite is ignored)")
        }
        let setSSL = ssl.filter { !$0.value.isEmpty }.map(\.key)
        if proto == "https" {
            var keys = ["protocol"] + ssl.map(\.key)
            if secureOptionsSet { keys.append("secureOptions") }
            warnings.append("protocol \"https\" is not supported: Herald has no TLS yet and serves plain HTTP and WebSocket on port \(port); terminate TLS in a reverse proxy (nginx, Caddy, a load balancer). Ignored keys: \(keys.joined(separator: ", "))")
        } else if !setSSL.isEmpty {
            warnings.append("\(setSSL.joined(separator: ", ")) ignored: protocol is \"http\" and Herald has no TLS yet")
        }
        if authHosts.contains(where: { $0.hasPrefix("https://") }) && config.authorization?.verifyCertificates == true {
            warnings.append("Herald verifies the TLS certificate of https authHost (laravel-echo-server did not); use --auth-insecure for self-signed certificates")
        }
        return EchoServerConfiguration(configuration: config, devMode: devMode, warnings: warnings)
    }

    // MARK: values

    func string(_ value: JSONValue, _ path: String) throws(Error) -> String {
        guard case .string(let s) = value else { throw Error(path: path, message: "expected a string") }
        return s
    }

    func bool(_ value: JSONValue, _ path: String) throws(Error) -> Bool {
        guard case .bool(let b) = value else { throw Error(path: path, message: "expected true or false") }
        return b
    }

    func integer(_ value: JSONValue, _ path: String) throws(Error) -> Int {
        switch value {
        case .number(let n):
            guard let i = Int(n) else { throw Error(path: path, message: "expected a whole number, got \(n)") }
            return i
        case .string(let s):
            guard let i = Int(s) else { throw Error(path: path, message: "expected a number, got \"\(s)\"") }
            return i
        default:
            throw Error(path: path, message: "expected a number")
        }
    }

    /// A port given as a number or a string. laravel-echo-server strips trailing non-digits
    /// from its own `port` (`"6001/"` → 6001).
    static func port(_ value: JSONValue, path: String, stripSuffix: Bool = true) throws(Error) -> Int {
        var text: String
        switch value {
        case .number(let n): text = n
        case .string(let s): text = s
        default: throw Error(path: path, message: "expected a number")
        }
        if stripSuffix {
            while let last = text.last, !last.isASCII || !last.isNumber { text.removeLast() }
        }
        guard let port = Int(text), (0...65535).contains(port) else {
            throw Error(path: path, message: "expected a port number (0-65535), got \(value.serialized)")
        }
        return port
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
