import FuzzSupport
import HeraldCore
import HeraldProtocols
import NIOCore

// Socket.IO packets (v5, and v4: the same wire grammar, v4 only allows a string CONNECT_ERROR
// and a query on the namespace): decode, then encode the packet again and decode that.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSocketIO(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let packet = try? SocketIOCodec.decode(input.buffer)
    fuzzCheck((try? SocketIOCodec.decode(input.offsetBuffer)) == packet, "decode depends on the reader index")

    // The same bytes as the data of an Engine.IO message, as a session receives them.
    var message = ByteBuffer(string: "4")
    message.writeBytes(input.bytes)
    if let engine = try? EngineIOCodec.decodePacket(message) {
        fuzzCheck(engine.type == .message, "Engine.IO message type")
        fuzzCheck((try? SocketIOCodec.decode(engine.data)) == packet, "decode of an Engine.IO slice differs")
    }

    guard let packet else { return 0 }
    // Bytes, not `hasPrefix`: "/" followed by a combining mark is one Character that is not "/".
    fuzzCheck(packet.namespace.utf8.first == UInt8(ascii: "/"), "namespace without '/'")
    fuzzCheck(packet.attachments <= SocketIOCodec.maxAttachments, "too many attachments accepted")
    var encoded = ByteBuffer()
    encoded.writeInteger(UInt8(ascii: "0") + packet.type.rawValue)
    if packet.type == .binaryEvent || packet.type == .binaryAck {
        encoded.writeString("\(packet.attachments)-")
    }
    if packet.namespace != "/" { encoded.writeString(packet.namespace + ",") }
    if let ackID = packet.ackID { encoded.writeString(String(ackID)) }
    if let payload = packet.payload { encoded.writeImmutableBuffer(payload) }
    let again = try? SocketIOCodec.decode(encoded)
    fuzzCheck(again == packet, "encode/decode round trip: \(describe(encoded))")

    // Events are what the relay acts on: the name must be a string or a number.
    if packet.type == .event, let payload = packet.payload {
        guard case .array(let items)? = try? JSONReader.parse(payload), let first = items.first else {
            fuzzCheck(false, "accepted EVENT without an array payload")
            return 0
        }
        if case .string(let name) = first {
            fuzzCheck(!SocketIOCodec.reservedEventNames.contains(name), "reserved event name accepted")
        }
    }
    return 0
}
