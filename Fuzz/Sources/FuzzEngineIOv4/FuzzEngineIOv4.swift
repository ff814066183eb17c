import FuzzSupport
import HeraldProtocols
import NIOCore

// Engine.IO 4: one text packet, one binary frame, and a polling payload
// (`packet\x1epacket…`, `b<base64>` for binary), with encode(decode(x)) checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEngineIOv4(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let buffer = input.buffer

    // A text packet keeps everything after the type digit: re-encoding gives the input back.
    if let packet = try? EngineIOCodec.decodePacket(buffer) {
        var encoded = ByteBuffer()
        encoded.writeInteger(packet.type.digit)
        encoded.writeImmutableBuffer(packet.data)
        fuzzCheck(encoded == buffer, "decodePacket/encode round trip")
        fuzzCheck((try? EngineIOCodec.decodePacket(input.offsetBuffer)) == packet, "decodePacket depends on the reader index")
    }
    let binary = try? EngineIOCodec.decodeBinaryFrame(buffer, version: .v4)
    fuzzCheck(binary?.data == buffer && binary?.type == .message, "v4 binary frame is the raw message")

    // Polling payload: decode, encode, decode again.
    let packets = try? EngineIOCodec.decodePayloadV4(buffer)
    fuzzCheck((try? EngineIOCodec.decodePayloadV4(input.offsetBuffer)) == packets, "decodePayloadV4 depends on the reader index")
    if let packets {
        fuzzCheck(!packets.isEmpty, "decodePayloadV4 returned no packets")
        let pieces = packets.map { packet -> ByteBuffer in
            var piece = ByteBuffer()
            if packet.isBinary {
                piece.writeString("b" + Base64.encode(packet.data.readableBytesView))
            } else {
                piece.writeInteger(packet.type.digit)
                piece.writeImmutableBuffer(packet.data)
            }
            return piece
        }
        var payload = ByteBuffer()
        EngineIOCodec.encodePayloadV4(pieces, into: &payload)
        let again = try? EngineIOCodec.decodePayloadV4(payload)
        fuzzCheck(again == packets, "payload round trip: \(describe(payload))")
    }

    // Base64 (binary packets, WebSocket handshakes): decode(encode(x)) == x.
    fuzzCheck(Base64.decode(Array(Base64.encode(input.bytes).utf8)) == input.bytes, "base64 round trip")
    if let decoded = Base64.decode(input.bytes) {
        fuzzCheck(Base64.decode(Array(Base64.encode(decoded).utf8)) == decoded, "base64 re-encode")
    }
    return 0
}
