import HeraldCore
import NIOCore

/// What Laravel's `RedisBroadcaster` publishes: `{"event":…,"data":…,"socket":…}`.
public struct LaravelBroadcast: Sendable {
    /// The event name (`App\Events\OrderShipped` or a `broadcastAs()` name).
    public var event: String
    /// The payload, raw JSON, verbatim (`null` when the message had none).
    public var data: ByteBuffer
    /// The `X-Socket-ID` of the request that used `toOthers()`, if any.
    public var socket: String?

    /// Creates a broadcast to publish (see ``encoded()``).
    public init(event: String, data: ByteBuffer, socket: String?) {
        self.event = event
        self.data = data
        self.socket = socket
    }

    /// Why a Redis payload is not a Laravel broadcast.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong with the payload.
        public var reason: String
        /// The reason.
        public var description: String { reason }
    }

    /// Parses a payload. The payload must be a JSON object with a string `event`; `data` is kept
    /// verbatim; `socket` counts only when it is a non-empty string.
    public init(payload: ByteBuffer) throws(ParseError) {
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(payload)
        } catch {
            throw ParseError(reason: "payload is not a JSON object (\(error))")
        }
        var event: String? = nil
        var data: ByteBuffer? = nil
        var socket: String? = nil
        for member in members {
            let raw = payload.getSlice(at: payload.readerIndex + member.range.lowerBound, length: member.range.count) ?? ByteBuffer()
            switch member.key {
            case "event":
                guard case .string(let name) = try? JSONReader.parse(raw) else {
                    throw ParseError(reason: "'event' is not a string")
                }
                event = name
            case "data":
                data = raw
            case "socket":
                if case .string(let id) = try? JSONReader.parse(raw), !id.isEmpty { socket = id }
            default:
                continue
            }
        }
        guard let event, !event.isEmpty else { throw ParseError(reason: "missing 'event'") }
        self.init(event: event, data: data ?? ByteBuffer(string: "null"), socket: socket)
    }

    /// Encodes the Laravel wire form (`data` verbatim), as `RedisBroadcaster` does.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("{\"event\":")
        JSONValue.writeQuoted(event, into: &buffer)
        buffer.writeString(",\"data\":")
        buffer.writeImmutableBuffer(data)
        buffer.writeString(",\"socket\":")
        if let socket { JSONValue.writeQuoted(socket, into: &buffer) } else { buffer.writeString("null") }
        buffer.writeString("}")
        return buffer
    }
}
