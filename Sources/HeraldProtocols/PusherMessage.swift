import HeraldCore
import NIOCore

/// A client frame that is not a usable Pusher message. The connection answers with a
/// `pusher:error` (see ``PusherErrorCode``) and otherwise carries on or closes, as the session
/// decides; nothing here touches I/O.
public enum PusherProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The frame is not valid JSON (the reader's explanation attached).
    case notJSON(String)
    /// The frame is valid JSON but not an object.
    case notAnObject
    /// The frame has no `event` member, or it is empty.
    case missingEvent
    /// The `event` member is not a string.
    case eventNotString
    /// The event name is longer than `limit` bytes.
    case eventNameTooLong(limit: Int)
    /// The `channel` member is neither a string nor `null`.
    case channelNotString
    /// The channel name is longer than `limit` bytes.
    case channelNameTooLong(limit: Int)
    /// The `data` member does not have the shape the event needs (explanation attached).
    case invalidData(String)

    /// A one-line explanation, suitable for a `pusher:error` message.
    public var description: String {
        switch self {
        case .notJSON(let reason): "Invalid JSON: \(reason)"
        case .notAnObject: "Message must be a JSON object"
        case .missingEvent: "Message has no event"
        case .eventNotString: "Event name must be a string"
        case .eventNameTooLong(let limit): "Event name is longer than \(limit) characters"
        case .channelNotString: "Channel name must be a string"
        case .channelNameTooLong(let limit): "Channel name is longer than \(limit) characters"
        case .invalidData(let reason): "Invalid data: \(reason)"
        }
    }
}

/// One Pusher protocol 7 message, `{"event","channel"?,"data"?}` (PROTOCOLS.md D.2).
///
/// Decoding keeps `data` as its raw JSON bytes, verbatim: pusher-js sends an object for
/// `pusher:*` events and Reverb also accepts the same object string-encoded, so both forms are
/// read by ``dataValue()`` and the typed accessors. The static encoders build each server frame
/// once as a `ByteBuffer` that can be written to any number of connections.
public struct PusherMessage: Sendable, Hashable {
    /// Longest event name accepted by default (hosted Pusher and Soketi: 200).
    public static let defaultMaxEventNameLength = 200

    /// The event name (`pusher:subscribe`, `client-typing`, …).
    public var event: String
    /// The channel the message is scoped to, if any.
    public var channel: String?
    /// The raw JSON value of `data`, byte-for-byte; `nil` when absent.
    public var data: ByteBuffer?

    /// A message from its parts (`data` is raw JSON).
    public init(event: String, channel: String? = nil, data: ByteBuffer? = nil) {
        self.event = event
        self.channel = channel
        self.data = data
    }

    /// Decodes one client text frame.
    ///
    /// - Parameters:
    ///   - frame: the frame's payload.
    ///   - maxEventNameLength: longest `event` accepted, in UTF-8 bytes.
    ///   - maxChannelNameLength: longest `channel` accepted, in UTF-8 bytes (the character set is
    ///     checked later, with ``PusherChannelName``, because a bad name is a subscription error).
    /// - Throws: ``PusherProtocolError`` for anything that is not a Pusher message.
    public init(
        frame: ByteBuffer,
        maxEventNameLength: Int = PusherMessage.defaultMaxEventNameLength,
        maxChannelNameLength: Int = PusherChannelName.defaultMaxLength
    ) throws(PusherProtocolError) {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(frame)
        } catch {
            // Tell "valid JSON, wrong shape" apart from "not JSON at all".
            if (try? JSONReader.validate(frame)) != nil { throw .notAnObject }
            throw .notJSON(error.description)
        }
        var event: String? = nil
        var channel: String? = nil
        var data: ByteBuffer? = nil
        // Duplicate members: the last one wins, as with `JSON.parse`.
        for member in members {
            let raw = PusherJSON.slice(frame, member.range)
            switch member.key {
            case "event":
                guard case .string(let name) = try? JSONReader.parse(raw) else { throw .eventNotString }
                event = name
            case "channel":
                switch try? JSONReader.parse(raw) {
                case .string(let name): channel = name
                case .null: channel = nil
                default: throw .channelNotString
                }
            case "data":
                data = raw
            default:
                continue
            }
        }
        guard let event, !event.isEmpty else { throw .missingEvent }
        guard event.utf8.count <= maxEventNameLength else { throw .eventNameTooLong(limit: maxEventNameLength) }
        if let channel, channel.utf8.count > maxChannelNameLength {
            throw .channelNameTooLong(limit: maxChannelNameLength)
        }
        self.init(event: event, channel: channel, data: data)
    }

    /// Whether this is a client event (`client-` prefix, D.8).
    public var isClientEvent: Bool { event.hasPrefix("client-") }

    /// `data` parsed. A JSON string whose content is itself JSON is unwrapped once (Reverb's
    /// string-encoded form); a string that is not JSON is returned as `.string`, as pusher-js
    /// does. `nil` when `data` is absent or `null`.
    public func dataValue() throws(PusherProtocolError) -> JSONValue? {
        guard let data else { return nil }
        let value: JSONValue
        do {
            value = try JSONReader.parse(data)
        } catch {
            throw .invalidData(error.description)
        }
        switch value {
        case .null:
            return nil
        case .string(let text):
            if let inner = try? JSONReader.parse(text) { return inner }
            return value
        default:
            return value
        }
    }

    /// `data` as an object (object or string-encoded object).
    private func dataObject() throws(PusherProtocolError) -> JSONValue {
        guard let value = try dataValue(), case .object = value else {
            throw .invalidData("\(event) needs an object")
        }
        return value
    }

    /// Reads `pusher:subscribe` data: `{"channel","auth"?,"channel_data"?}` (D.6).
    public func subscribeRequest() throws(PusherProtocolError) -> PusherSubscribeRequest {
        let object = try dataObject()
        guard let channel = object["channel"]?.stringValue else { throw .invalidData("missing channel") }
        var auth: String? = nil
        switch object["auth"] {
        case .string(let value)?: auth = value
        case nil, .null?: break
        default: throw .invalidData("auth must be a string")
        }
        var channelData: String? = nil
        switch object["channel_data"] {
        case .string(let value)?: channelData = value
        case nil, .null?: break
        default: throw .invalidData("channel_data must be a string")
        }
        return PusherSubscribeRequest(channel: channel, auth: auth, channelData: channelData)
    }

    /// Reads the channel of a `pusher:unsubscribe` (`{"channel"}`).
    public func unsubscribeChannel() throws(PusherProtocolError) -> String {
        guard let channel = try dataObject()["channel"]?.stringValue else { throw .invalidData("missing channel") }
        return channel
    }

    /// Reads `pusher:signin` data: `{"auth","user_data"}` (D.9).
    public func signinRequest() throws(PusherProtocolError) -> PusherSigninRequest {
        let object = try dataObject()
        guard let auth = object["auth"]?.stringValue else { throw .invalidData("missing auth") }
        guard let userData = object["user_data"]?.stringValue else { throw .invalidData("missing user_data") }
        return PusherSigninRequest(auth: auth, userData: userData)
    }
}

/// The data of a `pusher:subscribe`.
public struct PusherSubscribeRequest: Sendable, Hashable {
    /// The channel to join.
    public var channel: String
    /// `<app key>:<hex HMAC>` for private/presence channels; `""` or `nil` for public ones.
    public var auth: String?
    /// Presence only: the exact string that was signed, `{"user_id":…,"user_info"?:…}`.
    public var channelData: String?

    /// A request from its parts.
    public init(channel: String, auth: String? = nil, channelData: String? = nil) {
        self.channel = channel
        self.auth = auth
        self.channelData = channelData
    }
}

/// The data of a `pusher:signin`.
public struct PusherSigninRequest: Sendable, Hashable {
    /// `<app key>:<hex HMAC>` of `<socket_id>::user::<user_data>`.
    public var auth: String
    /// The exact string that was signed (parse it with ``PusherUserData``).
    public var userData: String

    /// A request from its parts.
    public init(auth: String, userData: String) {
        self.auth = auth
        self.userData = userData
    }
}

/// One presence member: a user id and its `user_info`, raw (D.7).
public struct PusherPresenceMember: Sendable, Hashable {
    /// The user id; numeric ids are kept as their literal text (`10` → `"10"`).
    public var userID: String
    /// `user_info` as raw JSON, verbatim; `nil` when absent.
    public var userInfo: ByteBuffer?

    /// A member from its parts.
    public init(userID: String, userInfo: ByteBuffer? = nil) {
        self.userID = userID
        self.userInfo = userInfo
    }

    /// Parses a presence `channel_data` string, `{"user_id":<string|number>,"user_info"?:any}`.
    ///
    /// - Parameter maxUserInfoBytes: when set, a longer raw `user_info` is refused (Soketi: 2 KB).
    public init(channelData: String, maxUserInfoBytes: Int? = nil) throws(PusherProtocolError) {
        let buffer = ByteBuffer(string: channelData)
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(buffer)
        } catch {
            throw .invalidData("channel_data is not a JSON object")
        }
        var userID: String? = nil
        var userInfo: ByteBuffer? = nil
        for member in members {
            let raw = PusherJSON.slice(buffer, member.range)
            switch member.key {
            case "user_id":
                switch try? JSONReader.parse(raw) {
                case .string(let id)?: userID = id
                case .number(let literal)?: userID = literal
                default: throw .invalidData("user_id must be a string or a number")
                }
            case "user_info":
                userInfo = raw
            default:
                continue
            }
        }
        guard let userID, !userID.isEmpty else { throw .invalidData("channel_data has no user_id") }
        if let maxUserInfoBytes, let userInfo, userInfo.readableBytes > maxUserInfoBytes {
            throw .invalidData("user_info is larger than \(maxUserInfoBytes) bytes")
        }
        self.init(userID: userID, userInfo: userInfo)
    }
}

/// A signed-in user's `user_data`: `{"id":<non-empty string>,"user_info"?,"watchlist"?}` (D.9).
public struct PusherUserData: Sendable, Hashable {
    /// The user id (non-empty).
    public var id: String
    /// `user_info` as raw JSON, verbatim; `nil` when absent.
    public var userInfo: ByteBuffer?
    /// The ids this user watches (empty when absent).
    public var watchlist: [String]

    /// A value from its parts.
    public init(id: String, userInfo: ByteBuffer? = nil, watchlist: [String] = []) {
        self.id = id
        self.userInfo = userInfo
        self.watchlist = watchlist
    }

    /// Parses the `user_data` string of a `pusher:signin`. A missing, empty or non-string `id`
    /// is refused (the session answers 4009 and closes).
    public init(userData: String) throws(PusherProtocolError) {
        let buffer = ByteBuffer(string: userData)
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(buffer)
        } catch {
            throw .invalidData("user_data is not a JSON object")
        }
        var id: String? = nil
        var userInfo: ByteBuffer? = nil
        var watchlist: [String] = []
        for member in members {
            let raw = PusherJSON.slice(buffer, member.range)
            switch member.key {
            case "id":
                guard case .string(let value)? = try? JSONReader.parse(raw) else {
                    throw .invalidData("user_data id must be a string")
                }
                id = value
            case "user_info":
                userInfo = raw
            case "watchlist":
                switch try? JSONReader.parse(raw) {
                case .array(let items)?:
                    watchlist = []
                    for item in items {
                        guard case .string(let watched) = item else { throw .invalidData("watchlist must hold strings") }
                        watchlist.append(watched)
                    }
                case .null?: watchlist = []
                default: throw .invalidData("watchlist must be an array")
                }
            default:
                continue
            }
        }
        guard let id, !id.isEmpty else { throw .invalidData("user_data has no id") }
        self.init(id: id, userInfo: userInfo, watchlist: watchlist)
    }
}

// MARK: - Server frames

extension PusherMessage {
    /// How ``event(_:channel:data:userID:dataForm:)`` writes `data`.
    public enum DataForm: Sendable, Hashable {
        /// A JSON string: raw JSON is string-encoded once; a JSON string passes through
        /// unchanged (what hosted Pusher sends for app events; pusher-js parses it back).
        case string
        /// The raw JSON, verbatim (how client events are relayed, D.8).
        case verbatim
    }

    /// `{"event":"pusher:connection_established","data":"{\"socket_id\":\"…\",\"activity_timeout\":N}"}`
    /// — `data` is a JSON string; `activityTimeout` is in seconds and must be non-zero (D.1).
    public static func connectionEstablished(socketID: String, activityTimeout: Int) -> ByteBuffer {
        var inner = ByteBuffer()
        inner.writeStaticString("{\"socket_id\":")
        JSONValue.writeQuoted(socketID, into: &inner)
        inner.writeString(",\"activity_timeout\":\(activityTimeout)}")
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher:connection_established\",\"data\":")
        PusherJSON.writeStringLiteral(escaping: inner, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// `{"event":"pusher:error","data":{"code":N|null,"message":"…"}}`, with a top-level
    /// `channel` when the error is scoped to one (pusher-js then emits it to that channel).
    public static func error(code: Int?, message: String, channel: String? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher:error\",")
        if let channel {
            buffer.writeStaticString("\"channel\":")
            JSONValue.writeQuoted(channel, into: &buffer)
            buffer.writeStaticString(",")
        }
        buffer.writeStaticString("\"data\":{\"code\":")
        if let code { buffer.writeString(String(code)) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString(",\"message\":")
        JSONValue.writeQuoted(message, into: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `pusher:error` for a ``PusherErrorCode`` with its standard message (or `message`).
    public static func error(_ code: PusherErrorCode, message: String? = nil, channel: String? = nil) -> ByteBuffer {
        error(code: code.rawValue, message: message ?? code.message, channel: channel)
    }

    /// `{"event":"pusher:pong","data":{}}` — the answer to a client's `pusher:ping`.
    public static func pong() -> ByteBuffer { ByteBuffer(string: #"{"event":"pusher:pong","data":{}}"#) }

    /// `{"event":"pusher:ping","data":{}}` — the server's probe of an idle client.
    public static func ping() -> ByteBuffer { ByteBuffer(string: #"{"event":"pusher:ping","data":{}}"#) }

    /// `pusher_internal:subscription_succeeded` for a public or private channel: without
    /// `data` (hosted Pusher, Soketi) or, with `emptyData`, `"data":"{}"` (Reverb).
    public static func subscriptionSucceeded(channel: String, emptyData: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        if emptyData { buffer.writeStaticString(",\"data\":\"{}\"") }
        buffer.writeStaticString("}")
        return buffer
    }

    /// Presence `pusher_internal:subscription_succeeded`; `data` is the JSON string
    /// `{"presence":{"ids":[…],"hash":{"<id>":<user_info>|null,…},"count":n}}` over `members`,
    /// which must already be distinct users (D.7).
    public static func presenceSubscriptionSucceeded(channel: String, members: [PusherPresenceMember]) -> ByteBuffer {
        var inner = ByteBuffer()
        inner.writeStaticString("{\"presence\":{\"ids\":[")
        for (i, member) in members.enumerated() {
            if i > 0 { inner.writeStaticString(",") }
            JSONValue.writeQuoted(member.userID, into: &inner)
        }
        inner.writeStaticString("],\"hash\":{")
        for (i, member) in members.enumerated() {
            if i > 0 { inner.writeStaticString(",") }
            JSONValue.writeQuoted(member.userID, into: &inner)
            inner.writeStaticString(":")
            if let info = member.userInfo { inner.writeImmutableBuffer(info) } else { inner.writeStaticString("null") }
        }
        inner.writeString("},\"count\":\(members.count)}}")
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeStaticString(",\"data\":")
        PusherJSON.writeStringLiteral(escaping: inner, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// Soketi's `pusher:subscription_error`:
    /// `{"event":"pusher:subscription_error","channel":"…","data":{"type":"AuthError","error":"…","status":N}}`.
    public static func subscriptionError(channel: String, type: String = "AuthError", error: String, status: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher:subscription_error\",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeStaticString(",\"data\":{\"type\":")
        JSONValue.writeQuoted(type, into: &buffer)
        buffer.writeStaticString(",\"error\":")
        JSONValue.writeQuoted(error, into: &buffer)
        buffer.writeString(",\"status\":\(status)}}")
        return buffer
    }

    /// `pusher_internal:member_added` with the JSON string `{"user_id":"…","user_info":…}`
    /// (`user_info` omitted when the member has none).
    public static func memberAdded(channel: String, member: PusherPresenceMember) -> ByteBuffer {
        var inner = ByteBuffer()
        inner.writeStaticString("{\"user_id\":")
        JSONValue.writeQuoted(member.userID, into: &inner)
        if let info = member.userInfo {
            inner.writeStaticString(",\"user_info\":")
            inner.writeImmutableBuffer(info)
        }
        inner.writeStaticString("}")
        return internalEvent("pusher_internal:member_added", channel: channel, stringData: inner)
    }

    /// `pusher_internal:member_removed` with the JSON string `{"user_id":"…"}`.
    public static func memberRemoved(channel: String, userID: String) -> ByteBuffer {
        var inner = ByteBuffer()
        inner.writeStaticString("{\"user_id\":")
        JSONValue.writeQuoted(userID, into: &inner)
        inner.writeStaticString("}")
        return internalEvent("pusher_internal:member_removed", channel: channel, stringData: inner)
    }

    /// `pusher_internal:subscription_count` with the JSON string `{"subscription_count":n}`.
    public static func subscriptionCount(channel: String, count: Int) -> ByteBuffer {
        internalEvent("pusher_internal:subscription_count", channel: channel,
                      stringData: ByteBuffer(string: "{\"subscription_count\":\(count)}"))
    }

    /// `{"event":"pusher:signin_success","data":{"user_data":"…"}}` — `userData` is the exact
    /// string the client signed.
    public static func signinSuccess(userData: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":")
        JSONValue.writeQuoted(userData, into: &buffer)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// `{"event":"pusher:cache_miss","channel":"…"}` — sent right after subscribing to an empty
    /// cache channel.
    public static func cacheMiss(channel: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"pusher:cache_miss\",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// An app or client event, `{"event":…,"channel":…,"data":…[,"user_id":…]}`.
    ///
    /// - Parameters:
    ///   - data: raw JSON. With ``DataForm/string`` (the default) a JSON string passes through
    ///     byte-for-byte and any other value is string-encoded exactly once; with
    ///     ``DataForm/verbatim`` it is written as is.
    ///   - userID: the sender's presence user id, added to relayed client events.
    public static func event(
        _ name: String, channel: String, data: ByteBuffer, userID: String? = nil, dataForm: DataForm = .string
    ) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.readableBytes + name.utf8.count + channel.utf8.count + 48)
        buffer.writeStaticString("{\"event\":")
        JSONValue.writeQuoted(name, into: &buffer)
        buffer.writeStaticString(",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeStaticString(",\"data\":")
        switch dataForm {
        case .verbatim:
            buffer.writeImmutableBuffer(data)
        case .string:
            if PusherJSON.isStringLiteral(data) {
                buffer.writeImmutableBuffer(data)
            } else {
                PusherJSON.writeStringLiteral(escaping: data, into: &buffer)
            }
        }
        if let userID {
            buffer.writeStaticString(",\"user_id\":")
            JSONValue.writeQuoted(userID, into: &buffer)
        }
        buffer.writeStaticString("}")
        return buffer
    }

    private static func internalEvent(_ name: StaticString, channel: String, stringData: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{\"event\":\"")
        buffer.writeStaticString(name)
        buffer.writeStaticString("\",\"channel\":")
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeStaticString(",\"data\":")
        PusherJSON.writeStringLiteral(escaping: stringData, into: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }
}

/// Small JSON helpers shared by the Pusher codecs.
enum PusherJSON {
    /// The raw bytes of a member value (`range` is relative to the reader index).
    static func slice(_ buffer: ByteBuffer, _ range: Range<Int>) -> ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count) ?? ByteBuffer()
    }

    /// Whether raw JSON is a string literal (its first non-whitespace byte is `"`).
    static func isStringLiteral(_ raw: ByteBuffer) -> Bool {
        for byte in raw.readableBytesView {
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "\""): return true
            default: return false
            }
        }
        return false
    }

    /// Appends `raw` (UTF-8 text, typically JSON) as one JSON string literal: quotes,
    /// backslashes and control bytes are escaped, every other byte is copied.
    static func writeStringLiteral(escaping raw: ByteBuffer, into buffer: inout ByteBuffer) {
        JSONValue.writeQuoted(utf8: raw.readableBytesView, into: &buffer)
    }

    /// Lowercase hex digits.
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex of `bytes`.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
