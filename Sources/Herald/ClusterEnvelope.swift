import HeraldCore
import NIOCore

/// The wire form of one event travelling between Herald nodes on the cluster channel.
///
/// One compact JSON object, version first and the payload last, so it reads well in
/// `redis-cli SUBSCRIBE` and the payload is appended (and later sliced out) without being
/// re-encoded:
///
/// ```json
/// {"v":1,"node":"k3J9…","src":"http","ch":"orders","ns":"1001","ev":"order.shipped","sock":"123.456","uid":"7","data":{"id":1}}
/// ```
///
/// | key | meaning | required |
/// |---|---|---|
/// | `v` | envelope version, `1` | yes |
/// | `node` | the id of the node the event entered (receivers ignore their own) | yes |
/// | `src` | ``EventSource`` raw value (`http`, `client`, `inProcess`) | yes |
/// | `ch` | channel, without any key prefix | yes |
/// | `ns` | ``Event/namespace``: the Pusher app whose own channels these are; absent for the shared channels | no |
/// | `ev` | event name | yes |
/// | `sock` | socket id excluded from delivery (`toOthers()`, `socket_id`, the whisperer) | no |
/// | `uid` | sender's presence user id (Pusher client events) | no |
/// | `data` | the payload: one JSON value, verbatim | yes |
///
/// Unknown keys are ignored (a later version-1 node may add optional ones); any other `v` is
/// refused, so nodes of an incompatible later version drop rather than misread each other.
enum ClusterEnvelope {
    /// The version this node writes and reads.
    static let version = 1

    /// Why a cluster message could not be read.
    struct DecodeError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong, for the log.
        var reason: String
        var description: String { reason }
        init(_ reason: String) { self.reason = reason }
    }

    /// One decoded envelope: the node it came from and the event.
    struct Decoded: Sendable {
        /// The origin node's id.
        var node: String
        /// The event, with the origin's source, exclusion and sender.
        var event: Event
    }

    /// Appends the envelope of `event`, sent by `node`, to `buffer`. `event.data` must be one
    /// valid JSON value (it is written as is).
    static func encode(_ event: Event, node: String, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: event.data.readableBytes + event.channel.utf8.count + event.name.utf8.count + node.utf8.count + 64)
        buffer.writeStaticString("{\"v\":1,\"node\":")
        JSONValue.writeQuoted(node, into: &buffer)
        buffer.writeStaticString(",\"src\":")
        JSONValue.writeQuoted(event.source.rawValue, into: &buffer)
        buffer.writeStaticString(",\"ch\":")
        JSONValue.writeQuoted(event.channel, into: &buffer)
        if let namespace = event.namespace {
            buffer.writeStaticString(",\"ns\":")
            JSONValue.writeQuoted(namespace, into: &buffer)
        }
        buffer.writeStaticString(",\"ev\":")
        JSONValue.writeQuoted(event.name, into: &buffer)
        if let socket = event.excludedSocketID {
            buffer.writeStaticString(",\"sock\":")
            JSONValue.writeQuoted(socket, into: &buffer)
        }
        if let user = event.senderUserID {
            buffer.writeStaticString(",\"uid\":")
            JSONValue.writeQuoted(user, into: &buffer)
        }
        buffer.writeStaticString(",\"data\":")
        buffer.writeImmutableBuffer(event.data)
        buffer.writeStaticString("}")
    }

    /// The envelope of `event` as a new buffer.
    static func encode(_ event: Event, node: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(event, node: node, into: &buffer)
        return buffer
    }

    /// Reads an event envelope. The whole payload is validated as JSON (bounded nesting);
    /// `data` is sliced out of it verbatim. A presence notice is refused (see ``decodeMessage(_:)``).
    static func decode(_ payload: ByteBuffer) throws(DecodeError) -> Decoded {
        let members = try objectMembers(payload)
        if members.contains(where: { $0.key == "kind" }) { throw DecodeError("not an event envelope") }
        return try decodeEvent(payload, members: members)
    }

    /// Reads any cluster message: an event envelope, or a presence notice (`"kind":"presence"`).
    static func decodeMessage(_ payload: ByteBuffer) throws(DecodeError) -> (node: String, message: ClusterMessage) {
        let members = try objectMembers(payload)
        guard let kind = members.first(where: { $0.key == "kind" }) else {
            let decoded = try decodeEvent(payload, members: members)
            return (decoded.node, .event(decoded.event))
        }
        switch try? JSONReader.parse(slice(payload, kind.range)) {
        case .string("presence")?: return try decodePresence(payload, members: members)
        case .string("terminate")?: return try decodeTerminate(payload, members: members)
        default: throw DecodeError("unknown message kind")
        }
    }

    /// Appends a request to close a Pusher user's connections on every node:
    /// `{"v":1,"node":…,"kind":"terminate","app":…,"user":…}`.
    static func encodeTerminate(appID: String, userID: String, node: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"v\":1,\"node\":")
        JSONValue.writeQuoted(node, into: &buffer)
        buffer.writeStaticString(",\"kind\":\"terminate\",\"app\":")
        JSONValue.writeQuoted(appID, into: &buffer)
        buffer.writeStaticString(",\"user\":")
        JSONValue.writeQuoted(userID, into: &buffer)
        buffer.writeStaticString("}")
    }

    private static func decodeTerminate(_ payload: ByteBuffer, members: [(key: String, range: Range<Int>)]) throws(DecodeError) -> (node: String, message: ClusterMessage) {
        let (node, fields) = try controlFields(payload, members: members)
        guard case .string(let app)? = fields["app"], !app.isEmpty else { throw DecodeError("missing 'app'") }
        guard case .string(let user)? = fields["user"], !user.isEmpty else { throw DecodeError("missing 'user'") }
        return (node, .terminate(appID: app, userID: user))
    }

    /// A control message's (presence, terminate: small, never hot) members parsed, its version
    /// checked and its node read.
    private static func controlFields(_ payload: ByteBuffer, members: [(key: String, range: Range<Int>)]) throws(DecodeError) -> (node: String, fields: [String: JSONValue]) {
        var fields: [String: JSONValue] = [:]
        for member in members {
            guard let value = try? JSONReader.parse(slice(payload, member.range)) else { throw DecodeError("'\(member.key)' is not JSON") }
            fields[member.key] = value
        }
        guard case .number(let version)? = fields["v"], version == String(Self.version) else { throw DecodeError("unsupported or missing 'v'") }
        guard case .string(let node)? = fields["node"], !node.isEmpty else { throw DecodeError("missing 'node'") }
        return (node, fields)
    }

    private static func objectMembers(_ payload: ByteBuffer) throws(DecodeError) -> [(key: String, range: Range<Int>)] {
        do {
            return try JSONReader.objectMembers(payload)
        } catch {
            throw DecodeError("not a JSON object (\(error))")
        }
    }

    private static func slice(_ payload: ByteBuffer, _ range: Range<Int>) -> ByteBuffer {
        payload.getSlice(at: payload.readerIndex + range.lowerBound, length: range.count) ?? ByteBuffer()
    }

    /// Appends the presence notice `notice`, sent by `node`, to `buffer`:
    /// `{"v":1,"node":…,"kind":"presence","op":"join"|"leave","ch":…,"ns":…,"sock":…,"member":{"user_id":…,"user_info":…}}`.
    static func encode(_ notice: PresenceNotice, node: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"v\":1,\"node\":")
        JSONValue.writeQuoted(node, into: &buffer)
        buffer.writeStaticString(",\"kind\":\"presence\",\"op\":")
        buffer.writeStaticString(notice.joined ? "\"join\"" : "\"leave\"")
        buffer.writeStaticString(",\"ch\":")
        JSONValue.writeQuoted(notice.channel.name, into: &buffer)
        if let namespace = notice.channel.namespace {
            buffer.writeStaticString(",\"ns\":")
            JSONValue.writeQuoted(namespace, into: &buffer)
        }
        if let socket = notice.socketID {
            buffer.writeStaticString(",\"sock\":")
            JSONValue.writeQuoted(socket, into: &buffer)
        }
        buffer.writeStaticString(",\"member\":")
        notice.member.json().write(into: &buffer)
        buffer.writeStaticString("}")
    }

    private static func decodePresence(_ payload: ByteBuffer, members: [(key: String, range: Range<Int>)]) throws(DecodeError) -> (node: String, message: ClusterMessage) {
        let (node, fields) = try controlFields(payload, members: members)
        guard case .string(let op)? = fields["op"], op == "join" || op == "leave" else { throw DecodeError("'op' must be join or leave") }
        guard case .string(let channel)? = fields["ch"], !channel.isEmpty else { throw DecodeError("missing 'ch'") }
        var namespace: String?
        if let ns = fields["ns"] {
            guard case .string(let text) = ns else { throw DecodeError("'ns' is not a string") }
            namespace = text
        }
        var socket: String?
        if let sock = fields["sock"] {
            guard case .string(let text) = sock else { throw DecodeError("'sock' is not a string") }
            socket = text.isEmpty ? nil : text
        }
        guard let memberJSON = fields["member"], let member = PresenceMember(channelData: memberJSON) else {
            throw DecodeError("missing 'member' with a user_id")
        }
        let notice = PresenceNotice(channel: ChannelKey(namespace: namespace, name: channel), member: member, joined: op == "join", socketID: socket)
        return (node, .presence(notice))
    }

    private static func decodeEvent(_ payload: ByteBuffer, members: [(key: String, range: Range<Int>)]) throws(DecodeError) -> Decoded {
        func raw(_ range: Range<Int>) -> ByteBuffer {
            payload.getSlice(at: payload.readerIndex + range.lowerBound, length: range.count) ?? ByteBuffer()
        }
        func string(_ key: String, _ range: Range<Int>) throws(DecodeError) -> String {
            guard case .string(let text)? = try? JSONReader.parse(raw(range)) else {
                throw DecodeError("'\(key)' is not a string")
            }
            return text
        }
        var version: String?
        var node: String?
        var source: EventSource?
        var channel: String?
        var namespace: String?
        var name: String?
        var socket: String?
        var user: String?
        var data: ByteBuffer?
        for member in members {
            switch member.key {
            case "v":
                guard case .number(let literal)? = try? JSONReader.parse(raw(member.range)) else {
                    throw DecodeError("'v' is not a number")
                }
                version = literal
            case "node": node = try string("node", member.range)
            case "src":
                let text = try string("src", member.range)
                guard let parsed = EventSource(rawValue: text) else { throw DecodeError("unknown source '\(text)'") }
                source = parsed
            case "ch": channel = try string("ch", member.range)
            case "ns": namespace = try string("ns", member.range)
            case "ev": name = try string("ev", member.range)
            case "sock": socket = try string("sock", member.range)
            case "uid": user = try string("uid", member.range)
            case "data": data = raw(member.range)
            default: continue
            }
        }
        guard let version else { throw DecodeError("missing 'v'") }
        guard version == String(Self.version) else { throw DecodeError("unsupported envelope version \(version) (this node reads \(Self.version))") }
        guard let node, !node.isEmpty else { throw DecodeError("missing 'node'") }
        guard let source else { throw DecodeError("missing 'src'") }
        guard let channel, !channel.isEmpty else { throw DecodeError("missing 'ch'") }
        guard let name, !name.isEmpty else { throw DecodeError("missing 'ev'") }
        guard let data else { throw DecodeError("missing 'data'") }
        var event = Event(
            channel: channel, name: name, data: data, excludedSocketID: socket.flatMap { $0.isEmpty ? nil : $0 },
            source: source, namespace: namespace
        )
        event.senderUserID = user
        return Decoded(node: node, event: event)
    }
}

/// What travels on the cluster channel: an event that entered one node, or a presence change
/// decided on one node (see ``ClusterPresence``).
enum ClusterMessage: Sendable {
    case event(Event)
    case presence(PresenceNotice)
    /// The Pusher HTTP API's `terminate_connections` for a user, made on one node.
    case terminate(appID: String, userID: String)
}

/// A presence join or leave, decided once for the whole cluster by the node where it happened;
/// the other nodes announce it to their own subscribers of the channel.
struct PresenceNotice: Sendable {
    /// The presence channel.
    var channel: ChannelKey
    /// Who joined or left.
    var member: PresenceMember
    /// `true` for a join (the user's first connection in the cluster), `false` for a leave
    /// (its last one went).
    var joined: Bool
    /// The joining connection's socket id (laravel-echo-server's `socketId`); `nil` for leaves.
    var socketID: String?
}
