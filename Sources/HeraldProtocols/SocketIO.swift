import HeraldCore
import NIOCore

/// Socket.IO packet types (protocol v5; v4 names type 4 `ERROR`).
public enum SocketIOPacketType: UInt8, Sendable, Hashable {
    /// The packet types in wire order: `0` connect, `1` disconnect, `2` event, `3` ack, `4` connect
    /// error (v4: error), `5` binary event, `6` binary ack.
    case connect = 0, disconnect, event, ack, connectError, binaryEvent, binaryAck
}

/// One decoded Socket.IO packet.
public struct SocketIOPacket: Sendable, Hashable {
    /// The packet type (the first character on the wire).
    public var type: SocketIOPacketType
    /// The namespace, `/` when absent on the wire (a v4 query string stays attached, e.g. `/admin?token=1`).
    public var namespace: String
    /// The acknowledgement id, if the sender wants one.
    public var ackID: Int?
    /// Binary attachments announced (types 5 and 6).
    public var attachments: Int
    /// The JSON payload, raw; `nil` when the packet has none.
    public var payload: ByteBuffer?

    /// Creates a packet; the defaults describe a packet on the main namespace without an ack id,
    /// attachments or payload.
    public init(type: SocketIOPacketType, namespace: String = "/", ackID: Int? = nil, attachments: Int = 0, payload: ByteBuffer? = nil) {
        self.type = type
        self.namespace = namespace
        self.ackID = ackID
        self.attachments = attachments
        self.payload = payload
    }
}

/// A malformed Socket.IO packet; the Engine.IO session is closed on it.
public struct SocketIOParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong with the packet.
    public var reason: String
    /// Creates an error with the reason the packet was refused.
    public init(_ reason: String) { self.reason = reason }
    /// `Socket.IO parse error: <reason>`.
    public var description: String { "Socket.IO parse error: \(reason)" }
}

/// Encoding and decoding of Socket.IO packets (the text after Engine.IO's `4`).
public enum SocketIOCodec {
    /// Event names a client may not emit (they are reserved by the client library).
    public static let reservedEventNames: Set<String> = [
        "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
    ]

    /// Most binary attachments accepted on one packet.
    public static let maxAttachments = 10

    /// Decodes and validates one packet.
    public static func decode(_ text: ByteBuffer) throws(SocketIOParseError) -> SocketIOPacket {
        let view = text.readableBytesView
        var i = view.startIndex
        guard i < view.endIndex, view[i] >= UInt8(ascii: "0"),
              let type = SocketIOPacketType(rawValue: view[i] &- UInt8(ascii: "0")) else {
            throw SocketIOParseError("unknown packet type")
        }
        i += 1
        var attachments = 0
        if type == .binaryEvent || type == .binaryAck {
            let start = i
            while i < view.endIndex, isDigit(view[i]) { i += 1 }
            guard i > start, i < view.endIndex, view[i] == UInt8(ascii: "-"), i - start <= 3,
                  let count = Int(String(decoding: view[start..<i], as: UTF8.self)) else {
                throw SocketIOParseError("invalid attachment count")
            }
            guard count <= maxAttachments else { throw SocketIOParseError("too many attachments") }
            attachments = count
            i += 1
        }
        var namespace = "/"
        if i < view.endIndex, view[i] == UInt8(ascii: "/") {
            let start = i
            while i < view.endIndex, view[i] != UInt8(ascii: ",") { i += 1 }
            namespace = String(decoding: view[start..<i], as: UTF8.self)
            if i < view.endIndex { i += 1 }  // the comma
        }
        var ackID: Int? = nil
        if i < view.endIndex, isDigit(view[i]) {
            let start = i
            while i < view.endIndex, isDigit(view[i]) { i += 1 }
            guard i - start <= 15, let id = Int(String(decoding: view[start..<i], as: UTF8.self)) else {
                throw SocketIOParseError("invalid ack id")
            }
            ackID = id
        }
        var payload: ByteBuffer? = nil
        if i < view.endIndex {
            payload = text.getSlice(at: i, length: view.endIndex - i)
        }
        let packet = SocketIOPacket(type: type, namespace: namespace, ackID: ackID, attachments: attachments, payload: payload)
        try validate(packet)
        return packet
    }

    private static func validate(_ packet: SocketIOPacket) throws(SocketIOParseError) {
        switch packet.type {
        case .connect:
            if let payload = packet.payload {
                guard case .object = try parse(payload) else { throw SocketIOParseError("CONNECT payload must be an object") }
            }
        case .disconnect:
            if packet.payload != nil { throw SocketIOParseError("DISCONNECT carries no payload") }
        case .event, .binaryEvent:
            guard let payload = packet.payload, case .array(let items) = try parse(payload), let first = items.first else {
                throw SocketIOParseError("EVENT payload must be a non-empty array")
            }
            switch first {
            case .number: break
            case .string(let name) where !reservedEventNames.contains(name): break
            default: throw SocketIOParseError("invalid event name")
            }
        case .ack, .binaryAck:
            guard let payload = packet.payload, case .array = try parse(payload) else {
                throw SocketIOParseError("ACK payload must be an array")
            }
        case .connectError:
            guard let payload = packet.payload else { throw SocketIOParseError("CONNECT_ERROR needs a payload") }
            switch try parse(payload) {
            case .object, .string: break
            default: throw SocketIOParseError("CONNECT_ERROR payload must be an object or string")
            }
        }
    }

    private static func parse(_ payload: ByteBuffer) throws(SocketIOParseError) -> JSONValue {
        do {
            return try JSONReader.parse(payload)
        } catch {
            throw SocketIOParseError("payload is not JSON (\(error))")
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    // MARK: Encoding (each result is a complete Engine.IO message: it starts with `4`)

    /// `40{"sid":"…"}` — v5 CONNECT reply on `/`.
    public static func connectReply(sid: String) -> ByteBuffer {
        ByteBuffer(string: "40{\"sid\":\"\(sid)\"}")
    }

    /// `40` — v4 implicit CONNECT on `/`.
    public static func connectReplyV4() -> ByteBuffer { ByteBuffer(string: "40") }

    /// `44{"message":"…"}` (v5) or `44"…"` (v4) on `namespace`.
    public static func connectError(namespace: String, message: String, legacy: Bool) -> ByteBuffer {
        var buffer = ByteBuffer(string: "44")
        if namespace != "/" { buffer.writeString(namespace + ",") }
        if legacy {
            JSONValue.writeQuoted(message, into: &buffer)
        } else {
            buffer.writeString("{\"message\":")
            JSONValue.writeQuoted(message, into: &buffer)
            buffer.writeString("}")
        }
        return buffer
    }

    /// `41` — server-side disconnect (kick) on `/`.
    public static func disconnect() -> ByteBuffer { ByteBuffer(string: "41") }

    /// `43<id>[...]` — acknowledgement on `/` with raw JSON arguments.
    public static func ack(id: Int, arguments: [ByteBuffer]) -> ByteBuffer {
        var buffer = ByteBuffer(string: "43\(id)[")
        for (i, argument) in arguments.enumerated() {
            if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeImmutableBuffer(argument)
        }
        buffer.writeString("]")
        return buffer
    }

    /// Writes `42["<name>",<arg>,<arg>…]` on `/`: each argument is raw JSON, written verbatim.
    public static func writeEvent(name: String, arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("42[")
        JSONValue.writeQuoted(name, into: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeImmutableBuffer(argument)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }

    /// Writes laravel-echo-server's broadcast form, `42["<event>","<channel>",<data>]`.
    public static func writeChannelEvent(event: String, channel: String, data: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("42[")
        JSONValue.writeQuoted(event, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ","))
        JSONValue.writeQuoted(channel, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ","))
        buffer.writeImmutableBuffer(data)
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}
