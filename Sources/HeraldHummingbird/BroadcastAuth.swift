import Foundation
import HeraldProtocols
import Hummingbird
import Logging
import NIOCore

/// One private or presence subscription the application is asked to authorize.
public struct ChannelSubscription: Sendable, Hashable {
    /// The full channel name (`private-orders.7`, `presence-store`).
    public var channel: String
    /// The Pusher socket id (`1234.5678`) when a Pusher client asked; Herald's Socket.IO auth
    /// calls carry none.
    public var socketID: String?
    /// The `{placeholders}` of the matching ``BroadcastChannels`` pattern (`["id": "7"]` for
    /// `orders.{id}`); empty outside ``BroadcastChannels``.
    public var parameters: [String: String]

    public init(channel: String, socketID: String? = nil, parameters: [String: String] = [:]) {
        self.channel = channel
        self.socketID = socketID
        self.parameters = parameters
    }

    /// The channel's kind, from its prefix.
    public var kind: ChannelKind { ChannelKind(channel) }

    /// The name without its `private-encrypted-`, `private-` or `presence-` prefix, as Laravel's
    /// `Broadcast::channel` patterns see it (`orders.7`).
    public var name: String {
        for prefix in ["private-encrypted-", "private-", "presence-"] where channel.hasPrefix(prefix) {
            return String(channel.dropFirst(prefix.count))
        }
        return channel
    }
}

/// The application's answer for one subscription, like the return value of a Laravel
/// `Broadcast::channel` callback.
public enum ChannelAuthorization: Sendable, Hashable {
    /// Refused: 403.
    case denied
    /// Admitted to a private channel. (A presence channel needs a ``member(_:)``.)
    case allowed
    /// Admitted as this presence member; for a private channel the same as ``allowed``, as in
    /// Laravel, where one rule often serves `private-chat.1` and `presence-chat.1`.
    case member(PresenceMember)

    /// Admitted as the presence member `id` with `info` (`user_info`).
    public static func member(id: Int, info: JSONValue = .null) -> ChannelAuthorization {
        .member(PresenceMember(userID: .number(String(id)), userInfo: info))
    }

    /// Admitted as the presence member `id` with `info` (`user_info`).
    public static func member(id: String, info: JSONValue = .null) -> ChannelAuthorization {
        .member(PresenceMember(userID: .string(id), userInfo: info))
    }

    /// Admitted as the presence member `id`, with `info` encoded as its `user_info` (keys sorted).
    public static func member(id: Int, info: some Encodable) throws -> ChannelAuthorization {
        .member(PresenceMember(userID: .number(String(id)), userInfo: try encodedJSON(info)))
    }

    /// Admitted as the presence member `id`, with `info` encoded as its `user_info` (keys sorted).
    public static func member(id: String, info: some Encodable) throws -> ChannelAuthorization {
        .member(PresenceMember(userID: .string(id), userInfo: try encodedJSON(info)))
    }

    private static func encodedJSON(_ value: some Encodable) throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return try JSONReader.parse(ByteBuffer(bytes: data))
    }
}

/// Laravel's `routes/channels.php` in Swift: channel patterns with `{placeholders}`, each with
/// the rule that authorizes it. The first pattern matching the channel's ``ChannelSubscription/name``
/// (without `private-`/`presence-`) decides; no match is ``ChannelAuthorization/denied``.
///
/// ```swift
/// var channels = BroadcastChannels<AppRequestContext>()
/// channels.channel("orders.{id}") { _, context, subscription in       // private-orders.7
///     guard let user = context.user, let id = subscription.parameters["id"].flatMap(Int.init) else { return .denied }
///     return orders.owner(of: id) == user.id ? .allowed : .denied
/// }
/// channels.channel("store") { _, context, _ in                        // presence-store
///     guard let user = context.user else { return .denied }
///     return try .member(id: user.id, info: ["name": user.name])
/// }
/// router.addBroadcastAuth(channels: channels)
/// ```
///
/// A placeholder matches one or more characters other than `.`, as in Laravel.
public struct BroadcastChannels<Context: RequestContext>: Sendable {
    /// A channel rule: the request (with the application's middleware already run on it), its
    /// context, and the subscription with the pattern's ``ChannelSubscription/parameters``.
    public typealias Rule = @Sendable (_ request: Request, _ context: Context, _ subscription: ChannelSubscription) async throws -> ChannelAuthorization

    private var rules: [(pattern: ChannelPattern, rule: Rule)] = []

    public init() {}

    /// Adds the rule for channels matching `pattern` (e.g. `orders.{id}`).
    public mutating func channel(_ pattern: String, _ rule: @escaping Rule) {
        rules.append((ChannelPattern(pattern), rule))
    }

    /// Runs the first rule whose pattern matches, with its parameters; ``ChannelAuthorization/denied``
    /// when none does.
    public func authorize(_ request: Request, context: Context, subscription: ChannelSubscription) async throws -> ChannelAuthorization {
        let name = subscription.name
        for (pattern, rule) in rules {
            guard let parameters = pattern.match(name) else { continue }
            var matched = subscription
            matched.parameters = parameters
            return try await rule(request, context, matched)
        }
        return .denied
    }
}

/// A Laravel channel pattern: literal text and `{name}` placeholders.
struct ChannelPattern: Sendable, Hashable {
    enum Part: Sendable, Hashable {
        case literal([UInt8])
        case parameter(String)
    }

    let parts: [Part]

    init(_ pattern: String) {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var rest = Substring(pattern)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}"), rest.index(after: open) < close else { break }
            literal += Array(rest[..<open].utf8)
            if !literal.isEmpty { parts.append(.literal(literal)) }
            literal = []
            parts.append(.parameter(String(rest[rest.index(after: open)..<close])))
            rest = rest[rest.index(after: close)...]
        }
        literal += Array(rest.utf8)
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// The placeholders' values when the whole of `name` matches, else `nil`. A placeholder
    /// takes one or more bytes other than `.` (longest first, backtracking as a regex would).
    func match(_ name: String) -> [String: String]? {
        let bytes = Array(name.utf8)
        var captures: [(String, Range<Int>)] = []
        guard Self.match(parts[...], bytes, from: 0, captures: &captures) else { return nil }
        var parameters: [String: String] = [:]
        for (key, range) in captures { parameters[key] = String(decoding: bytes[range], as: UTF8.self) }
        return parameters
    }

    private static func match(_ parts: ArraySlice<Part>, _ bytes: [UInt8], from start: Int, captures: inout [(String, Range<Int>)]) -> Bool {
        guard let part = parts.first else { return start == bytes.count }
        switch part {
        case .literal(let literal):
            guard bytes.count - start >= literal.count, bytes[start..<(start + literal.count)].elementsEqual(literal) else { return false }
            return match(parts.dropFirst(), bytes, from: start + literal.count, captures: &captures)
        case .parameter(let key):
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ".") { end += 1 }
            // Channel names are short (≤ a few hundred bytes) and patterns have few parts.
            while end > start {
                captures.append((key, start..<end))
                if match(parts.dropFirst(), bytes, from: end, captures: &captures) { return true }
                captures.removeLast()
                end -= 1
            }
            return false
        }
    }
}

extension RouterMethods {
    /// Adds the application's `/broadcasting/auth` (GET and POST), answered by `authorize`.
    ///
    /// The request carries `channel_name` (and, from Pusher clients, `socket_id`) as a form or a
    /// JSON body, or in the query. The answer has the shape the asker expects:
    ///
    /// | asker | private channel | presence channel |
    /// |---|---|---|
    /// | Herald (Socket.IO clients; no `socket_id`) | `true` | `{"channel_data":{"user_id":7,"user_info":{…}}}` |
    /// | a Pusher client, when `pusher` is given | `{"auth":"<key>:<hex>"}` | `{"auth":"<key>:<hex>","channel_data":"{\"user_id\":\"7\",\"user_info\":{…}}"}` |
    ///
    /// `<hex>` is HMAC-SHA256 of `<socket_id>:<channel>[:<channel_data>]` keyed by the app's
    /// secret (Pusher's user id is a string, as pusher-php-server sends it). Errors are
    /// `{"error":"…"}`: 403 when denied (and for public channels, which need no
    /// authorization, and for `private-encrypted-` channels asked by Pusher clients, whose
    /// master key this endpoint does not hold), 400 without `channel_name` or with a malformed
    /// Pusher `socket_id`, 413 over 16 KB, 500 when a presence channel is allowed without a
    /// member. Errors `authorize` throws reach Hummingbird as usual (an `HTTPError` keeps its
    /// status).
    ///
    /// Herald calls this endpoint with the Socket.IO client's `auth.headers` (e.g.
    /// `Authorization: Bearer …`) and cookies, so the application's own middleware identifies
    /// the user: configure the relay with
    /// `AuthorizationConfiguration(hosts: ["http://127.0.0.1:<app port>"])`.
    @discardableResult
    public func addBroadcastAuth(
        path: RouterPath = "/broadcasting/auth",
        pusher: PusherApp? = nil,
        authorize: @escaping @Sendable (_ request: Request, _ context: Context, _ subscription: ChannelSubscription) async throws -> ChannelAuthorization
    ) -> Self {
        let handler: @Sendable (Request, Context) async throws -> Response = { request, context in
            try await BroadcastAuthResponder.respond(request: request, context: context, pusher: pusher, authorize: authorize)
        }
        on(path, method: .post, use: handler)
        on(path, method: .get, use: handler)
        return self
    }

    /// Adds the application's `/broadcasting/auth` answered by `channels` (see
    /// ``BroadcastChannels`` and `addBroadcastAuth(path:pusher:authorize:)` for the answers).
    @discardableResult
    public func addBroadcastAuth(path: RouterPath = "/broadcasting/auth", pusher: PusherApp? = nil, channels: BroadcastChannels<Context>) -> Self {
        addBroadcastAuth(path: path, pusher: pusher) { request, context, subscription in
            try await channels.authorize(request, context: context, subscription: subscription)
        }
    }
}

/// The `/broadcasting/auth` request and answer, apart from routing.
enum BroadcastAuthResponder {
    /// Largest auth request body read.
    static let maxBodyBytes = 16 * 1024
    /// Longest channel name considered.
    static let maxChannelBytes = 1_024

    static func respond<Context: RequestContext>(
        request: Request,
        context: Context,
        pusher: PusherApp?,
        authorize: @Sendable (Request, Context, ChannelSubscription) async throws -> ChannelAuthorization
    ) async throws -> Response {
        var fields = request.uri.query.map { HeraldHTTP.form($0[...]) } ?? [:]
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return HeraldHTTP.error(.contentTooLarge, "the body is larger than \(maxBodyBytes) bytes")
        }
        fields.merge(bodyFields(body, contentType: request.headers[.contentType]), uniquingKeysWith: { $1 })

        guard let channel = fields["channel_name"], !channel.isEmpty, channel.utf8.count <= maxChannelBytes,
              !HeraldHTTP.hasControlCharacters(channel) else {
            return HeraldHTTP.error(.badRequest, "channel_name is required (1-\(maxChannelBytes) bytes)")
        }
        let subscription = ChannelSubscription(channel: channel, socketID: fields["socket_id"].flatMap { $0.isEmpty ? nil : $0 })
        guard subscription.kind.requiresAuthorization else {
            return HeraldHTTP.error(.forbidden, "'\(channel)' is a public channel: it needs no authorization")
        }
        // A Pusher client asks with its socket id and expects a signature; Herald asks without.
        var signer: PusherApp?
        if let pusher, let socketID = subscription.socketID {
            guard PusherSocketID.isValid(socketID) else {
                return HeraldHTTP.error(.badRequest, "socket_id must be a Pusher socket id (digits.digits)")
            }
            guard subscription.kind != .privateEncrypted else {
                return HeraldHTTP.error(.forbidden, "end-to-end encrypted channels need the app's encryption master key, which this endpoint does not hold")
            }
            signer = pusher
        }

        let authorization = try await authorize(request, context, subscription)
        return answer(subscription, authorization, signer: signer, logger: context.logger)
    }

    /// The body's fields: a JSON object's string (and number) members, else a form.
    static func bodyFields(_ body: ByteBuffer, contentType: String?) -> [String: String] {
        guard body.readableBytes > 0 else { return [:] }
        let looksJSON = contentType?.lowercased().contains("json") == true || body.getInteger(at: body.readerIndex, as: UInt8.self) == UInt8(ascii: "{")
        if looksJSON {
            guard case .object(let members)? = try? JSONReader.parse(body) else { return [:] }
            var fields: [String: String] = [:]
            for member in members {
                switch member.value {
                case .string(let s): fields[member.key] = s
                case .number(let n): fields[member.key] = n
                default: break
                }
            }
            return fields
        }
        return HeraldHTTP.form(Substring(String(buffer: body)))
    }

    /// The answer for an authorization, in Laravel's redis-driver shape or, with `signer`,
    /// Pusher's signed shape.
    static func answer(_ subscription: ChannelSubscription, _ authorization: ChannelAuthorization, signer: PusherApp?, logger: Logger) -> Response {
        let member: PresenceMember?
        switch authorization {
        case .denied:
            return HeraldHTTP.error(.forbidden, "access to '\(subscription.channel)' denied")
        case .allowed:
            member = nil
        case .member(let m):
            member = m
        }
        let isPresence = subscription.kind == .presence
        if isPresence && member == nil {
            logger.error("a presence channel was allowed without a member: return .member(...) for presence channels", metadata: [
                "herald.channel": "\(subscription.channel)",
            ])
            return HeraldHTTP.error(.internalServerError, "presence channel '\(subscription.channel)' was allowed without a member")
        }
        if let signer, let socketID = subscription.socketID {
            var channelData: String?
            if isPresence, let member {
                var data = [JSONMember(key: "user_id", value: .string(member.key))]
                if member.userInfo != .null { data.append(JSONMember(key: "user_info", value: member.userInfo)) }
                channelData = JSONValue.object(data).serialized
            }
            let auth = PusherSignature.channelAuth(key: signer.key, secret: signer.secret, socketID: socketID,
                                                   channel: subscription.channel, channelData: channelData)
            var body = [JSONMember(key: "auth", value: .string(auth))]
            if let channelData { body.append(JSONMember(key: "channel_data", value: .string(channelData))) }
            return HeraldHTTP.json(.ok, .object(body))
        }
        if isPresence, let member {
            let data = JSONValue.object([JSONMember(key: "user_id", value: member.userID), JSONMember(key: "user_info", value: member.userInfo)])
            return HeraldHTTP.json(.ok, .object([JSONMember(key: "channel_data", value: data)]))
        }
        return HeraldHTTP.json(.ok, .bool(true))
    }
}
