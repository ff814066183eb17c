import FuzzSupport
import HeraldProtocols
import HeraldRedis
import NIOCore

// Redis replies through `HiredisReader` (hiredis's RESP2 reader) as the subscriber feeds them:
// in pieces (split points from the first byte), replies pulled until more bytes are needed or
// the reader fails. Pub/sub pushes go on through `RedisPubSubMessage(push:)` and the Laravel
// payload parser, as in the relay's ingest. Every reply is encoded as RESP again and must read
// back the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESP(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    guard let control = input.bytes.first else { return 0 }
    let stream = Array(input.bytes.dropFirst())
    // Up to three pieces: the control byte says where to cut.
    let cut1 = stream.isEmpty ? 0 : Int(control & 0x0F) % (stream.count + 1)
    let cut2 = stream.isEmpty ? 0 : max(cut1, Int(control >> 4) * stream.count / 16)
    let pieces = [stream[..<cut1], stream[cut1..<cut2], stream[cut2...]]

    let replies = read(pieces)
    for reply in replies {
        if let message = RedisPubSubMessage(push: reply) {
            _ = try? LaravelBroadcast(payload: message.payload)
        }
        var encoded = ByteBuffer()
        encode(reply, into: &encoded)
        let again = read([encoded.readableBytesView[...]])
        fuzzCheck(again == [reply], "RESP round trip: \(describe(encoded))")
    }
    // The same stream in one piece gives the same replies.
    let whole = read([stream[...]])
    fuzzCheck(whole == replies, "replies depend on how the stream is cut")
    return 0
}

private func read<Bytes: Collection<UInt8>>(_ pieces: [Bytes]) -> [RESPValue] {
    guard let reader = try? HiredisReader() else {
        fuzzCheck(false, "hiredis could not allocate a reader")
        return []
    }
    var replies: [RESPValue] = []
    for piece in pieces {
        do {
            try reader.feed(ByteBuffer(bytes: piece))
            while let reply = try reader.next() {
                replies.append(reply)
                if replies.count > 10_000 { return replies }
            }
        } catch {
            return replies  // the reader is unusable after an error; the connection is dropped
        }
    }
    return replies
}

/// RESP2 for a decoded reply.
private func encode(_ value: RESPValue, into buffer: inout ByteBuffer) {
    switch value {
    case .simpleString(let text):
        buffer.writeString("+\(text)\r\n")
    case .error(let text):
        buffer.writeString("-\(text)\r\n")
    case .integer(let number):
        buffer.writeString(":\(number)\r\n")
    case .bulkString(let bytes):
        buffer.writeString("$\(bytes.readableBytes)\r\n")
        buffer.writeImmutableBuffer(bytes)
        buffer.writeString("\r\n")
    case .null:
        buffer.writeString("$-1\r\n")
    case .array(let items):
        buffer.writeString("*\(items.count)\r\n")
        for item in items { encode(item, into: &buffer) }
    }
}
