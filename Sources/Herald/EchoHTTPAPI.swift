import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// laravel-echo-server's HTTP API (`src/api/http-api.ts`, `src/subscribers/http-subscriber.ts`),
/// served on the relay's port under `/apps/{appId}/`:
///
/// | request | answer |
/// |---|---|
/// | `GET /apps/:appId/status` | `{"subscription_count":n,"uptime":s,"memory_usage":{…}}` |
/// | `GET /apps/:appId/channels[?filter_by_prefix=p]` | `{"channels":{"c":{"subscription_count":n,"occupied":true}}}` |
/// | `GET /apps/:appId/channels/:channel` | `{"subscription_count":n,"occupied":b[,"user_count":n]}` |
/// | `GET /apps/:appId/channels/:channel/users` | `{"users":[{"id":…,"user_info":…}]}`; 400 unless presence |
/// | `POST /apps/:appId/events` | `{channel\|channels, name, data, socket_id?}` → `{"message":"ok"}` |
///
/// The key comes from `Authorization: Bearer <key>` (the header wins when present, as in
/// laravel-echo-server) or `?auth_key=`, and must be the key of the client with that `appId`;
/// anything else is 403 `{"error":"Unauthorized"}`. Off while ``HeraldConfiguration/apiClients``
/// is empty. Bodies are parsed with ``JSONReader``; event `data` is relayed verbatim, except that
/// a JSON *string* holding JSON is decoded first, as laravel-echo-server's `JSON.parse` did.
final class EchoHTTPAPI: Sendable {
    private let clients: [String: String]
    private let registry: ChannelRegistry
    private let router: Router
    private let logger: Logger
    private let publishEnabled: Bool
    private let cors: APICORS?
    private let extraHeaders: [(name: String, value: String)]
    private let started = ContinuousClock.now

    /// Largest number of channels one `POST /events` may name (a hostile request must not fan
    /// out without bound).
    static let maxChannelsPerEvent = 100
    /// Longest channel name accepted (the Socket.IO subscribe limit).
    static let maxChannelNameLength = 200

    init(configuration: HeraldConfiguration, registry: ChannelRegistry, router: Router, logger: Logger) {
        var clients: [String: String] = [:]
        for client in configuration.apiClients where clients[client.appID] == nil {
            clients[client.appID] = client.key
        }
        self.clients = clients
        self.registry = registry
        self.router = router
        self.logger = logger
        self.publishEnabled = configuration.apiPublishEnabled
        self.cors = configuration.apiCORS
        self.extraHeaders = configuration.extraHeaders
    }

    /// Whether `path` belongs to the API (never while no API client is configured).
    func handles(_ path: Substring) -> Bool {
        !clients.isEmpty && path.hasPrefix("/apps/")
    }

    /// Headers every API response carries: laravel-echo-server's `headers` and, with
    /// `apiOriginAllow.allowCors`, its CORS headers.
    var responseHeaders: HTTPHeaders {
        var headers = HTTPHeaders()
        if let cors {
            headers.add(name: "Access-Control-Allow-Origin", value: cors.allowOrigin)
            headers.add(name: "Access-Control-Allow-Methods", value: cors.allowMethods)
            headers.add(name: "Access-Control-Allow-Headers", value: cors.allowHeaders)
        }
        for (name, value) in extraHeaders { headers.replaceOrAdd(name: name, value: value) }
        return headers
    }

    /// Answers one complete request under `/apps/`.
    func handle(head: HTTPRequestHead, body: ByteBuffer, channel: any Channel, requestID: String) {
        var headers = responseHeaders
        headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        let responder = PollResponder(channel: channel, headers: headers, keepAlive: head.isKeepAlive)
        var logger = self.logger
        logger[metadataKey: "herald.request"] = "\(requestID)"
        @Sendable func respond(_ status: HTTPResponseStatus, _ json: ByteBuffer) {
            if status == .noContent {
                responder.respond(status: status, contentType: "text/plain", body: ByteBuffer())
            } else {
                responder.respond(status: status, contentType: "application/json; charset=utf-8", body: json)
            }
        }
        let (status, json) = answer(head: head, body: body, logger: logger)
        guard status == Self.askCluster else {
            respond(status, json)
            return
        }
        // A channel query in a cluster: the numbers come from Redis.
        let requestLogger = logger
        Task { [self] in
            do {
                let (status, json) = try await clusterAnswer(head: head)
                respond(status, json)
            } catch {
                requestLogger.warning("channel query failed: the cluster's channel state is unavailable", metadata: ["error": "\(error)"])
                let (status, json) = Self.error(.serviceUnavailable, "The cluster's channel state is unavailable")
                respond(status, json)
            }
        }
    }

    /// What ``answer(head:body:logger:)`` returns for an authenticated channel query when the
    /// cluster is on: ``clusterAnswer(head:)`` answers it.
    private static let askCluster = HTTPResponseStatus.custom(code: 599, reasonPhrase: "ask the cluster")

    /// A channel query (`channels`, `channels/<name>`, `channels/<name>/users`) answered with the
    /// whole cluster's numbers. The request was authenticated by ``answer(head:body:logger:)``.
    private func clusterAnswer(head: HTTPRequestHead) async throws -> (HTTPResponseStatus, ByteBuffer) {
        let segments = EngineIOServer.path(head.uri).split(separator: "/").map { Self.percentDecode($0) }
        let rest = Array(segments.dropFirst(2))
        switch rest.count {
        case 1:
            let prefix = EngineIOServer.query(head.uri)["filter_by_prefix"] ?? ""
            return (.ok, channels(prefix: prefix, counts: try await registry.queryOccupiedChannels()))
        case 2:
            let name = rest[1]
            let count = try await registry.querySubscriberCount(name)
            let users = ChannelKind(name) == .presence ? try await registry.queryPresenceMembers(name).count : nil
            return (.ok, channelInfo(count: count, userCount: users))
        default:
            return users(rest[1], members: try await registry.queryPresenceMembers(rest[1]))
        }
    }

    // MARK: routing

    func answer(head: HTTPRequestHead, body: ByteBuffer, logger: Logger) -> (HTTPResponseStatus, ByteBuffer) {
        let path = EngineIOServer.path(head.uri)
        var segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { Self.percentDecode($0) }
        if segments.last == "" { segments.removeLast() }  // Express accepts one trailing slash
        guard segments.count >= 3, segments[0] == "apps", !segments[1].isEmpty else { return Self.notFound }
        let appID = segments[1]
        let rest = Array(segments.dropFirst(2))

        if head.method == .OPTIONS {
            // CORS preflight: browsers send no credentials with it.
            return (.noContent, ByteBuffer())
        }
        guard authenticate(head: head, appID: appID) else {
            logger.info("HTTP API request refused: bad key", metadata: ["herald.app_id": "\(appID)", "herald.uri": "\(path)"])
            return Self.error(.forbidden, "Unauthorized")
        }
        switch (head.method, rest.count) {
        case (.GET, 1) where rest[0] == "status":
            return (.ok, status())
        case (.GET, 1) where rest[0] == "channels":
            if registry.clusterPresence != nil { return (Self.askCluster, ByteBuffer()) }
            let prefix = EngineIOServer.query(head.uri)["filter_by_prefix"] ?? ""
            let counts = Dictionary(registry.channelNames.map { ($0, registry.subscriberCount($0)) }, uniquingKeysWith: { a, _ in a })
            return (.ok, channels(prefix: prefix, counts: counts))
        case (.GET, 2) where rest[0] == "channels":
            if registry.clusterPresence != nil { return (Self.askCluster, ByteBuffer()) }
            let name = rest[1]
            return (.ok, channelInfo(count: registry.subscriberCount(name), userCount: ChannelKind(name) == .presence ? registry.presenceMembers(name).count : nil))
        case (.GET, 3) where rest[0] == "channels" && rest[2] == "users":
            if registry.clusterPresence != nil && ChannelKind(rest[1]) == .presence { return (Self.askCluster, ByteBuffer()) }
            return users(rest[1], members: registry.presenceMembers(rest[1]))
        case (.POST, 1) where rest[0] == "events" && publishEnabled:
            return publish(body: body, appID: appID)
        default:
            return Self.notFound
        }
    }

    private func authenticate(head: HTTPRequestHead, appID: String) -> Bool {
        let given: String?
        if let header = head.headers.first(name: "Authorization") {
            given = header.hasPrefix("Bearer ") ? String(header.dropFirst(7)) : header
        } else {
            given = EngineIOServer.query(head.uri)["auth_key"]
        }
        guard let given, !given.isEmpty, let key = clients[appID] else { return false }
        return PusherSignature.constantTimeEquals(given.utf8, key.utf8)
    }

    // MARK: endpoints

    private func status() -> ByteBuffer {
        let uptime = ContinuousClock.now - started
        let seconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
        var out = ByteBuffer()
        out.writeString("{\"subscription_count\":\(registry.sessionCount),\"uptime\":\(seconds),\"memory_usage\":")
        Self.memoryUsage().write(into: &out)
        out.writeString("}")
        return out
    }

    private func channels(prefix: String, counts: [String: Int]) -> ByteBuffer {
        var members: [JSONMember] = []
        for name in counts.keys.sorted() where prefix.isEmpty || name.hasPrefix(prefix) {
            guard let count = counts[name], count > 0 else { continue }
            members.append(JSONMember(key: name, value: .object([
                JSONMember(key: "subscription_count", value: .number(String(count))),
                JSONMember(key: "occupied", value: .bool(true)),
            ])))
        }
        return Self.json(.object([JSONMember(key: "channels", value: .object(members))]))
    }

    /// `user_count` only for presence channels (`userCount` non-nil).
    private func channelInfo(count: Int, userCount: Int?) -> ByteBuffer {
        var members = [
            JSONMember(key: "subscription_count", value: .number(String(count))),
            JSONMember(key: "occupied", value: .bool(count > 0)),
        ]
        if let userCount {
            members.append(JSONMember(key: "user_count", value: .number(String(userCount))))
        }
        return Self.json(.object(members))
    }

    private func users(_ name: String, members: [PresenceMember]) -> (HTTPResponseStatus, ByteBuffer) {
        guard ChannelKind(name) == .presence else {
            return Self.error(.badRequest, "User list is only possible for Presence Channels")
        }
        let users = members.map { member in
            JSONValue.object([JSONMember(key: "id", value: member.userID), JSONMember(key: "user_info", value: member.userInfo)])
        }
        return (.ok, Self.json(.object([JSONMember(key: "users", value: .array(users))])))
    }

    private func publish(body: ByteBuffer, appID: String) -> (HTTPResponseStatus, ByteBuffer) {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(body)
        } catch {
            return Self.error(.badRequest, "Request body must be a JSON object (\(error))")
        }
        // Duplicate keys: the last one wins, as with JSON.parse.
        var fields: [String: Range<Int>] = [:]
        for member in members { fields[member.key] = member.range }
        func value(_ key: String) -> JSONValue? {
            guard let range = fields[key], let slice = body.getSlice(at: body.readerIndex + range.lowerBound, length: range.count) else { return nil }
            return try? JSONReader.parse(slice)
        }
        let missing = Self.error(.badRequest, "Event must include channel, event name and data")

        // `(body.channels || body.channel) && body.name && body.data`, with JavaScript truthiness.
        var channels: [String]
        if let list = value("channels"), Self.isTruthy(list) {
            guard case .array(let items) = list else { return Self.error(.badRequest, "channels must be a list of channel names") }
            channels = []
            for item in items {
                guard case .string(let name) = item, !name.isEmpty, name.utf8.count <= Self.maxChannelNameLength else {
                    return Self.error(.badRequest, "channels must be a list of channel names (1-\(Self.maxChannelNameLength) bytes)")
                }
                channels.append(name)
            }
        } else if let single = value("channel"), Self.isTruthy(single) {
            guard case .string(let name) = single, name.utf8.count <= Self.maxChannelNameLength else {
                return Self.error(.badRequest, "channel must be a channel name (1-\(Self.maxChannelNameLength) bytes)")
            }
            channels = [name]
        } else {
            return missing
        }
        guard channels.count <= Self.maxChannelsPerEvent else {
            return Self.error(.badRequest, "at most \(Self.maxChannelsPerEvent) channels per event")
        }
        guard let nameValue = value("name"), Self.isTruthy(nameValue) else { return missing }
        guard case .string(let name) = nameValue else { return Self.error(.badRequest, "name must be a string") }
        guard let dataRange = fields["data"],
              var data = body.getSlice(at: body.readerIndex + dataRange.lowerBound, length: dataRange.count),
              let dataValue = try? JSONReader.parse(data), Self.isTruthy(dataValue) else { return missing }
        // laravel-echo-server: `try { data = JSON.parse(data) } catch {}`: a string holding
        // JSON is sent decoded; any other string is sent as the string.
        if case .string(let text) = dataValue {
            let decoded = ByteBuffer(string: text)
            if (try? JSONReader.validate(decoded)) != nil { data = decoded }
        }
        var socketID: String?
        switch value("socket_id") {
        case .string(let s)? where !s.isEmpty: socketID = s
        case .number(let n)?: socketID = n
        default: socketID = nil
        }

        var queued = 0
        for channel in channels {
            if router.publish(Event(channel: channel, name: name, data: data, excludedSocketID: socketID, source: .http)) {
                queued += 1
            }
        }
        logger.debug("HTTP API event", metadata: [
            "herald.app_id": "\(appID)",
            "herald.event": "\(name)",
            "herald.channels": "\(channels.joined(separator: ","))",
            "herald.socket": "\(socketID ?? "")",
        ])
        guard queued == channels.count else {
            return Self.error(.serviceUnavailable, "Herald is overloaded; event not delivered to every channel")
        }
        return (.ok, ByteBuffer(string: "{\"message\":\"ok\"}"))
    }

    // MARK: helpers

    static var notFound: (HTTPResponseStatus, ByteBuffer) { error(.notFound, "Not found") }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> (HTTPResponseStatus, ByteBuffer) {
        (status, json(.object([JSONMember(key: "error", value: .string(message))])))
    }

    static func json(_ value: JSONValue) -> ByteBuffer {
        var buffer = ByteBuffer()
        value.write(into: &buffer)
        return buffer
    }

    /// JavaScript truthiness of a JSON value (`false`, `0`, `""` and `null` are falsy).
    static func isTruthy(_ value: JSONValue) -> Bool {
        switch value {
        case .null: return false
        case .bool(let b): return b
        case .string(let s): return !s.isEmpty
        case .number(let n): return Double(n).map { $0 != 0 && !$0.isNaN } ?? true
        case .array, .object: return true
        }
    }

    /// Percent-decodes a path segment (`+` stays a plus, unlike in a query).
    static func percentDecode(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "%"), i + 2 < utf8.count,
               let value = UInt8(String(decoding: utf8[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                bytes.append(value)
                i += 3
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Node's `process.memoryUsage()` shape, from `/proc/self/statm` (Linux): `rss` is the
    /// resident set; `heapTotal` the data segment; `heapUsed` the private resident memory;
    /// `external` and `arrayBuffers` (V8 notions) are 0. All in bytes; all 0 where /proc is
    /// not available.
    static func memoryUsage() -> JSONValue {
        var rss = 0, heapTotal = 0, heapUsed = 0
        if let statm = readSmallFile("/proc/self/statm") {
            let fields = statm.split(separator: " ").compactMap { Int($0.filter { $0.isNumber }) }
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count >= 6 {
                rss = fields[1] * page
                heapUsed = max(fields[1] - fields[2], 0) * page
                heapTotal = fields[5] * page
            }
        }
        func number(_ n: Int) -> JSONValue { .number(String(n)) }
        return .object([
            JSONMember(key: "rss", value: number(rss)),
            JSONMember(key: "heapTotal", value: number(heapTotal)),
            JSONMember(key: "heapUsed", value: number(heapUsed)),
            JSONMember(key: "external", value: number(0)),
            JSONMember(key: "arrayBuffers", value: number(0)),
        ])
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return String(decoding: bytes[..<count], as: UTF8.self)
    }
}
