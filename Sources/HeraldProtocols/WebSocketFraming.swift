import NIOCore

/// Server-side WebSocket frame headers (RFC 6455 §5.2): server frames are never masked, so a
/// frame is just a header plus the payload, and a broadcast can be framed once for everyone.
public enum WebSocketFraming {
    /// Opcodes Herald sends.
    public enum Opcode: UInt8, Sendable {
        /// The RFC 6455 opcodes: text `0x1`, binary `0x2`, close `0x8`, ping `0x9`, pong `0xA`.
        case text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
    }

    /// Appends a final frame's header for a payload of `length` bytes.
    public static func writeHeader(opcode: Opcode, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode.rawValue)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    /// A complete final frame.
    public static func frame(opcode: Opcode, payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.readableBytes + 10)
        writeHeader(opcode: opcode, length: payload.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// A close frame with a status code and a reason (reason cut to fit 123 bytes, between
    /// characters: RFC 6455 §5.5.1 wants valid UTF-8, and browsers fail the connection otherwise).
    public static func closeFrame(code: UInt16, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        var length = 0
        for scalar in reason.unicodeScalars {
            let width = UTF8.width(scalar)
            if length + width > 123 { break }
            length += width
        }
        payload.writeBytes(reason.utf8.prefix(length))
        return frame(opcode: .close, payload: payload)
    }
}
