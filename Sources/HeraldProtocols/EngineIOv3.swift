import NIOCore

/// Engine.IO 3 polling payloads (socket.io 1.x/2.x clients): `<length>:<packet>` repeated,
/// where the length counts **UTF-16 code units** (JavaScript string length), not bytes.
extension EngineIOCodec {
    /// UTF-16 length of UTF-8 `bytes` (4-byte sequences are surrogate pairs: 2 units).
    public static func utf16Length<C: Collection>(ofUTF8 bytes: C) -> Int where C.Element == UInt8 {
        var units = 0
        for byte in bytes {
            if byte & 0xC0 == 0x80 { continue }  // continuation byte
            units += byte >= 0xF0 ? 2 : 1
        }
        return units
    }

    /// Joins already-encoded text packets into one v3 polling body.
    public static func encodePayloadV3<C: Collection>(_ packets: C, into buffer: inout ByteBuffer) where C.Element == ByteBuffer {
        for packet in packets {
            buffer.writeString(String(utf16Length(ofUTF8: packet.readableBytesView)))
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeImmutableBuffer(packet)
        }
    }

    /// Splits a v3 polling body: the text framing (`<len>:<packet>`, `b<type><base64>` for
    /// binary) or, when the first byte is 0 or 1, the binary framing XHR2 clients and
    /// python-engineio 3 send (`<0|1><length digits as bytes>0xFF<packet>`, length in bytes).
    public static func decodePayloadV3(_ body: ByteBuffer) throws(EngineIOParseError) -> [EngineIOPacket] {
        if let first = body.getInteger(at: body.readerIndex, as: UInt8.self), first <= 1 {
            return try decodeBinaryPayloadV3(body)
        }
        let view = body.readableBytesView
        var packets: [EngineIOPacket] = []
        var i = view.startIndex
        while i < view.endIndex {
            let lengthStart = i
            while i < view.endIndex, view[i] != UInt8(ascii: ":") {
                guard view[i] >= UInt8(ascii: "0"), view[i] <= UInt8(ascii: "9"), i - lengthStart < 10 else {
                    throw EngineIOParseError("invalid v3 payload length")
                }
                i += 1
            }
            guard i < view.endIndex, i > lengthStart,
                  let units = Int(String(decoding: view[lengthStart..<i], as: UTF8.self)) else {
                throw EngineIOParseError("invalid v3 payload length")
            }
            i += 1  // ':'
            // Walk `units` UTF-16 code units worth of UTF-8 bytes.
            let start = i
            var remaining = units
            while remaining > 0 {
                guard i < view.endIndex else { throw EngineIOParseError("v3 payload shorter than its length") }
                let byte = view[i]
                let width: Int
                switch byte {
                case 0..<0x80: width = 1; remaining -= 1
                case 0xC0..<0xE0: width = 2; remaining -= 1
                case 0xE0..<0xF0: width = 3; remaining -= 1
                case 0xF0..<0xF8: width = 4; remaining -= 2
                default: throw EngineIOParseError("invalid UTF-8 in v3 payload")
                }
                guard remaining >= 0 else { throw EngineIOParseError("v3 length splits a character") }
                i += width
            }
            guard i <= view.endIndex, let piece = body.getSlice(at: start, length: i - start) else {
                throw EngineIOParseError("v3 payload shorter than its length")
            }
            if units == 0 { throw EngineIOParseError("empty v3 packet") }
            if piece.getInteger(at: piece.readerIndex, as: UInt8.self) == UInt8(ascii: "b") {
                var encoded = piece
                encoded.moveReaderIndex(forwardBy: 1)
                guard let typeByte = encoded.readInteger(as: UInt8.self),
                      let type = EngineIOPacketType(rawValue: typeByte &- UInt8(ascii: "0")),
                      let decoded = Base64.decode(encoded.readableBytesView) else {
                    throw EngineIOParseError("invalid base64 binary packet")
                }
                packets.append(EngineIOPacket(type: type, data: ByteBuffer(bytes: decoded), isBinary: true))
            } else {
                packets.append(try decodePacket(piece))
            }
        }
        if packets.isEmpty { throw EngineIOParseError("empty payload") }
        return packets
    }

    private static func decodeBinaryPayloadV3(_ body: ByteBuffer) throws(EngineIOParseError) -> [EngineIOPacket] {
        var rest = body
        var packets: [EngineIOPacket] = []
        while let kind = rest.readInteger(as: UInt8.self) {
            guard kind <= 1 else { throw EngineIOParseError("invalid binary payload marker") }
            var length = 0
            var digits = 0
            while true {
                guard let digit = rest.readInteger(as: UInt8.self) else { throw EngineIOParseError("truncated binary payload length") }
                if digit == 0xFF { break }
                guard digit <= 9, digits < 10 else { throw EngineIOParseError("invalid binary payload length") }
                length = length * 10 + Int(digit)
                digits += 1
            }
            guard digits > 0, length > 0, let piece = rest.readSlice(length: length) else {
                throw EngineIOParseError("binary payload shorter than its length")
            }
            if kind == 0 {
                packets.append(try decodePacket(piece))
            } else {
                packets.append(try decodeBinaryFrame(piece, version: .v3))
            }
        }
        if packets.isEmpty { throw EngineIOParseError("empty payload") }
        return packets
    }
}
