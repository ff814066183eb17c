import HeraldCore
import NIOCore

/// An HTTP API failure with its status code; ``body`` is Soketi's `{"error":"…","code":N}`
/// (PROTOCOLS.md D.11). The server SDKs fail on any non-200, so the text is for humans.
public struct PusherHTTPAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status: 400, 401, 403, 404, 413 or 429.
    public var status: Int
    /// What was wrong.
    public var message: String

    /// An error from its parts.
    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    /// 400: the request is malformed.
    public static func badRequest(_ message: String) -> Self { Self(status: 400, message: message) }
    /// 401: bad signature, key, version or timestamp.
    public static func unauthorized(_ message: String) -> Self { Self(status: 401, message: message) }
    /// 403: the app is disabled or over quota.
    public static func forbidden(_ message: String) -> Self { Self(status: 403, message: message) }
    /// 404: no such app (or route).
    public static func notFound(_ message: String) -> Self { Self(status: 404, message: message) }
    /// 413: event data (or body) too large.
    public static func payloadTooLarge(_ message: String) -> Self { Self(status: 413, message: message) }
    /// 429: rate limited.
    public static func tooManyRequests(_ message: String) -> Self { Self(status: 429, message: message) }

    /// The response body, `{"error":"…","code":<status>}`.
    public var body: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"error\":")
        JSONValue.writeQuoted(message, into: &buffer)
        buffer.writeString(",\"code\":\(status)}")
        return buffer
    }

    /// `<status> <message>`.
    public var description: String { "\(status) \(message)" }
}

/// One event to trigger, from `POST /apps/<id>/events` or one entry of `batch_events`.
public struct PusherTriggerRequest: Sendable, Hashable {
    /// The event name.
    public var name: String
    /// `data` as raw JSON, verbatim — normally a JSON string literal, which
    /// ``PusherMessage/event(_:channel:data:userID:dataForm:)`` passes through unchanged.
    public var data: ByteBuffer
    /// The target channels (`channels`, or the single `channel`), validated.
    public var channels: [String]
    /// The socket to leave out (`toOthers()`), validated.
    public var socketID: String?
    /// The attributes asked for in the response (`info`, comma-separated on the wire).
    public var info: [String]

    /// A request from its parts.
    public init(name: String, data: ByteBuffer, channels: [String], socketID: String? = nil, info: [String] = []) {
        self.name = name
        self.data = data
        self.channels = channels
        self.socketID = socketID
        self.info = info
    }
}

/// Pure request parsing and response building for the Pusher HTTP API (D.11, D.13).
public enum PusherHTTPAPI {
    /// Limits applied to HTTP API input.
    public struct Limits: Sendable, Hashable {
        /// Largest event `data`, in bytes of the decoded string (hosted Pusher: 10 KB).
        public var maxDataBytes: Int
        /// Most channels one event may target.
        public var maxChannelsPerEvent: Int
        /// Most events in one `batch_events`.
        public var maxBatchSize: Int
        /// Longest event name, in bytes.
        public var maxEventNameLength: Int
        /// Longest channel name, in bytes.
        public var maxChannelNameLength: Int

        /// Limits from their parts; the defaults are hosted Pusher's.
        public init(
            maxDataBytes: Int = 10 * 1024, maxChannelsPerEvent: Int = 100, maxBatchSize: Int = 10,
            maxEventNameLength: Int = 200, maxChannelNameLength: Int = PusherChannelName.defaultMaxLength
        ) {
            self.maxDataBytes = maxDataBytes
            self.maxChannelsPerEvent = maxChannelsPerEvent
            self.maxBatchSize = maxBatchSize
            self.maxEventNameLength = maxEventNameLength
            self.maxChannelNameLength = maxChannelNameLength
        }
    }

    /// What the API reports about one channel; `nil` attributes are left out of the JSON.
    public struct ChannelInfo: Sendable, Hashable {
        /// Whether anyone is subscribed (`GET /channels/<ch>` only).
        public var occupied: Bool?
        /// Distinct presence users (`info=user_count`, presence channels only).
        public var userCount: Int?
        /// Connections subscribed (`info=subscription_count`).
        public var subscriptionCount: Int?

        /// Info from its parts.
        public init(occupied: Bool? = nil, userCount: Int? = nil, subscriptionCount: Int? = nil) {
            self.occupied = occupied
            self.userCount = userCount
            self.subscriptionCount = subscriptionCount
        }

        /// Appends `{"occupied":…,"user_count":…,"subscription_count":…}` (present fields only).
        public func write(into buffer: inout ByteBuffer) {
            var fields: [String] = []
            if let occupied { fields.append("\"occupied\":\(occupied)") }
            if let userCount { fields.append("\"user_count\":\(userCount)") }
            if let subscriptionCount { fields.append("\"subscription_count\":\(subscriptionCount)") }
            buffer.writeString("{" + fields.joined(separator: ",") + "}")
        }
    }

    // MARK: Requests

    /// Parses a `POST /apps/<id>/events` body:
    /// `{"name","data","channel"|"channels","socket_id"?,"info"?}`.
    ///
    /// - Throws: 400 for malformed input (not an object, missing/long name, missing data, no or
    ///   too many or invalid channels, both `channel` and `channels`, bad `socket_id`/`info`);
    ///   413 when `data` is over ``Limits/maxDataBytes``.
    public static func parseEvent(body: ByteBuffer, limits: Limits = Limits()) throws(PusherHTTPAPIError) -> PusherTriggerRequest {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(body)
        } catch {
            throw .badRequest("Request body must be a JSON object (\(error))")
        }
        return try parseEvent(members: members, in: body, limits: limits)
    }

    /// Parses a `POST /apps/<id>/batch_events` body, `{"batch":[…]}` with at most
    /// ``Limits/maxBatchSize`` events, each as in ``parseEvent(body:limits:)``.
    public static func parseBatch(body: ByteBuffer, limits: Limits = Limits()) throws(PusherHTTPAPIError) -> [PusherTriggerRequest] {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(body)
        } catch {
            throw .badRequest("Request body must be a JSON object (\(error))")
        }
        guard let batchMember = members.last(where: { $0.key == "batch" }) else {
            throw .badRequest("Missing batch")
        }
        let batch = PusherJSON.slice(body, batchMember.range)
        let elements: [Range<Int>]
        do {
            elements = try JSONReader.arrayElements(batch)
        } catch {
            throw .badRequest("batch must be an array")
        }
        guard elements.count <= limits.maxBatchSize else {
            throw .badRequest("Batch too large: \(elements.count) events, at most \(limits.maxBatchSize)")
        }
        var events: [PusherTriggerRequest] = []
        events.reserveCapacity(elements.count)
        for (index, range) in elements.enumerated() {
            let element = PusherJSON.slice(batch, range)
            let itemMembers: [(key: String, range: Range<Int>)]
            do {
                itemMembers = try JSONReader.objectMembers(element)
            } catch {
                throw .badRequest("batch[\(index)] must be an object")
            }
            do {
                events.append(try parseEvent(members: itemMembers, in: element, limits: limits))
            } catch {
                throw PusherHTTPAPIError(status: error.status, message: "batch[\(index)]: \(error.message)")
            }
        }
        return events
    }

    private static func parseEvent(
        members: [(key: String, range: Range<Int>)], in body: ByteBuffer, limits: Limits
    ) throws(PusherHTTPAPIError) -> PusherTriggerRequest {
        var name: String? = nil
        var data: ByteBuffer? = nil
        var channel: String? = nil
        var channels: [String]? = nil
        var socketID: String? = nil
        var info: [String] = []
        for member in members {
            let raw = PusherJSON.slice(body, member.range)
            switch member.key {
            case "name":
                guard case .string(let value)? = try? JSONReader.parse(raw) else { throw .badRequest("name must be a string") }
                name = value
            case "data":
                data = raw
            case "channel":
                guard case .string(let value)? = try? JSONReader.parse(raw) else { throw .badRequest("channel must be a string") }
                channel = value
            case "channels":
                guard case .array(let items)? = try? JSONReader.parse(raw) else { throw .badRequest("channels must be an array") }
                var names: [String] = []
                names.reserveCapacity(items.count)
                for item in items {
                    guard case .string(let value) = item else { throw .badRequest("channels must hold strings") }
                    names.append(value)
                }
                channels = names
            case "socket_id":
                switch try? JSONReader.parse(raw) {
                case .string(let value)?:
                    guard PusherSocketID.isValid(value) else { throw .badRequest("Invalid socket_id") }
                    socketID = value
                case .null?: socketID = nil
                default: throw .badRequest("socket_id must be a string")
                }
            case "info":
                switch try? JSONReader.parse(raw) {
                case .string(let value)?: info = parseInfo(value)
                case .null?: info = []
                default: throw .badRequest("info must be a string")
                }
            default:
                continue
            }
        }
        guard let name, !name.isEmpty else { throw .badRequest("Missing event name") }
        guard name.utf8.count <= limits.maxEventNameLength else {
            throw .badRequest("Event name is longer than \(limits.maxEventNameLength) characters")
        }
        guard let data else { throw .badRequest("Missing data") }
        let dataSize: Int
        if case .string(let text)? = try? JSONReader.parse(data) { dataSize = text.utf8.count } else { dataSize = data.readableBytes }
        guard dataSize <= limits.maxDataBytes else {
            throw .payloadTooLarge("Event data is \(dataSize) bytes, more than the limit of \(limits.maxDataBytes)")
        }
        let targets: [String]
        switch (channel, channels) {
        case (let one?, nil): targets = [one]
        case (nil, let many?): targets = many
        case (nil, nil): throw .badRequest("Missing channel or channels")
        case (.some, .some): throw .badRequest("Give either channel or channels, not both")
        }
        guard !targets.isEmpty else { throw .badRequest("channels is empty") }
        guard targets.count <= limits.maxChannelsPerEvent else {
            throw .badRequest("Too many channels: \(targets.count), at most \(limits.maxChannelsPerEvent)")
        }
        for target in targets {
            do {
                try PusherChannelName.validate(target, maxLength: limits.maxChannelNameLength)
            } catch {
                throw .badRequest("\(error.description): \(target.prefix(limits.maxChannelNameLength))")
            }
        }
        return PusherTriggerRequest(name: name, data: data, channels: targets, socketID: socketID, info: info)
    }

    /// Splits an `info` value (`user_count,subscription_count`) into its attributes.
    public static func parseInfo(_ value: String?) -> [String] {
        guard let value else { return [] }
        return value.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    }

    /// Splits a raw query string (without `?`) into decoded items, in order: `+` is a space and
    /// `%XX` is decoded (invalid escapes are kept literally).
    public static func parseQuery(_ query: some StringProtocol) -> [(name: String, value: String)] {
        var items: [(name: String, value: String)] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = pair.firstIndex(of: "=") {
                items.append((percentDecode(pair[..<equals]), percentDecode(pair[pair.index(after: equals)...])))
            } else {
                items.append((percentDecode(pair), ""))
            }
        }
        return items
    }

    /// Decodes `application/x-www-form-urlencoded` text (`+` → space, `%XX` → byte). Invalid
    /// escapes stay as written; invalid UTF-8 is repaired.
    ///
    /// - Parameter plusIsSpace: `false` for URL path segments, where `+` is itself.
    public static func percentDecode(_ text: some StringProtocol, plusIsSpace: Bool = true) -> String {
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let byte = utf8[i]
            if plusIsSpace && byte == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), i + 2 < utf8.count, let high = hexValue(utf8[i + 1]), let low = hexValue(utf8[i + 2]) {
                out.append(high << 4 | low)
                i += 2
            } else {
                out.append(byte)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: Responses

    /// `{}` — the plain success body.
    public static func emptyResponse() -> ByteBuffer { ByteBuffer(string: "{}") }

    /// The `POST /events` response: `{}`, or with `info`
    /// `{"channels":{"<ch>":{"user_count":n,"subscription_count":n}}}`.
    public static func eventResponse(channels: [(name: String, info: ChannelInfo)]? = nil) -> ByteBuffer {
        guard let channels else { return emptyResponse() }
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"channels\":")
        writeChannelMap(channels, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// The `POST /batch_events` response: `{}`, or with `info` `{"batch":[{…},{}]}`, one entry
    /// per event in order.
    public static func batchResponse(_ infos: [ChannelInfo]? = nil) -> ByteBuffer {
        guard let infos else { return emptyResponse() }
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"batch\":[")
        for (i, info) in infos.enumerated() {
            if i > 0 { buffer.writeStaticString(",") }
            info.write(into: &buffer)
        }
        buffer.writeStaticString("]}")
        return buffer
    }

    /// The `GET /channels` response, `{"channels":{"<ch>":{…}}}` (occupied channels only).
    public static func channelsResponse(_ channels: [(name: String, info: ChannelInfo)]) -> ByteBuffer {
        eventResponse(channels: channels)
    }

    /// The `GET /channels/<ch>` response, `{"occupied":true,"user_count":2,…}`.
    public static func channelResponse(_ info: ChannelInfo) -> ByteBuffer {
        var buffer = ByteBuffer()
        info.write(into: &buffer)
        return buffer
    }

    /// The `GET /channels/<ch>/users` response, `{"users":[{"id":"1"},…]}`.
    public static func usersResponse(userIDs: [String]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"users\":[")
        for (i, id) in userIDs.enumerated() {
            if i > 0 { buffer.writeStaticString(",") }
            buffer.writeStaticString("{\"id\":")
            JSONValue.writeQuoted(id, into: &buffer)
            buffer.writeStaticString("}")
        }
        buffer.writeStaticString("]}")
        return buffer
    }

    private static func writeChannelMap(_ channels: [(name: String, info: ChannelInfo)], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{")
        for (i, channel) in channels.enumerated() {
            if i > 0 { buffer.writeStaticString(",") }
            JSONValue.writeQuoted(channel.name, into: &buffer)
            buffer.writeStaticString(":")
            channel.info.write(into: &buffer)
        }
        buffer.writeStaticString("}")
    }
}

extension Substring {
    /// The text without leading and trailing spaces.
    fileprivate func trimmingSpaces() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
