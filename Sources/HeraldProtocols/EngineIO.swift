import HeraldCore
import NIOCore

/// The Engine.IO protocol generation a client speaks (`EIO=` in the query).
public enum EngineIOVersion: Int, Sendable, Hashable {
    /// Engine.IO 3: socket.io 1.x/2.x clients (laravel-echo-server's era).
    case v3 = 3
    /// Engine.IO 4: socket.io 3.x/4.x clients.
    case v4 = 4
}

/// Engine.IO packet types (the same numbers in v3 and v4).
public enum EngineIOPacketType: UInt8, Sendable, Hashable {
    /// The packet types in wire order: `0` open, `1` close, `2` ping, `3` pong, `4` message,
    /// `5` upgrade, `6` noop.
    case open = 0, close, ping, pong, message, upgrade, noop

    /// The ASCII digit that starts a packet of this type.
    public var digit: UInt8 { UInt8(ascii: "0") + rawValue }
}

/// One Engine.IO packet received from a client.
public struct EngineIOPacket: Sendable, Hashable {
    /// The packet type.
    public var type: EngineIOPacketType
    /// The packet's data after the type (text packets), or the raw bytes (binary messages).
    public var data: ByteBuffer
    /// Whether the message carried binary data.
    public var isBinary: Bool

    /// Creates a packet; a packet without data (ping, pong, close) needs only its type.
    public init(type: EngineIOPacketType, data: ByteBuffer = ByteBuffer(), isBinary: Bool = false) {
        self.type = type
        self.data = data
        self.isBinary = isBinary
    }
}

/// An Engine.IO error as the HTTP API reports it (`{"code":N,"message":"..."}`).
public struct EngineIOError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Engine.IO error code (0–5).
    public var code: Int
    /// The message text.
    public var message: String
    /// The HTTP status to answer with (403 for `forbidden`, else 400, 413 for oversized bodies).
    public var httpStatus: Int

    /// Creates an error with its Engine.IO code and message, answered with `httpStatus`.
    public init(code: Int, message: String, httpStatus: Int = 400) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
    }

    /// Code 0: the `transport` query parameter names no transport Herald serves.
    public static let unknownTransport = EngineIOError(code: 0, message: "Transport unknown")
    /// Code 1: the `sid` names no open session.
    public static let unknownSession = EngineIOError(code: 1, message: "Session ID unknown")
    /// Code 2: a handshake with a method other than `GET`.
    public static let badHandshakeMethod = EngineIOError(code: 2, message: "Bad handshake method")
    /// Code 3: a request Engine.IO cannot make sense of.
    public static let badRequest = EngineIOError(code: 3, message: "Bad request")
    /// Code 4: refused, such as an Origin that is not allowed (HTTP 403).
    public static let forbidden = EngineIOError(code: 4, message: "Forbidden", httpStatus: 403)
    /// Code 5: an `EIO` version other than 3 or 4.
    public static let unsupportedProtocolVersion = EngineIOError(code: 5, message: "Unsupported protocol version")
    /// A polling body larger than the configured limit (HTTP 413).
    public static let payloadTooLarge = EngineIOError(code: 3, message: "Payload too large", httpStatus: 413)

    /// The JSON body: `{"code":N,"message":"..."}`.
    public var jsonBody: String {
        var buffer = ByteBuffer()
        buffer.writeString("{\"code\":\(code),\"message\":")
        JSONValue.writeQuoted(message, into: &buffer)
        buffer.writeString("}")
        return String(buffer: buffer)
    }

    /// `Engine.IO error <code>: <message>`.
    public var description: String { "Engine.IO error \(code): \(message)" }
}

/// A malformed packet or payload.
public struct EngineIOParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was malformed.
    public var reason: String
    /// Creates an error with the reason the input was refused.
    public init(_ reason: String) { self.reason = reason }
    /// `Engine.IO parse error: <reason>`.
    public var description: String { "Engine.IO parse error: \(reason)" }
}

/// Encoding and decoding of Engine.IO packets and polling payloads (no I/O).
public enum EngineIOCodec {
    /// Record separator between packets of a v4 polling payload.
    public static let recordSeparator: UInt8 = 0x1E

    /// Decodes one text packet (a WebSocket text frame, or one element of a payload).
    public static func decodePacket(_ text: ByteBuffer) throws(EngineIOParseError) -> EngineIOPacket {
        guard let first = text.getInteger(at: text.readerIndex, as: UInt8.self) else {
            throw EngineIOParseError("empty packet")
        }
        guard first >= UInt8(ascii: "0"), let type = EngineIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw EngineIOParseError("unknown packet type '\(Character(Unicode.Scalar(first)))'")
        }
        var data = text
        data.moveReaderIndex(forwardBy: 1)
        return EngineIOPacket(type: type, data: data)
    }

    /// Decodes a binary WebSocket frame: v4 = raw message bytes; v3 = type byte then data.
    public static func decodeBinaryFrame(_ bytes: ByteBuffer, version: EngineIOVersion) throws(EngineIOParseError) -> EngineIOPacket {
        switch version {
        case .v4:
            return EngineIOPacket(type: .message, data: bytes, isBinary: true)
        case .v3:
            var data = bytes
            guard let typeByte = data.readInteger(as: UInt8.self), let type = EngineIOPacketType(rawValue: typeByte) else {
                throw EngineIOParseError("invalid binary packet type")
            }
            return EngineIOPacket(type: type, data: data, isBinary: true)
        }
    }

    /// Splits a v4 polling body (`packet\x1epacket…`; `b<base64>` = binary message).
    public static func decodePayloadV4(_ body: ByteBuffer) throws(EngineIOParseError) -> [EngineIOPacket] {
        var packets: [EngineIOPacket] = []
        var rest = body
        while rest.readableBytes > 0 {
            let length = rest.readableBytesView.firstIndex(of: recordSeparator).map { $0 - rest.readerIndex } ?? rest.readableBytes
            guard let piece = rest.readSlice(length: length) else { break }
            if rest.readableBytes > 0 { rest.moveReaderIndex(forwardBy: 1) }
            if piece.getInteger(at: piece.readerIndex, as: UInt8.self) == UInt8(ascii: "b") {
                var encoded = piece
                encoded.moveReaderIndex(forwardBy: 1)
                guard let decoded = Base64.decode(encoded.readableBytesView) else {
                    throw EngineIOParseError("invalid base64 in binary packet")
                }
                packets.append(EngineIOPacket(type: .message, data: ByteBuffer(bytes: decoded), isBinary: true))
            } else {
                packets.append(try decodePacket(piece))
            }
        }
        if packets.isEmpty { throw EngineIOParseError("empty payload") }
        return packets
    }

    /// Appends one text packet `<type><data>` to `buffer`.
    public static func writePacket(_ type: EngineIOPacketType, data: String = "", into buffer: inout ByteBuffer) {
        buffer.writeInteger(type.digit)
        buffer.writeString(data)
    }

    /// A text packet as a new buffer.
    public static func packet(_ type: EngineIOPacketType, _ data: String = "") -> ByteBuffer {
        var buffer = ByteBuffer()
        writePacket(type, data: data, into: &buffer)
        return buffer
    }

    /// Joins already-encoded packets into one v4 polling body.
    public static func encodePayloadV4<C: Collection>(_ packets: C, into buffer: inout ByteBuffer) where C.Element == ByteBuffer {
        var first = true
        for packet in packets {
            if !first { buffer.writeInteger(recordSeparator) }
            first = false
            buffer.writeImmutableBuffer(packet)
        }
    }

    /// The handshake's `open` data.
    public static func handshakeJSON(sid: String, upgrades: [String], pingInterval: Int, pingTimeout: Int, maxPayload: Int?) -> String {
        let list = upgrades.map { "\"\($0)\"" }.joined(separator: ",")
        var json = "{\"sid\":\"\(sid)\",\"upgrades\":[\(list)],\"pingInterval\":\(pingInterval),\"pingTimeout\":\(pingTimeout)"
        if let maxPayload { json += ",\"maxPayload\":\(maxPayload)" }
        json += "}"
        return json
    }
}

/// Minimal base64 for Engine.IO binary packets and WebSocket handshakes.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 with padding.
    public static func encode<C: Collection>(_ input: C) -> String where C.Element == UInt8 {
        let bytes = Array(input)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64; `nil` on invalid input.
    public static func decode<C: Collection>(_ input: C) -> [UInt8]? where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in input {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"), UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): v = 63
            case UInt8(ascii: "="): padding += 1; continue
            default: return nil
            }
            if padding > 0 { return nil }
            accumulator = accumulator << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return padding > 2 ? nil : out
    }
}
