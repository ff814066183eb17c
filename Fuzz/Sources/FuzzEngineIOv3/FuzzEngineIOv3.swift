import FuzzSupport
import HeraldProtocols
import NIOCore

// Engine.IO 3 polling payloads: the text framing `<utf16 length>:<packet>` (binary packets as
// `b<type><base64>`) and the XHR2 binary framing `<0|1><digits>0xFF<packet>`, plus v3 binary
// WebSocket frames. Decoded payloads are re-encoded in the text framing and decoded again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEngineIOv3(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let buffer = input.buffer

    if let frame = try? EngineIOCodec.decodeBinaryFrame(buffer, version: .v3) {
        fuzzCheck(frame.isBinary && frame.data.readableBytes == buffer.readableBytes - 1, "v3 binary frame")
    }

    let packets = try? EngineIOCodec.decodePayloadV3(buffer)
    fuzzCheck((try? EngineIOCodec.decodePayloadV3(input.offsetBuffer)) == packets, "decodePayloadV3 depends on the reader index")
    guard let packets else { return 0 }
    fuzzCheck(!packets.isEmpty, "decodePayloadV3 returned no packets")

    // The text framing counts UTF-16 units, so it is only defined for UTF-8 text; packets of
    // the binary framing may carry any bytes and are left out of the round trip then.
    guard packets.allSatisfy({ $0.isBinary || isValidUTF8($0.data.readableBytesView) }) else { return 0 }
    let pieces = packets.map { packet -> ByteBuffer in
        var piece = ByteBuffer()
        if packet.isBinary {
            piece.writeInteger(UInt8(ascii: "b"))
            piece.writeInteger(packet.type.digit)
            piece.writeString(Base64.encode(packet.data.readableBytesView))
        } else {
            piece.writeInteger(packet.type.digit)
            piece.writeImmutableBuffer(packet.data)
        }
        return piece
    }
    for piece in pieces {
        let units = String(decoding: piece.readableBytesView, as: UTF8.self).utf16.count
        fuzzCheck(EngineIOCodec.utf16Length(ofUTF8: piece.readableBytesView) == units, "utf16Length")
    }
    var payload = ByteBuffer()
    EngineIOCodec.encodePayloadV3(pieces, into: &payload)
    let again = try? EngineIOCodec.decodePayloadV3(payload)
    fuzzCheck(again == packets, "v3 payload round trip: \(describe(payload))")
    return 0
}
