import FuzzSupport
import HeraldCore
import HeraldProtocols
import NIOCore
import NIOEmbedded
import NIOWebSocket

// WebSocket framing, both directions. The first byte picks the mode:
//   0: client bytes through the inbound pipeline Herald installs after an upgrade (NIO's frame
//      decoder and aggregator, Herald's limits), then every text frame through the Engine.IO,
//      Socket.IO and Pusher decoders and every binary frame through Engine.IO's;
//   1: `WebSocketFraming.frame` of the rest (opcode from the next byte), read back by NIO's
//      decoder, must give the same opcode and payload;
//   2: `WebSocketFraming.closeFrame` with the next two bytes as the code and the rest as the
//      reason: NIO must read it back, the reason must be valid UTF-8 (RFC 6455 §5.5.1, a
//      browser fails the connection otherwise), at most 123 bytes and a prefix of the reason;
//   3: `writeHeader` for a length taken from the next 8 bytes, parsed back per RFC 6455 §5.2.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketFrame(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    guard let mode = input.bytes.first else { return 0 }
    let rest = input.bytes.dropFirst()
    switch mode % 4 {
    case 0: inbound(rest)
    case 1: frameRoundTrip(rest)
    case 2: closeFrameRoundTrip(rest)
    default: headerRoundTrip(rest)
    }
    return 0
}

/// Herald's limits (`HTTPServer.swift`): `maxPayload` (at least 1024), 256 fragments.
private let maxPayload = 1024

private func decodeFrames(_ bytes: ArraySlice<UInt8>, maxFrameSize: Int, aggregate: Bool) -> (frames: [WebSocketFrame], failed: Bool) {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    do {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        if aggregate {
            try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0,
                maxAccumulatedFrameCount: 256,
                maxAccumulatedFrameSize: maxFrameSize
            ))
        }
    } catch {
        fuzzCheck(false, "pipeline setup failed: \(error)")
    }
    var frames: [WebSocketFrame] = []
    var failed = false
    do {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    } catch {
        failed = true
    }
    while let frame = try? channel.readInbound(as: WebSocketFrame.self) { frames.append(frame) }
    return (frames, failed)
}

private func inbound(_ bytes: ArraySlice<UInt8>) {
    for frame in decodeFrames(bytes, maxFrameSize: maxPayload, aggregate: true).frames {
        let payload = frame.unmaskedData
        fuzzCheck(payload.readableBytes <= maxPayload, "frame larger than maxFrameSize")
        switch frame.opcode {
        case .text:
            if let packet = try? EngineIOCodec.decodePacket(payload), packet.type == .message {
                _ = try? SocketIOCodec.decode(packet.data)
            }
            if let message = try? PusherMessage(frame: payload) {
                _ = try? message.dataValue()
                _ = try? message.subscribeRequest()
            }
        case .binary:
            _ = try? EngineIOCodec.decodeBinaryFrame(payload, version: .v3)
            _ = try? EngineIOCodec.decodeBinaryFrame(payload, version: .v4)
        default:
            break
        }
    }
}

private let opcodes: [WebSocketFraming.Opcode] = [.text, .binary, .close, .ping, .pong]

private func frameRoundTrip(_ bytes: ArraySlice<UInt8>) {
    guard let selector = bytes.first else { return }
    let opcode = opcodes[Int(selector) % opcodes.count]
    var payload = ByteBuffer(bytes: bytes.dropFirst())
    // Control frames carry at most 125 bytes (RFC 6455 §5.5); Herald never sends more.
    if opcode != .text, opcode != .binary, payload.readableBytes > 125 {
        payload = payload.getSlice(at: payload.readerIndex, length: 125) ?? payload
    }
    let framed = WebSocketFraming.frame(opcode: opcode, payload: payload)
    let decoded = decodeFrames(Array(framed.readableBytesView)[...], maxFrameSize: 1 << 20, aggregate: false)
    fuzzCheck(!decoded.failed && decoded.frames.count == 1, "NIO could not read a Herald frame")
    guard let frame = decoded.frames.first else { return }
    fuzzCheck(frame.fin && frame.maskKey == nil, "frame flags")
    fuzzCheck(frame.opcode == WebSocketOpcode(encodedWebSocketOpcode: opcode.rawValue), "opcode round trip")
    fuzzCheck(frame.data == payload, "payload round trip")
}

private func closeFrameRoundTrip(_ bytes: ArraySlice<UInt8>) {
    guard bytes.count >= 2 else { return }
    let code = UInt16(bytes[bytes.startIndex]) << 8 | UInt16(bytes[bytes.startIndex + 1])
    let reason = String(decoding: bytes.dropFirst(2), as: UTF8.self)
    let framed = WebSocketFraming.closeFrame(code: code, reason: reason)
    let decoded = decodeFrames(Array(framed.readableBytesView)[...], maxFrameSize: 1 << 20, aggregate: false)
    fuzzCheck(!decoded.failed && decoded.frames.count == 1, "NIO could not read a Herald close frame")
    guard let frame = decoded.frames.first else { return }
    var data = frame.data
    fuzzCheck(frame.opcode == .connectionClose && frame.fin, "close frame opcode")
    fuzzCheck(data.readInteger(as: UInt16.self) == code, "close code round trip")
    let sentReason = Array(data.readableBytesView)
    fuzzCheck(sentReason.count <= 123, "close reason longer than 123 bytes")
    fuzzCheck(Array(reason.utf8).starts(with: sentReason), "close reason is not a prefix of the reason")
    fuzzCheck(isValidUTF8(sentReason), "close reason cut inside a UTF-8 sequence: \(sentReason.suffix(4))")
}

private func headerRoundTrip(_ bytes: ArraySlice<UInt8>) {
    guard bytes.count >= 9 else { return }
    let opcode = opcodes[Int(bytes[bytes.startIndex]) % opcodes.count]
    var raw: UInt64 = 0
    for byte in bytes.dropFirst().prefix(8) { raw = raw << 8 | UInt64(byte) }
    let length = Int(raw & UInt64(Int.max))
    var header = ByteBuffer()
    WebSocketFraming.writeHeader(opcode: opcode, length: length, into: &header)
    fuzzCheck(header.readInteger(as: UInt8.self) == 0x80 | opcode.rawValue, "FIN + opcode byte")
    guard let first = header.readInteger(as: UInt8.self) else { return fuzzCheck(false, "short header") }
    let parsed: Int?
    switch first {
    case 0..<126: parsed = Int(first)
    case 126: parsed = header.readInteger(as: UInt16.self).map { Int($0) }
    case 127: parsed = header.readInteger(as: UInt64.self).map { Int($0) }
    default: parsed = nil  // the mask bit: servers never set it
    }
    fuzzCheck(parsed == length, "length round trip")
    fuzzCheck(header.readableBytes == 0, "header has trailing bytes")
    // RFC 6455 §5.2: the minimal number of bytes must be used for the length.
    let expectedSize = length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10
    let headerSize = header.writerIndex
    fuzzCheck(headerSize == expectedSize, "non-minimal length encoding")
}
