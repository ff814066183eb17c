import HeraldProtocols
import NIOCore
import Testing

@Suite("Engine.IO codec")
struct EngineIOCodecTests {
    @Test("decodePacket reads the type digit and keeps the rest as data")
    func decodeTextPackets() throws {
        let message = try EngineIOCodec.decodePacket(buffer("4hello"))
        #expect(message.type == .message)
        #expect(text(message.data) == "hello")
        #expect(message.isBinary == false)

        let ping = try EngineIOCodec.decodePacket(buffer("2"))
        #expect(ping.type == .ping)
        #expect(ping.data.readableBytes == 0)

        let probe = try EngineIOCodec.decodePacket(buffer("3probe"))
        #expect(probe.type == .pong)
        #expect(text(probe.data) == "probe")

        let noop = try EngineIOCodec.decodePacket(buffer("6"))
        #expect(noop.type == .noop)
    }

    @Test("decodePacket honours a non-zero reader index")
    func decodeFromSlice() throws {
        var input = buffer("xx4abc")
        input.moveReaderIndex(forwardBy: 2)
        let packet = try EngineIOCodec.decodePacket(input)
        #expect(packet.type == .message)
        #expect(text(packet.data) == "abc")
    }

    @Test("decodePacket rejects unknown types and empty input")
    func decodeErrors() {
        #expect(throws: EngineIOParseError("unknown packet type '7'")) { try EngineIOCodec.decodePacket(buffer("7x")) }
        #expect(throws: EngineIOParseError("unknown packet type '/'")) { try EngineIOCodec.decodePacket(buffer("/x")) }
        #expect(throws: EngineIOParseError("unknown packet type 'a'")) { try EngineIOCodec.decodePacket(buffer("a")) }
        #expect(throws: EngineIOParseError("empty packet")) { try EngineIOCodec.decodePacket(buffer("")) }
    }

    @Test("decodePayloadV4 splits on 0x1e and decodes b<base64> binary messages")
    func decodePayload() throws {
        let packets = try EngineIOCodec.decodePayloadV4(buffer("4hello\u{1e}2\u{1e}bAQID\u{1e}42[\"a\"]"))
        #expect(packets.count == 4)
        #expect(packets[0] == EngineIOPacket(type: .message, data: buffer("hello")))
        #expect(packets[1] == EngineIOPacket(type: .ping, data: buffer("")))
        #expect(packets[2] == EngineIOPacket(type: .message, data: buffer(bytes: [1, 2, 3]), isBinary: true))
        #expect(packets[3].type == .message)
        #expect(text(packets[3].data) == "2[\"a\"]")

        let single = try EngineIOCodec.decodePayloadV4(buffer("40"))
        #expect(single == [EngineIOPacket(type: .message, data: buffer("0"))])

        // A trailing separator ends the payload.
        let trailing = try EngineIOCodec.decodePayloadV4(buffer("4a\u{1e}"))
        #expect(trailing == [EngineIOPacket(type: .message, data: buffer("a"))])
    }

    @Test("decodePayloadV4 errors")
    func decodePayloadErrors() {
        #expect(throws: EngineIOParseError("empty payload")) { try EngineIOCodec.decodePayloadV4(buffer("")) }
        #expect(throws: EngineIOParseError("invalid base64 in binary packet")) { try EngineIOCodec.decodePayloadV4(buffer("b!!!!")) }
        #expect(throws: EngineIOParseError("empty packet")) { try EngineIOCodec.decodePayloadV4(buffer("4a\u{1e}\u{1e}4b")) }
        #expect(throws: EngineIOParseError("unknown packet type '9'")) { try EngineIOCodec.decodePayloadV4(buffer("4a\u{1e}9")) }
    }

    @Test("decodeBinaryFrame: v4 is the raw message, v3 starts with the type byte")
    func binaryFrames() throws {
        let v4 = try EngineIOCodec.decodeBinaryFrame(buffer(bytes: [4, 0xFF, 0]), version: .v4)
        #expect(v4 == EngineIOPacket(type: .message, data: buffer(bytes: [4, 0xFF, 0]), isBinary: true))
        let v3 = try EngineIOCodec.decodeBinaryFrame(buffer(bytes: [4, 0xFF, 0]), version: .v3)
        #expect(v3 == EngineIOPacket(type: .message, data: buffer(bytes: [0xFF, 0]), isBinary: true))
        #expect(throws: EngineIOParseError("invalid binary packet type")) {
            try EngineIOCodec.decodeBinaryFrame(buffer(bytes: [9, 1]), version: .v3)
        }
        #expect(throws: EngineIOParseError("invalid binary packet type")) {
            try EngineIOCodec.decodeBinaryFrame(buffer(bytes: []), version: .v3)
        }
    }

    @Test("encodePayloadV4 joins packets with 0x1e, and packet() prefixes the digit")
    func encodePayload() {
        var body = ByteBuffer()
        EngineIOCodec.encodePayloadV4([EngineIOCodec.packet(.message, "a"), EngineIOCodec.packet(.ping), buffer("42[\"x\"]")], into: &body)
        #expect(bytes(body) == Array("4a\u{1e}2\u{1e}42[\"x\"]".utf8))

        var single = ByteBuffer()
        EngineIOCodec.encodePayloadV4([buffer("6")], into: &single)
        #expect(text(single) == "6")

        var empty = ByteBuffer()
        EngineIOCodec.encodePayloadV4([ByteBuffer](), into: &empty)
        #expect(empty.readableBytes == 0)

        #expect(text(EngineIOCodec.packet(.open, "{}")) == "0{}")
        #expect(text(EngineIOCodec.packet(.close)) == "1")
        #expect(EngineIOPacketType.noop.digit == UInt8(ascii: "6"))
    }

    @Test("encode then decode is the identity for text packets")
    func roundTrip() throws {
        var body = ByteBuffer()
        EngineIOCodec.encodePayloadV4([buffer("4one"), buffer("4two"), buffer("3")], into: &body)
        let packets = try EngineIOCodec.decodePayloadV4(body)
        #expect(packets.map(\.type) == [.message, .message, .pong])
        #expect(packets.map { String(buffer: $0.data) } == ["one", "two", ""])
    }

    @Test("handshakeJSON has the exact engine.io shape")
    func handshake() {
        #expect(EngineIOCodec.handshakeJSON(sid: "abc123", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1_000_000)
            == #"{"sid":"abc123","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#)
        #expect(EngineIOCodec.handshakeJSON(sid: "s", upgrades: [], pingInterval: 1, pingTimeout: 2, maxPayload: nil)
            == #"{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":2}"#)
    }

    @Test("EngineIOError.jsonBody and HTTP statuses")
    func errorBodies() {
        #expect(EngineIOError.unknownTransport.jsonBody == #"{"code":0,"message":"Transport unknown"}"#)
        #expect(EngineIOError.unknownSession.jsonBody == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(EngineIOError.badHandshakeMethod.jsonBody == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(EngineIOError.badRequest.jsonBody == #"{"code":3,"message":"Bad request"}"#)
        #expect(EngineIOError.forbidden.jsonBody == #"{"code":4,"message":"Forbidden"}"#)
        #expect(EngineIOError.unsupportedProtocolVersion.jsonBody == #"{"code":5,"message":"Unsupported protocol version"}"#)
        #expect(EngineIOError(code: 3, message: "say \"hi\"\n").jsonBody == #"{"code":3,"message":"say \"hi\"\n"}"#)
        #expect(EngineIOError.forbidden.httpStatus == 403)
        #expect(EngineIOError.badRequest.httpStatus == 400)
        #expect(EngineIOError.payloadTooLarge.httpStatus == 413)
        #expect(EngineIOError.payloadTooLarge.code == 3)
    }
}
