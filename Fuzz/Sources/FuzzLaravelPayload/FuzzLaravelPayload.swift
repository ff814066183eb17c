import FuzzSupport
import HeraldCore
import HeraldProtocols
import NIOCore

// Laravel's broadcast payload as it arrives from Redis, `{"event","data","socket"}`: parse,
// encode (what `RedisBroadcaster` publishes), parse again; and the relay's fan-out encodings of
// an accepted event must be packets and frames a client can read (`data` is copied verbatim,
// so if the validating scanner let malformed JSON through, every client would get it).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLaravelPayload(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let broadcast = try? LaravelBroadcast(payload: input.buffer)
    let offset = try? LaravelBroadcast(payload: input.offsetBuffer)
    fuzzCheck(offset?.event == broadcast?.event && offset?.data == broadcast?.data && offset?.socket == broadcast?.socket,
              "parse depends on the reader index")
    guard let broadcast else { return 0 }
    fuzzCheck(!broadcast.event.isEmpty, "empty event accepted")
    fuzzCheck(broadcast.socket.map { !$0.isEmpty } ?? true, "empty socket kept")

    let encoded = broadcast.encoded()
    let again = try? LaravelBroadcast(payload: encoded)
    fuzzCheck(again?.event == broadcast.event && again?.data == broadcast.data && again?.socket == broadcast.socket,
              "encode/parse round trip: \(describe(encoded))")

    // The payload's `data` must be one JSON value: it is relayed verbatim to every client.
    let dataValue: JSONValue
    do {
        dataValue = try JSONReader.parse(broadcast.data)
    } catch {
        fuzzCheck(false, "accepted data is not JSON (\(error)): \(describe(broadcast.data))")
        return 0
    }

    // Socket.IO fan-out: `42["event","channel",data]`.
    var packet = ByteBuffer()
    SocketIOCodec.writeChannelEvent(event: broadcast.event, channel: "orders.1", data: broadcast.data, into: &packet)
    // (Read as the client does: the server may send names a client may not, such as `connect`.)
    guard let engine = try? EngineIOCodec.decodePacket(packet), engine.type == .message,
          engine.data.getInteger(at: engine.data.readerIndex, as: UInt8.self) == UInt8(ascii: "2"),
          let payload = engine.data.getSlice(at: engine.data.readerIndex + 1, length: engine.data.readableBytes - 1),
          case .array(let items)? = try? JSONReader.parse(payload) else {
        fuzzCheck(false, "fan-out packet does not decode: \(describe(packet))")
        return 0
    }
    fuzzCheck(items == [.string(broadcast.event), .string("orders.1"), dataValue], "fan-out packet content")

    // Pusher fan-out: `{"event","channel","data":"<data as a string>"}`.
    let frame = PusherMessage.event(broadcast.event, channel: "orders.1", data: broadcast.data)
    let message = try? PusherMessage(frame: frame, maxEventNameLength: .max)
    fuzzCheck(message?.event == broadcast.event && message?.channel == "orders.1", "Pusher fan-out frame: \(describe(frame))")
    return 0
}
