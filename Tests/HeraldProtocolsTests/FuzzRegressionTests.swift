import HeraldCore
import HeraldProtocols
import NIOCore
import Testing

/// What the fuzz targets in `Fuzz/` found (FUZZING.md), and a replay of the inputs of their
/// corpora that reach the most code, with the same invariants the targets check, so CI runs them
/// without libFuzzer. The Redis reader's inputs (`FuzzRESP`) need HeraldRedis and the inbound
/// WebSocket mode needs NIOWebSocket; neither is a dependency of this test target.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    // MARK: - Crashes found by fuzzing (minimized with -minimize_crash=1)

    @Test("FuzzJSON: an invalid escape validated but did not parse")
    func invalidEscapeFailsValidation() {
        let input: [UInt8] = [0x22, 0x5C, 0xFF, 0x22]  // "\<0xFF>"
        #expect(throws: JSONError.self) { try JSONReader.parse(ByteBuffer(bytes: input)) }
        #expect(throws: JSONError.self) { try JSONReader.validate(ByteBuffer(bytes: input)) }
        // Every escape the parser refuses, the validating scanner refuses too.
        for bad in [#""\x""#, #""\0""#, #""\u12""#, #""\u12g4""#, #""\ud83d\u0041""#, #"{"a\q":1}"#, #"["\"#] {
            #expect(throws: JSONError.self, "\(bad)") { try JSONReader.parse(bad) }
            #expect(throws: JSONError.self, "\(bad)") { try JSONReader.validate(ByteBuffer(string: bad)) }
            #expect(throws: JSONError.self, "\(bad)") { try JSONReader.objectMembers(ByteBuffer(string: "{\"k\":\(bad)}")) }
        }
        for good in [#""\"\\\/\b\f\n\r\t""#, #""\u00e9\ud83d\ude00""#, #""\ud83d""#, #""\ude00\ud83d x""#] {
            #expect(throws: Never.self, "\(good)") { try JSONReader.validate(ByteBuffer(string: good)) }
            #expect(throws: Never.self, "\(good)") { try JSONReader.parse(good) }
        }
    }

    @Test("FuzzLaravelPayload: data with an invalid escape was accepted and relayed verbatim")
    func laravelDataWithInvalidEscapeIsRefused() {
        // {"event":"c","data":{"":"\0"}} — clients' JSON.parse fails on the relayed packet, and
        // socket.io-client closes the connection on a packet it cannot parse.
        let input: [UInt8] = [
            0x7B, 0x22, 0x65, 0x76, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0x63, 0x22, 0x2C, 0x22, 0x64, 0x61,
            0x74, 0x61, 0x22, 0x3A, 0x7B, 0x22, 0x22, 0x3A, 0x22, 0x5C, 0x30, 0x22, 0x7D, 0x7D,
        ]
        #expect(throws: LaravelBroadcast.ParseError.self) { try LaravelBroadcast(payload: ByteBuffer(bytes: input)) }
        #expect(throws: PusherProtocolError.self) { try PusherMessage(frame: ByteBuffer(bytes: input)) }
        #expect(throws: PusherHTTPAPIError.self) {
            try PusherHTTPAPI.parseEvent(body: ByteBuffer(string: #"{"name":"e","channel":"c","data":"\x"}"#))
        }
    }

    @Test("FuzzWebSocketFrame: a close reason was cut inside a UTF-8 sequence")
    func closeReasonIsCutBetweenCharacters() {
        // Mode 2, code 0x0FB5, reason: bytes that decode to U+FFFD (3 bytes each) and ASCII.
        let input: [UInt8] = [
            0x02, 0x0F, 0xB5, 0xB5, 0xB5, 0xB5, 0xB5, 0xA9, 0xA9, 0xA9, 0xB5, 0xB5, 0xB5, 0xB5, 0xB5, 0xB5,
            0xA9, 0xB5, 0xA9, 0xB5, 0xB5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x58, 0xB5, 0xB5, 0xB5,
            0xB5, 0xA9, 0xA9, 0xA9, 0xB5, 0xB5, 0xA9, 0xA9, 0xA9, 0xB5, 0xB5, 0xA9, 0xA9,
        ]
        FuzzInvariants.webSocketFrame(input)
        let accented = String(repeating: "é", count: 100)  // 200 bytes
        let reason = FuzzInvariants.closeReason(WebSocketFraming.closeFrame(code: 4009, reason: accented))
        #expect(reason == Array(String(repeating: "é", count: 61).utf8))
    }

    @Test("FuzzSocketIO: a namespace of '/' and a combining mark is kept byte for byte")
    func namespaceWithCombiningMark() throws {
        // 1/<U+064B>. The target's own check was wrong here: `"/\u{64B}".hasPrefix("/")` is
        // false, "/" and the mark being one Character. The codec is right; wire data is checked
        // by bytes (`utf8`), not by Characters.
        let input: [UInt8] = [0x31, 0x2F, 0xD9, 0x8B]
        let packet = try SocketIOCodec.decode(ByteBuffer(bytes: input))
        #expect(packet.type == .disconnect)
        #expect(Array(packet.namespace.utf8) == [0x2F, 0xD9, 0x8B])
        #expect(packet.namespace != "/")
        FuzzInvariants.socketIO(input)
    }

    // MARK: - Corpus replay (regenerate with Fuzz/corpus-to-swift.py, see FUZZING.md)

    @Test("FuzzJSON corpus", arguments: FuzzCorpus.json)
    func jsonCorpus(_ input: FuzzCase) { FuzzInvariants.json(input.bytes) }

    @Test("FuzzEngineIOv4 corpus", arguments: FuzzCorpus.engineIOv4)
    func engineIOv4Corpus(_ input: FuzzCase) { FuzzInvariants.engineIOv4(input.bytes) }

    @Test("FuzzEngineIOv3 corpus", arguments: FuzzCorpus.engineIOv3)
    func engineIOv3Corpus(_ input: FuzzCase) { FuzzInvariants.engineIOv3(input.bytes) }

    @Test("FuzzSocketIO corpus", arguments: FuzzCorpus.socketIO)
    func socketIOCorpus(_ input: FuzzCase) { FuzzInvariants.socketIO(input.bytes) }

    @Test("FuzzWebSocketFrame corpus (Herald's framing modes)", arguments: FuzzCorpus.webSocketFrame)
    func webSocketFrameCorpus(_ input: FuzzCase) { FuzzInvariants.webSocketFrame(input.bytes) }

    @Test("FuzzPusherMessage corpus", arguments: FuzzCorpus.pusherMessage)
    func pusherMessageCorpus(_ input: FuzzCase) { FuzzInvariants.pusherMessage(input.bytes) }

    @Test("FuzzPusherChannelName corpus", arguments: FuzzCorpus.pusherChannelName)
    func pusherChannelNameCorpus(_ input: FuzzCase) { FuzzInvariants.pusherChannelName(input.bytes) }

    @Test("FuzzPusherHTTPAPI corpus", arguments: FuzzCorpus.pusherHTTPAPI)
    func pusherHTTPAPICorpus(_ input: FuzzCase) { FuzzInvariants.pusherHTTPAPI(input.bytes) }

    @Test("FuzzLaravelPayload corpus", arguments: FuzzCorpus.laravelPayload)
    func laravelPayloadCorpus(_ input: FuzzCase) { FuzzInvariants.laravelPayload(input.bytes) }
}

/// One fuzz input: the corpus file's name and its bytes.
struct FuzzCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    init(_ name: String, _ text: String) { self.init(name, bytes: Array(text.utf8)) }
    init(_ name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
    var testDescription: String { name }
}

/// The invariants of the fuzz targets (`Fuzz/Sources/<target>`), as expectations. Keep the two
/// in step: a target's check that is not here is not run in CI.
enum FuzzInvariants {
    private static func offsetBuffer(_ input: some Collection<UInt8>) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: [0xFF, 0x00, 0x7B, 0x22, 0x5B])
        buffer.writeBytes(input)
        buffer.moveReaderIndex(forwardBy: 5)
        return buffer
    }

    private static func isValidUTF8(_ input: some Collection<UInt8>) -> Bool {
        var iterator = input.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    static func json(_ input: [UInt8]) {
        let buffer = ByteBuffer(bytes: input)
        let parsed = try? JSONReader.parse(buffer)
        let valid = (try? JSONReader.validate(buffer)) != nil
        #expect((parsed != nil) == valid, "parse and validate disagree")
        #expect((try? JSONReader.parse(offsetBuffer(input))) == parsed)
        if let parsed { #expect((try? JSONReader.parse(parsed.serialized)) == parsed) }
        if let members = try? JSONReader.objectMembers(buffer) {
            guard case .object(let parsedMembers)? = parsed else { return #expect(Bool(false), "objectMembers/parse") }
            #expect(members.map(\.key) == parsedMembers.map(\.key))
        }
        if let elements = try? JSONReader.arrayElements(buffer) {
            guard case .array(let items)? = parsed else { return #expect(Bool(false), "arrayElements/parse") }
            #expect(elements.count == items.count)
        }
        let text = String(decoding: input, as: UTF8.self)
        var quoted = ByteBuffer()
        JSONValue.writeQuoted(text, into: &quoted)
        #expect((try? JSONReader.parse(quoted)) == .string(text))
    }

    static func engineIOv4(_ input: [UInt8]) {
        let buffer = ByteBuffer(bytes: input)
        if let packet = try? EngineIOCodec.decodePacket(buffer) {
            var encoded = ByteBuffer(integer: packet.type.digit)
            encoded.writeImmutableBuffer(packet.data)
            #expect(encoded == buffer)
        }
        let packets = try? EngineIOCodec.decodePayloadV4(buffer)
        #expect((try? EngineIOCodec.decodePayloadV4(offsetBuffer(input))) == packets)
        if let packets {
            let pieces = packets.map { packet in
                packet.isBinary
                    ? ByteBuffer(string: "b" + Base64.encode(packet.data.readableBytesView))
                    : EngineIOCodec.packet(packet.type, String(buffer: packet.data))
            }
            var payload = ByteBuffer()
            EngineIOCodec.encodePayloadV4(pieces, into: &payload)
            // Text data that is not UTF-8 does not survive the String above; compare the rest.
            if packets.allSatisfy({ $0.isBinary || isValidUTF8($0.data.readableBytesView) }) {
                #expect((try? EngineIOCodec.decodePayloadV4(payload)) == packets)
            }
        }
        #expect(Base64.decode(Array(Base64.encode(input).utf8)) == input)
    }

    static func engineIOv3(_ input: [UInt8]) {
        let buffer = ByteBuffer(bytes: input)
        let packets = try? EngineIOCodec.decodePayloadV3(buffer)
        #expect((try? EngineIOCodec.decodePayloadV3(offsetBuffer(input))) == packets)
        guard let packets, packets.allSatisfy({ $0.isBinary || isValidUTF8($0.data.readableBytesView) }) else { return }
        let pieces = packets.map { packet -> ByteBuffer in
            if packet.isBinary {
                var piece = ByteBuffer(string: "b")
                piece.writeInteger(packet.type.digit)
                piece.writeString(Base64.encode(packet.data.readableBytesView))
                return piece
            }
            var piece = ByteBuffer(integer: packet.type.digit)
            piece.writeImmutableBuffer(packet.data)
            return piece
        }
        var payload = ByteBuffer()
        EngineIOCodec.encodePayloadV3(pieces, into: &payload)
        #expect((try? EngineIOCodec.decodePayloadV3(payload)) == packets)
    }

    static func socketIO(_ input: [UInt8]) {
        let packet = try? SocketIOCodec.decode(ByteBuffer(bytes: input))
        #expect((try? SocketIOCodec.decode(offsetBuffer(input))) == packet)
        guard let packet else { return }
        var encoded = ByteBuffer(integer: UInt8(ascii: "0") + packet.type.rawValue)
        if packet.type == .binaryEvent || packet.type == .binaryAck { encoded.writeString("\(packet.attachments)-") }
        if packet.namespace != "/" { encoded.writeString(packet.namespace + ",") }
        if let ackID = packet.ackID { encoded.writeString(String(ackID)) }
        if let payload = packet.payload { encoded.writeImmutableBuffer(payload) }
        #expect((try? SocketIOCodec.decode(encoded)) == packet)
    }

    /// The close frame's reason bytes (after the 2-byte header and the code).
    static func closeReason(_ frame: ByteBuffer) -> [UInt8] {
        Array(frame.readableBytesView.dropFirst(4))
    }

    /// Modes 1–3 of the target (Herald's own framing); mode 0 runs NIO's decoder, not here.
    static func webSocketFrame(_ input: [UInt8]) {
        guard let mode = input.first else { return }
        let rest = input.dropFirst()
        let opcodes: [WebSocketFraming.Opcode] = [.text, .binary, .close, .ping, .pong]
        switch mode % 4 {
        case 1:
            guard let selector = rest.first else { return }
            let opcode = opcodes[Int(selector) % opcodes.count]
            var payload = Array(rest.dropFirst())
            if opcode != .text, opcode != .binary { payload = Array(payload.prefix(125)) }
            let frame = WebSocketFraming.frame(opcode: opcode, payload: ByteBuffer(bytes: payload))
            #expect(frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 0x80 | opcode.rawValue)
            #expect(Array(frame.readableBytesView.suffix(payload.count)) == payload)
        case 2:
            guard rest.count >= 2 else { return }
            let code = UInt16(rest[rest.startIndex]) << 8 | UInt16(rest[rest.startIndex + 1])
            let reason = String(decoding: rest.dropFirst(2), as: UTF8.self)
            let frame = WebSocketFraming.closeFrame(code: code, reason: reason)
            #expect(frame.getInteger(at: frame.readerIndex + 2, as: UInt16.self) == code)
            let sent = closeReason(frame)
            #expect(sent.count <= 123)
            #expect(Array(reason.utf8).starts(with: sent))
            #expect(isValidUTF8(sent), "close reason cut inside a UTF-8 sequence")
        case 3:
            guard rest.count >= 9 else { return }
            let opcode = opcodes[Int(rest[rest.startIndex]) % opcodes.count]
            let raw = rest.dropFirst().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let length = Int(raw & UInt64(Int.max))
            var header = ByteBuffer()
            WebSocketFraming.writeHeader(opcode: opcode, length: length, into: &header)
            #expect(header.readableBytes == (length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10))
        default:
            return
        }
    }

    static func pusherMessage(_ input: [UInt8]) {
        let message = try? PusherMessage(frame: ByteBuffer(bytes: input))
        #expect((try? PusherMessage(frame: offsetBuffer(input))) == message)
        let text = String(decoding: input, as: UTF8.self)
        if let member = try? PusherPresenceMember(channelData: text, maxUserInfoBytes: 2048) {
            let added = PusherMessage.memberAdded(channel: "presence-room", member: member)
            guard case .object(let fields)? = try? PusherMessage(frame: added).dataValue() else {
                return #expect(Bool(false), "member_added data is not an object")
            }
            #expect(fields.first { $0.key == "user_id" }?.value == .string(member.userID))
        }
        _ = try? PusherUserData(userData: text)
        guard let message else { return }
        var encoded = ByteBuffer(string: "{\"event\":")
        JSONValue.writeQuoted(message.event, into: &encoded)
        if let channel = message.channel {
            encoded.writeString(",\"channel\":")
            JSONValue.writeQuoted(channel, into: &encoded)
        }
        if let data = message.data {
            encoded.writeString(",\"data\":")
            encoded.writeImmutableBuffer(data)
        }
        encoded.writeString("}")
        #expect((try? PusherMessage(frame: encoded)) == message)
        _ = try? message.subscribeRequest()
        _ = try? message.signinRequest()
        if let data = message.data, let channel = message.channel {
            let frame = PusherMessage.event(message.event, channel: channel, data: data)
            let decoded = try? PusherMessage(frame: frame)
            #expect(decoded?.event == message.event && decoded?.channel == channel)
            guard let appData = decoded?.data, case .string? = try? JSONReader.parse(appData) else {
                return #expect(Bool(false), "string-form event data is not a JSON string")
            }
        }
    }

    static func pusherChannelName(_ input: [UInt8]) {
        let name = String(decoding: input, as: UTF8.self)
        let utf8 = Array(name.utf8)
        let body = utf8.first == UInt8(ascii: "#") ? utf8.dropFirst() : utf8[...]
        let allowed = Set("-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=@,.;".utf8)
        let expected = !utf8.isEmpty && utf8.count <= PusherChannelName.defaultMaxLength && !body.isEmpty
            && body.allSatisfy { allowed.contains($0) }
        #expect(PusherChannelName.isValid(name) == expected)
        if let channel = try? PusherChannelName(name) {
            #expect(channel.kind == PusherChannelName.kind(of: name))
            #expect(channel.isCache == PusherChannelName.isCacheChannel(name))
        }
    }

    static func pusherHTTPAPI(_ input: [UInt8]) {
        var parts: [ArraySlice<UInt8>] = []
        var rest = input[...]
        while parts.count < 3, let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            parts.append(rest[..<newline])
            rest = rest[(newline + 1)...]
        }
        parts.append(rest)
        while parts.count < 4 { parts.append([]) }
        let method = String(decoding: parts[0], as: UTF8.self)
        let path = PusherHTTPAPI.percentDecode(String(decoding: parts[1], as: UTF8.self))
        let query = PusherHTTPAPI.parseQuery(String(decoding: parts[2], as: UTF8.self))
        let body = ByteBuffer(bytes: parts[3])
        let now: Int64 = 1_700_000_000
        _ = try? PusherSignature.verifyRequest(method: method, path: path, query: query, body: body, key: "app-key", secret: "app-secret", now: now)
        let signed = PusherSignature.signedQuery(method: method, path: path, query: query, body: body, key: "app-key", secret: "app-secret", timestamp: now)
        #expect(throws: Never.self) {
            try PusherSignature.verifyRequest(method: method, path: path, query: signed, body: body, key: "app-key", secret: "app-secret", now: now)
        }
        var events: [PusherTriggerRequest] = []
        if let event = try? PusherHTTPAPI.parseEvent(body: body) { events.append(event) }
        if let batch = try? PusherHTTPAPI.parseBatch(body: body) { events += batch }
        for event in events {
            #expect(!event.name.isEmpty && !event.channels.isEmpty)
            for channel in event.channels {
                #expect(PusherChannelName.isValid(channel))
                let frame = PusherMessage.event(event.name, channel: channel, data: event.data)
                #expect((try? PusherMessage(frame: frame))?.event == event.name)
            }
        }
    }

    static func laravelPayload(_ input: [UInt8]) {
        let broadcast = try? LaravelBroadcast(payload: ByteBuffer(bytes: input))
        let offset = try? LaravelBroadcast(payload: offsetBuffer(input))
        #expect(offset?.event == broadcast?.event && offset?.data == broadcast?.data && offset?.socket == broadcast?.socket)
        guard let broadcast else { return }
        let again = try? LaravelBroadcast(payload: broadcast.encoded())
        #expect(again?.event == broadcast.event && again?.data == broadcast.data && again?.socket == broadcast.socket)
        guard let data = try? JSONReader.parse(broadcast.data) else { return #expect(Bool(false), "data is not JSON") }
        var packet = ByteBuffer()
        SocketIOCodec.writeChannelEvent(event: broadcast.event, channel: "orders.1", data: broadcast.data, into: &packet)
        packet.moveReaderIndex(forwardBy: 2)  // "42"
        #expect((try? JSONReader.parse(packet)) == .array([.string(broadcast.event), .string("orders.1"), data]))
        let frame = PusherMessage.event(broadcast.event, channel: "orders.1", data: broadcast.data)
        #expect((try? PusherMessage(frame: frame, maxEventNameLength: .max))?.event == broadcast.event)
    }
}

// MARK: - Corpus inputs

/// The inputs of each target's corpus that reach the most code (libFuzzer's feature count after
/// a 120 s run), generated by `Fuzz/corpus-to-swift.py`.
enum FuzzCorpus {
    // GENERATED-CORPUS-BEGIN
    static let json: [FuzzCase] = [
        FuzzCase("FuzzJSON/d1854cae891e (1 bytes)", "n"),
        FuzzCase("FuzzJSON/356a192b7913 (1 bytes)", "1"),
        FuzzCase("FuzzJSON/820dac71c95d (7 bytes)", "{\"\":{}}"),
        FuzzCase("FuzzJSON/8d883f1577ca (1 bytes)", "\u{8}"),
        FuzzCase("FuzzJSON/bf21a9e8fbc5 (2 bytes)", "{}"),
        FuzzCase("FuzzJSON/f629ae44b7b3 (3 bytes)", "[1]"),
        FuzzCase("FuzzJSON/726014047f98 (20 bytes)", "{\"et\":\"\\\\A\",\"\":\"\\\\\"}"),
        FuzzCase("FuzzJSON/7afdca80c1b9 (45 bytes)", bytes: [
            0x7B, 0x22, 0x65, 0x61, 0x22, 0x3A, 0x7B, 0x22, 0x73, 0x22, 0x3A, 0x5B, 0x22, 0x64, 0x22, 0x2C,
            0x22, 0x64, 0x22, 0x2C, 0x22, 0x62, 0x22, 0x5D, 0x2C, 0x22, 0xF5, 0x6B, 0x22, 0x3A, 0x74, 0x72,
            0x75, 0x65, 0x2C, 0x22, 0x6E, 0x22, 0x3A, 0x6E, 0x75, 0x6C, 0x6C, 0x7D, 0x7D,
        ]),
    ]

    static let engineIOv4: [FuzzCase] = [
        FuzzCase("FuzzEngineIOv4/upgrade (1 bytes)", "5"),
        FuzzCase("FuzzEngineIOv4/7fd88c329b63 (1 bytes)", "\u{1E}"),
        FuzzCase("FuzzEngineIOv4/871e360a5262 (3 bytes)", "4\u{1E}5"),
        FuzzCase("FuzzEngineIOv4/23a5fd0ea5ac (2 bytes)", "b3"),
        FuzzCase("FuzzEngineIOv4/053ad29869f2 (5 bytes)", "b\u{1E}b\u{1E}b"),
        FuzzCase("FuzzEngineIOv4/97f00f8908f8 (25 bytes)", "4Q\u{1E}bee\u{1E}be\u{1E}bA\u{1E}b\u{1E}b\u{1E}be\u{1E}bA\u{1E}b3"),
        FuzzCase("FuzzEngineIOv4/1433b9ff4c94 (53 bytes)", "b4Qe\u{1E}4\u{1E}be\u{1E}bAQ\u{1E}be\u{1E}bA\u{1E}be\u{1E}bA\u{1E}bbe\u{1E}bA\u{1E}bA\u{1E}bbA\u{1E}b\u{1E}bQ\u{1E}bA\u{1E}bA\u{1E}bI"),
        FuzzCase("FuzzEngineIOv4/7f95c1d9f297 (3 bytes)", "5\u{1E}\u{1}"),
    ]

    static let engineIOv3: [FuzzCase] = [
        FuzzCase("FuzzEngineIOv3/2ce70a5ff3cf (3 bytes)", "1:4"),
        FuzzCase("FuzzEngineIOv3/a9269ea158fb (4 bytes)", bytes: [
            0x01, 0x01, 0xFF, 0x01,
        ]),
        FuzzCase("FuzzEngineIOv3/5eb20eacdec7 (40 bytes)", "2:b42:b42:b42:b42:b42:b42:b42:b42:b42:b4"),
        FuzzCase("FuzzEngineIOv3/c1dfd96eea8c (1 bytes)", "6"),
        FuzzCase("FuzzEngineIOv3/97ad1943eab5 (6 bytes)", "1:11:1"),
        FuzzCase("FuzzEngineIOv3/7535664fe092 (85 bytes)", "001:11:001:11:100001:11:001:11:0001:11:001:11:001:11:100001:11:001:11:001:11:101:11:1"),
        FuzzCase("FuzzEngineIOv3/1bd851d81e85 (9 bytes)", "1:11:11:1"),
        FuzzCase("FuzzEngineIOv3/dddbd443b45a (8 bytes)", "2:b42:b4"),
    ]

    static let socketIO: [FuzzCase] = [
        FuzzCase("FuzzSocketIO/b6589fc6ab0d (1 bytes)", "0"),
        FuzzCase("FuzzSocketIO/1b6453892473 (1 bytes)", "4"),
        FuzzCase("FuzzSocketIO/51a3c9ecc874 (4 bytes)", "3[1]"),
        FuzzCase("FuzzSocketIO/335d05e56d40 (3 bytes)", "4{}"),
        FuzzCase("FuzzSocketIO/5f1b370e8fee (2 bytes)", "4\""),
        FuzzCase("FuzzSocketIO/7e465ceb326f (6 bytes)", "3[0,0]"),
        FuzzCase("FuzzSocketIO/dba7d16b5f95 (10 bytes)", "3[2,2,2,1]"),
        FuzzCase("FuzzSocketIO/3af189104c0c (10 bytes)", "0{\"t\":\"k\"}"),
    ]

    static let webSocketFrame: [FuzzCase] = [
        FuzzCase("FuzzWebSocketFrame/c3d1e10736dd (2 bytes)", bytes: [
            0x9D, 0x9D,
        ]),
        FuzzCase("FuzzWebSocketFrame/a3ad8fedec3b (3 bytes)", ".\u{0}\u{3}"),
        FuzzCase("FuzzWebSocketFrame/ef9e18dbeb95 (10 bytes)", "\u{3}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}"),
        FuzzCase("FuzzWebSocketFrame/f47e6ff3e9e2 (4 bytes)", bytes: [
            0x02, 0xFF, 0x2D, 0x2A,
        ]),
        FuzzCase("FuzzWebSocketFrame/header-lengt (10 bytes)", "\u{3}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}\u{0}\u{0}"),
        FuzzCase("FuzzWebSocketFrame/59aeda54f88a (20 bytes)", bytes: [
            0x02, 0x0F, 0x91, 0x91, 0x71, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFE, 0xC3, 0xFF, 0xF7,
        ]),
        FuzzCase("FuzzWebSocketFrame/b712aaef794f (4 bytes)", bytes: [
            0xFA, 0x28, 0xFA, 0xFA,
        ]),
        FuzzCase("FuzzWebSocketFrame/6480917a2a3f (5 bytes)", bytes: [
            0x0A, 0x00, 0x00, 0xA9, 0x00,
        ]),
    ]

    static let pusherMessage: [FuzzCase] = [
        FuzzCase("FuzzPusherMessage/e472f0971eb5 (15 bytes)", "{\"user_id\":\"8\"}"),
        FuzzCase("FuzzPusherMessage/f000321a75e4 (56 bytes)", "{\"event\":\"puignin\",\"data\":{\"auth\":\"a\",\"user_data\":\"{}\"}}"),
        FuzzCase("FuzzPusherMessage/2d99877b8a90 (52 bytes)", "{\"event\":\"cli\",\"channel\":\"hat\",\"dat\":\"ng\",\"data\":{}}"),
        FuzzCase("FuzzPusherMessage/1b6453892473 (1 bytes)", "4"),
        FuzzCase("FuzzPusherMessage/5fc747652d98 (119 bytes)", bytes: [
            0x7B, 0x22, 0x65, 0x76, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0x70, 0x79, 0x3A, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x73, 0x68, 0x65, 0x72, 0x41, 0x73, 0x69, 0x67,
            0x6E, 0x69, 0x6E, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3A, 0x7B, 0x22, 0x61, 0x75,
            0x74, 0x68, 0x22, 0x3A, 0x22, 0x61, 0x75, 0x73, 0x73, 0x91, 0x70, 0x66, 0x61, 0x6C, 0x73, 0x65,
            0x61, 0x61, 0x22, 0x2C, 0x22, 0x75, 0x73, 0x65, 0x72, 0x5F, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3A,
            0x22, 0x7B, 0x5C, 0x22, 0x69, 0xFF, 0xFF, 0xFF, 0xFF, 0x22, 0x2C, 0x22, 0x63, 0x68, 0x61, 0x6E,
            0x6E, 0x65, 0x6C, 0x22, 0x3A, 0x22, 0x70, 0x72, 0x69, 0x76, 0x61, 0x74, 0x65, 0x2D, 0x6F, 0x72,
            0x64, 0x65, 0x72, 0x73, 0x22, 0x7D, 0x7D,
        ]),
        FuzzCase("FuzzPusherMessage/af51e5c13abb (14 bytes)", "{\"event\":\"{[\"}"),
        FuzzCase("FuzzPusherMessage/90779f33f736 (57 bytes)", bytes: [
            0x7B, 0x22, 0x65, 0x76, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0x63, 0x6C, 0x69, 0x65, 0x6E, 0x74,
            0xCB, 0x74, 0x79, 0x70, 0x69, 0x6E, 0x67, 0x22, 0x2C, 0x22, 0x63, 0x68, 0x61, 0x6E, 0x6E, 0x65,
            0x6C, 0x22, 0x3A, 0x22, 0x70, 0x72, 0x61, 0x74, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22,
            0x3A, 0x7B, 0x22, 0x22, 0x3A, 0x22, 0x22, 0x7D, 0x7D,
        ]),
        FuzzCase("FuzzPusherMessage/5e2708949a35 (63 bytes)", bytes: [
            0x7B, 0x22, 0x75, 0x73, 0x65, 0x72, 0x5F, 0x69, 0x64, 0x22, 0x3A, 0x22, 0x75, 0x31, 0x74, 0x5C,
            0x62, 0x5C, 0x5C, 0x5C, 0x72, 0x30, 0x65, 0x76, 0xC2, 0x6A, 0x74, 0x5C, 0x5C, 0x21, 0x74, 0x5C,
            0x62, 0x5C, 0x5C, 0x5C, 0x72, 0x5C, 0x5C, 0x66, 0x22, 0x2C, 0x22, 0x82, 0x6F, 0x30, 0x22, 0x3A,
            0x7B, 0x22, 0x6E, 0x61, 0x6D, 0x65, 0x22, 0x3A, 0x22, 0x42, 0x6F, 0x62, 0x22, 0x7D, 0x7D,
        ]),
    ]

    static let pusherChannelName: [FuzzCase] = [
        FuzzCase("FuzzPusherChannelName/090cbc46c3a1 (1 bytes)", bytes: [
            0x8C,
        ]),
        FuzzCase("FuzzPusherChannelName/985118fa33b7 (56 bytes)", bytes: [
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0x63,
        ]),
        FuzzCase("FuzzPusherChannelName/5c10b5b2cd67 (1 bytes)", ","),
        FuzzCase("FuzzPusherChannelName/bc30a47b40dc (17 bytes)", "#server-to-user-2"),
        FuzzCase("FuzzPusherChannelName/0e47fd0c0837 (2 bytes)", bytes: [
            0x2C, 0xFA,
        ]),
        FuzzCase("FuzzPusherChannelName/d08f88df745f (1 bytes)", "#"),
        FuzzCase("FuzzPusherChannelName/01d646b8ee50 (57 bytes)", bytes: [
            0x77, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0x35, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0xF6, 0x63,
        ]),
        FuzzCase("FuzzPusherChannelName/31b6ebff1eac (3 bytes)", bytes: [
            0x69, 0x5F, 0xDC,
        ]),
    ]

    static let pusherHTTPAPI: [FuzzCase] = [
        FuzzCase("FuzzPusherHTTPAPI/4345cb1fa278 (1 bytes)", "%"),
        FuzzCase("FuzzPusherHTTPAPI/3f89ce0ecf46 (111 bytes)", "POST\u{A}/apps/1/batch_events\u{A}5957452e8559391d0e\u{A}{\"batch\":[{\"name\":\"a\",\"channel\":\"enc2\",\"data\":{\"k\":[1,2888888]}}]}"),
        FuzzCase("FuzzPusherHTTPAPI/932d4cb81ac1 (5 bytes)", "\u{A}\u{A}\u{A}\u{A}T"),
        FuzzCase("FuzzPusherHTTPAPI/b6bce2f753e6 (127 bytes)", "POST\u{A}/apps/1/events\u{A}auth_key=app919d5fe49a452\u{A}{\"name\":\"order-shipped\",\"channels\":[\"orde.s\",\"privateers.1\"],\"data\":\"{\\\"id\\\":1}\"}"),
        FuzzCase("FuzzPusherHTTPAPI/45d35c87635f (65 bytes)", bytes: [
            0x50, 0x70, 0x73, 0x5C, 0x6E, 0x2F, 0x31, 0x2F, 0x39, 0x62, 0x61, 0x74, 0x63, 0x68, 0x5F, 0x65,
            0x76, 0x65, 0x6E, 0x91, 0x74, 0x73, 0x0A, 0x61, 0x75, 0x74, 0x65, 0x0A, 0x68, 0x22, 0xB0, 0xB0,
            0x65, 0x0A, 0x7B, 0x22, 0x62, 0x61, 0x74, 0x63, 0x68, 0x22, 0x3A, 0x5B, 0x7B, 0x22, 0x35, 0x37,
            0x61, 0x22, 0x3A, 0x7B, 0x22, 0x6B, 0x22, 0x3A, 0x5B, 0x32, 0x2C, 0x32, 0x5D, 0x7D, 0x7D, 0x5D,
            0x7D,
        ]),
        FuzzCase("FuzzPusherHTTPAPI/97b3465b8445 (286 bytes)", bytes: [
            0x50, 0x4F, 0x53, 0x54, 0x0A, 0x2F, 0x61, 0x70, 0x70, 0x73, 0x2F, 0x31, 0x2F, 0x62, 0x61, 0x74,
            0x63, 0x68, 0x5F, 0xA4, 0x76, 0x65, 0x6E, 0x74, 0x73, 0x0A, 0x61, 0x75, 0x74, 0x68, 0x5F, 0x6B,
            0x65, 0x79, 0x3D, 0x61, 0x70, 0x70, 0x2D, 0x6B, 0x65, 0x79, 0x26, 0x61, 0x75, 0x65, 0x36, 0x62,
            0x34, 0x66, 0x66, 0x62, 0x62, 0x61, 0x38, 0x39, 0x62, 0x63, 0x38, 0x64, 0x37, 0x35, 0x39, 0x33,
            0x39, 0x31, 0x64, 0x30, 0x65, 0x0A, 0x7B, 0x22, 0x62, 0x61, 0x74, 0x63, 0x68, 0x22, 0x3A, 0x5B,
            0x7B, 0x22, 0x6E, 0x61, 0x6D, 0x65, 0x22, 0x3A, 0x22, 0x61, 0x22, 0x2C, 0x22, 0x63, 0x68, 0x61,
            0x6E, 0x6E, 0x65, 0x6C, 0x22, 0x3A, 0x22, 0x63, 0x31, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61,
            0x22, 0x3A, 0x22, 0x78, 0x22, 0x7D, 0x2C, 0x7B, 0x22, 0x6E, 0x61, 0x6D, 0x65, 0x22, 0x3A, 0x22,
            0x62, 0x22, 0x2C, 0x22, 0x63, 0x68, 0x61, 0x6E, 0x6E, 0x65, 0x6C, 0x22, 0x3A, 0x22, 0x70, 0x72,
            0x65, 0x73, 0x65, 0x6E, 0x63, 0x65, 0x2D, 0x63, 0x34, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61,
            0x22, 0x3A, 0x7B, 0x22, 0x6B, 0x32, 0x3E, 0x39, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1,
            0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0x5B, 0xE1, 0xE1, 0xE1, 0xE1,
            0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0xE1, 0x6E, 0x61, 0x6D, 0x65, 0x22, 0x3A, 0x22, 0x62, 0x22, 0x2C,
            0x22, 0x63, 0x68, 0x61, 0x6E, 0x6E, 0x65, 0x6C, 0x22, 0x3A, 0x22, 0x70, 0x72, 0x65, 0x73, 0x65,
            0x6E, 0x63, 0x65, 0x2D, 0x63, 0x34, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x64, 0x65, 0x30, 0x30,
            0x72, 0x73, 0x69, 0x6F, 0x6E, 0x3D, 0x31, 0x2E, 0x30, 0x26, 0x62, 0x6F, 0x64, 0x79, 0x5F, 0x6D,
            0x64, 0xE1, 0x65, 0x36, 0x36, 0x30, 0x35, 0x50, 0x4F, 0x53, 0x65, 0x72, 0x73, 0x69, 0x6F, 0x6E,
            0x3D, 0x31, 0x2E, 0x22, 0x3A, 0x5B, 0x30, 0x2C, 0x32, 0x5D, 0x7D, 0x7D, 0x5D, 0x7D,
        ]),
        FuzzCase("FuzzPusherHTTPAPI/encoded-quer (132 bytes)", "GET\u{A}/apps/1/channels/presence%2Droom/users\u{A}auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0&a=%41%zz+b&auth_signature=00\u{A}"),
        FuzzCase("FuzzPusherHTTPAPI/e4c97abd9ee7 (97 bytes)", bytes: [
            0x50, 0x4F, 0x53, 0x54, 0x0A, 0x2F, 0x65, 0x2E, 0x74, 0x73, 0x0A, 0x61, 0x75, 0x74, 0x68, 0x2D,
            0x6B, 0x65, 0x79, 0x26, 0x61, 0x75, 0x39, 0x31, 0x64, 0x30, 0x65, 0x0A, 0x7B, 0x22, 0x62, 0x61,
            0x74, 0x63, 0x68, 0x22, 0x3A, 0x5B, 0x7B, 0x22, 0x6E, 0x61, 0x6D, 0x65, 0x22, 0x3A, 0x22, 0x61,
            0x3D, 0x31, 0x37, 0x33, 0x37, 0x63, 0xFF, 0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x5C, 0x5C, 0x2D, 0x63, 0x32, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74,
            0x61, 0x22, 0x3A, 0x7B, 0x22, 0x6B, 0x22, 0x3A, 0x5B, 0x36, 0x36, 0x32, 0x5D, 0x7D, 0x7D, 0x5D,
            0x7D,
        ]),
    ]

    static let laravelPayload: [FuzzCase] = [
        FuzzCase("FuzzLaravelPayload/cdd0cdcb92cd (15 bytes)", "{\"event\":\"\\tr\"}"),
        FuzzCase("FuzzLaravelPayload/60ba4b2daa4e (1 bytes)", "{"),
        FuzzCase("FuzzLaravelPayload/f33932d5a673 (109 bytes)", bytes: [
            0x7B, 0x22, 0x65, 0x76, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0x41, 0x73, 0x64, 0x22, 0x2C, 0x22,
            0x64, 0x61, 0x74, 0x61, 0x22, 0x3A, 0x7B, 0x22, 0x6F, 0x72, 0xB4, 0x65, 0x72, 0x6E, 0x74, 0x22,
            0x3A, 0x22, 0x63, 0x68, 0x73, 0x61, 0x67, 0x65, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22,
            0x3A, 0x7B, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3A, 0x22, 0x68, 0xC3, 0xA9, 0x3F, 0x64, 0x65,
            0x30, 0x30, 0x22, 0x7D, 0x2C, 0x22, 0x73, 0x22, 0x3A, 0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x31,
            0x2C, 0x22, 0x74, 0x6F, 0x74, 0x61, 0x6C, 0x22, 0x3A, 0x39, 0x2E, 0x35, 0x7D, 0x7D, 0x2C, 0x22,
            0x73, 0x6F, 0x63, 0x6B, 0x65, 0x74, 0x22, 0x3A, 0x6E, 0x75, 0x6C, 0x6C, 0x7D,
        ]),
        FuzzCase("FuzzLaravelPayload/10f48def1e71 (47 bytes)", " { \"event\": \"E\" , \"data\" : [ \u{D} \u{D}\u{D}\u{D}2,\u{A}\u{A} \u{D} 1 ] } "),
        FuzzCase("FuzzLaravelPayload/612fb58a33a7 (35 bytes)", " { \"event\":\"E\" , \"data\" : [\u{9}0   ]} "),
        FuzzCase("FuzzLaravelPayload/c65519975a50 (48 bytes)", " { \"event\" : \"E\" ,\"data\" : [\"ta\" ] , \"t\" : \"\" } "),
        FuzzCase("FuzzLaravelPayload/d1a8dc767ff2 (223 bytes)", "{\"event\":\"csage\",\"data\":{\"nt\":\"csage\",\"data\":{\"data\":{\"text\":\"h\u{E9}\\u15e9 \\ud83d]\\ude00\"},\"stext\":\"h\u{E9}\\u00e9 \\ud83d]\\ude00\"},\"sodata\":{\"text\":\"h\u{E9}\\u15e9 \\ud83d]\\ude00\"},\"stext\":\"h\u{E9}\\u00e9 \\ud83d]\\ude00\"},\"socket\":\"1234.5678\"}"),
        FuzzCase("FuzzLaravelPayload/35e8b994b06e (236 bytes)", bytes: [
            0x7B, 0x22, 0x65, 0x76, 0x65, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0x70, 0x65, 0x70, 0x68, 0x72, 0x22,
            0x2C, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3A, 0x7B, 0x22, 0x6F, 0x72, 0x64, 0x65, 0x74, 0x22,
            0x3A, 0x22, 0x70, 0x65, 0x70, 0x68, 0x72, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3A,
            0x7B, 0x22, 0x6F, 0x72, 0x64, 0x65, 0x72, 0x22, 0x3A, 0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x30,
            0x2C, 0x22, 0x74, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x72,
            0x64, 0x25, 0x53, 0x69, 0x64, 0x70, 0x65, 0x70, 0x68, 0x72, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74,
            0x61, 0x22, 0x3A, 0x7B, 0x22, 0x72, 0x22, 0x3A, 0x7B, 0x22, 0x69, 0x6C, 0x22, 0x3A, 0x30, 0x2E,
            0x35, 0x7D, 0x7D, 0x2C, 0x22, 0x73, 0x6F, 0x63, 0x6B, 0x65, 0x61, 0x6C, 0x22, 0x3A, 0x30, 0x2E,
            0x35, 0x7D, 0x7D, 0x2C, 0x22, 0x73, 0x72, 0x22, 0x3A, 0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x30,
            0x2C, 0x22, 0x74, 0x6E, 0x74, 0x22, 0x3A, 0x22, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x72,
            0x64, 0x65, 0x53, 0x69, 0x64, 0x70, 0x65, 0x70, 0x68, 0x72, 0x22, 0x2C, 0x22, 0x64, 0x61, 0x74,
            0x61, 0x22, 0x3A, 0x7B, 0x22, 0x72, 0x22, 0x3A, 0x7B, 0x22, 0x99, 0x63, 0x22, 0x3A, 0x30, 0x2C,
            0x22, 0x74, 0x90, 0x74, 0x61, 0x6C, 0x22, 0x3A, 0x30, 0x2E, 0x35, 0x7D, 0x7D, 0x2C, 0x22, 0x73,
            0x6F, 0x63, 0x6B, 0x65, 0x61, 0x6C, 0x22, 0x3A, 0x30, 0x2E, 0x35, 0x7D, 0x7D, 0x2C, 0x22, 0x73,
            0x6F, 0x63, 0x6B, 0x65, 0x74, 0x22, 0x3A, 0x6E, 0x75, 0x6C, 0x6C, 0x7D,
        ]),
    ]
    // GENERATED-CORPUS-END
}
