import Hummingbird
import NIOCore

/// Limits of the routes `addHeraldRoutes(_:limits:)` adds.
public struct HeraldRouteLimits: Sendable, Hashable {
    /// Largest `POST events` body, in bytes (413 beyond).
    public var maxBodyBytes: Int
    /// Most channels one event may name (422 beyond).
    public var maxChannelsPerEvent: Int
    /// Longest channel name, in bytes (Herald's subscribe limit is 200).
    public var maxChannelNameBytes: Int
    /// Longest event name, in bytes (Pusher's limit is 200).
    public var maxEventNameBytes: Int

    public init(maxBodyBytes: Int = 102_400, maxChannelsPerEvent: Int = 100, maxChannelNameBytes: Int = 200, maxEventNameBytes: Int = 200) {
        self.maxBodyBytes = maxBodyBytes
        self.maxChannelsPerEvent = maxChannelsPerEvent
        self.maxChannelNameBytes = maxChannelNameBytes
        self.maxEventNameBytes = maxEventNameBytes
    }
}

extension RouterMethods {
    /// Adds Herald's app-facing routes, relative to this router or group:
    ///
    /// | route | answer |
    /// |---|---|
    /// | `POST events` | publishes `{"channel"\|"channels", "name"\|"event", "data", "socket_id"?}` in-process → `{"message":"ok","channels":n}` |
    /// | `GET channels[?filter_by_prefix=p]` | `{"channels":{"c":{"subscription_count":n,"occupied":true[,"user_count":n]}}}` (occupied channels) |
    /// | `GET channels/{channel}` | `{"occupied":b,"subscription_count":n[,"user_count":n]}` (`user_count` for presence channels) |
    /// | `GET channels/{channel}/users` | `{"users":[{"id":…,"user_info":…}]}` (presence channels only, else 400) |
    ///
    /// `data` is relayed byte for byte (a JSON string stays a string); `socket_id` excludes that
    /// socket (Laravel's `toOthers()`). Errors are `{"error":"…"}`: 400 when the body is not a
    /// JSON object, 413 when it is over ``HeraldRouteLimits/maxBodyBytes``, 422 when a field is
    /// missing or invalid, 503 when the relay's queue is full. Channel names in paths are
    /// percent-decoded (`%23server-to-user-1`).
    ///
    /// These routes are unauthenticated: put them in a group behind your own middleware.
    ///
    /// ```swift
    /// router.group("herald").add(middleware: AdminOnly()).addHeraldRoutes(relay)
    /// ```
    @discardableResult
    public func addHeraldRoutes(_ relay: Relay, limits: HeraldRouteLimits = HeraldRouteLimits()) -> Self {
        post("events") { request, _ -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limits.maxBodyBytes)
            } catch is NIOTooManyBytesError {
                return HeraldHTTP.error(.contentTooLarge, "the body is larger than \(limits.maxBodyBytes) bytes")
            }
            switch HeraldPublishRequest.parse(body, limits: limits) {
            case .failure(let failure):
                return HeraldHTTP.error(failure.status, failure.message)
            case .success(let publish):
                var queued = 0
                for channel in publish.channels {
                    let event = Event(channel: channel, name: publish.name, data: publish.data,
                                      excludedSocketID: publish.socketID, source: .http)
                    if relay.publish(event) { queued += 1 }
                }
                guard queued == publish.channels.count else {
                    return HeraldHTTP.error(.serviceUnavailable, "Herald is overloaded: the event was queued for \(queued) of \(publish.channels.count) channels")
                }
                return HeraldHTTP.json(.ok, .object([
                    JSONMember(key: "message", value: .string("ok")),
                    JSONMember(key: "channels", value: HeraldHTTP.number(queued)),
                ]))
            }
        }
        get("channels") { request, _ -> Response in
            let prefix = request.uri.query.map { HeraldHTTP.form($0[...])["filter_by_prefix"] ?? "" } ?? ""
            let counts: [String: Int]
            do {
                counts = try await relay.registry.queryOccupiedChannels()
            } catch {
                return HeraldHTTP.error(.serviceUnavailable, "the cluster's channel state is unavailable")
            }
            var channels: [JSONMember] = []
            for name in counts.keys.sorted() where prefix.isEmpty || name.hasPrefix(prefix) {
                guard let count = counts[name], count > 0 else { continue }
                guard let info = try? await Self.channelInfo(name, count: count, relay: relay) else {
                    return HeraldHTTP.error(.serviceUnavailable, "the cluster's channel state is unavailable")
                }
                channels.append(JSONMember(key: name, value: .object(info)))
            }
            return HeraldHTTP.json(.ok, .object([JSONMember(key: "channels", value: .object(channels))]))
        }
        get("channels/{channel}") { _, context -> Response in
            guard let name = Self.channelParameter(context) else {
                return HeraldHTTP.error(.badRequest, "invalid channel name")
            }
            do {
                let count = try await relay.registry.querySubscriberCount(name)
                return HeraldHTTP.json(.ok, .object(try await Self.channelInfo(name, count: count, relay: relay)))
            } catch {
                return HeraldHTTP.error(.serviceUnavailable, "the cluster's channel state is unavailable")
            }
        }
        get("channels/{channel}/users") { _, context -> Response in
            guard let name = Self.channelParameter(context) else {
                return HeraldHTTP.error(.badRequest, "invalid channel name")
            }
            guard ChannelKind(name) == .presence else {
                return HeraldHTTP.error(.badRequest, "users can only be listed for presence channels")
            }
            guard let members = try? await relay.registry.queryPresenceMembers(name) else {
                return HeraldHTTP.error(.serviceUnavailable, "the cluster's channel state is unavailable")
            }
            let users = members.map { member in
                JSONValue.object([JSONMember(key: "id", value: member.userID), JSONMember(key: "user_info", value: member.userInfo)])
            }
            return HeraldHTTP.json(.ok, .object([JSONMember(key: "users", value: .array(users))]))
        }
        return self
    }

    /// `occupied`, `subscription_count` and, for presence channels, `user_count` (the whole
    /// cluster's when the cluster is on).
    private static func channelInfo(_ name: String, count: Int, relay: Relay) async throws -> [JSONMember] {
        var members = [
            JSONMember(key: "occupied", value: .bool(count > 0)),
            JSONMember(key: "subscription_count", value: HeraldHTTP.number(count)),
        ]
        if ChannelKind(name) == .presence {
            members.append(JSONMember(key: "user_count", value: HeraldHTTP.number(try await relay.registry.queryPresenceMembers(name).count)))
        }
        return members
    }

    /// The percent-decoded `{channel}` path parameter; `nil` when empty, too long or holding
    /// control characters.
    private static func channelParameter(_ context: Context) -> String? {
        guard let raw = context.parameters.get("channel") else { return nil }
        let name = HeraldHTTP.percentDecode(raw[...], plusIsSpace: false)
        guard !name.isEmpty, name.utf8.count <= 1_024, !HeraldHTTP.hasControlCharacters(name) else { return nil }
        return name
    }
}

/// A validated `POST events` body.
struct HeraldPublishRequest: Sendable {
    var channels: [String]
    var name: String
    /// The raw JSON of `data`, verbatim.
    var data: ByteBuffer
    var socketID: String?

    struct Failure: Error, Sendable {
        var status: HTTPResponse.Status
        var message: String
        static func invalid(_ message: String) -> Failure { Failure(status: .unprocessableContent, message: message) }
    }

    /// Reads `{"channel"|"channels", "name"|"event", "data", "socket_id"?}` with ``JSONReader``
    /// (so `data` keeps its exact bytes).
    static func parse(_ body: ByteBuffer, limits: HeraldRouteLimits) -> Result<HeraldPublishRequest, Failure> {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(body)
        } catch {
            return .failure(Failure(status: .badRequest, message: "the body must be a JSON object (\(error))"))
        }
        // Duplicate keys: the last one wins, as with JSON.parse.
        var fields: [String: ByteBuffer] = [:]
        for member in members {
            fields[member.key] = body.getSlice(at: body.readerIndex + member.range.lowerBound, length: member.range.count)
        }
        func value(_ key: String) -> JSONValue? {
            // The whole body was validated, so every member parses.
            fields[key].flatMap { try? JSONReader.parse($0) }
        }

        let channels: [String]
        switch (value("channel"), value("channels")) {
        case (nil, nil):
            return .failure(.invalid("give the channel (\"channel\") or channels (\"channels\")"))
        case (.some, .some):
            return .failure(.invalid("give either \"channel\" or \"channels\", not both"))
        case (.some(let single), nil):
            guard case .string(let name) = single else { return .failure(.invalid("\"channel\" must be a string")) }
            channels = [name]
        case (nil, .some(let list)):
            guard case .array(let items) = list, !items.isEmpty else {
                return .failure(.invalid("\"channels\" must be a non-empty list of channel names"))
            }
            var names: [String] = []
            for item in items {
                guard case .string(let name) = item else {
                    return .failure(.invalid("\"channels\" must be a non-empty list of channel names"))
                }
                if !names.contains(name) { names.append(name) }
            }
            channels = names
        }
        guard channels.count <= limits.maxChannelsPerEvent else {
            return .failure(.invalid("at most \(limits.maxChannelsPerEvent) channels per event"))
        }
        for channel in channels {
            guard !channel.isEmpty, channel.utf8.count <= limits.maxChannelNameBytes, !HeraldHTTP.hasControlCharacters(channel) else {
                return .failure(.invalid("channel names must be 1-\(limits.maxChannelNameBytes) bytes without control characters"))
            }
        }

        let nameValue: JSONValue
        switch (value("name"), value("event")) {
        case (nil, nil): return .failure(.invalid("give the event name (\"name\" or \"event\")"))
        case (.some, .some): return .failure(.invalid("give either \"name\" or \"event\", not both"))
        case (.some(let v), nil), (nil, .some(let v)): nameValue = v
        }
        guard case .string(let name) = nameValue, !name.isEmpty, name.utf8.count <= limits.maxEventNameBytes,
              !HeraldHTTP.hasControlCharacters(name) else {
            return .failure(.invalid("the event name must be a string of 1-\(limits.maxEventNameBytes) bytes without control characters"))
        }

        guard let data = fields["data"] else { return .failure(.invalid("\"data\" is required (any JSON value)")) }

        var socketID: String?
        switch value("socket_id") {
        case nil, .null?: socketID = nil
        case .string(let s)? where !s.isEmpty && s.utf8.count <= 128: socketID = s
        case .number(let n)?: socketID = n
        default: return .failure(.invalid("\"socket_id\" must be a socket id (a string of 1-128 bytes)"))
        }
        return .success(HeraldPublishRequest(channels: channels, name: name, data: data, socketID: socketID))
    }
}
