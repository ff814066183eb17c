import HeraldProtocols
import NIOCore
import Testing

@Suite("WebSocket framing and Base64")
struct FramingTests {
    static func header(_ length: Int, _ opcode: WebSocketFraming.Opcode = .text) -> [UInt8] {
        var out = ByteBuffer()
        WebSocketFraming.writeHeader(opcode: opcode, length: length, into: &out)
        return bytes(out)
    }

    @Test("header length encodings at the 7/16/64-bit boundaries")
    func headers() {
        #expect(Self.header(0) == [0x81, 0x00])
        #expect(Self.header(125) == [0x81, 0x7D])
        #expect(Self.header(126) == [0x81, 0x7E, 0x00, 0x7E])
        #expect(Self.header(65535) == [0x81, 0x7E, 0xFF, 0xFF])
        #expect(Self.header(65536) == [0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00])
        #expect(Self.header(5, .binary) == [0x82, 0x05])
        #expect(Self.header(0, .ping) == [0x89, 0x00])
        #expect(Self.header(1, .pong) == [0x8A, 0x01])
    }

    @Test("frame() is header plus payload")
    func frame() {
        #expect(bytes(WebSocketFraming.frame(opcode: .text, payload: buffer("42"))) == [0x81, 0x02, 0x34, 0x32])
        let big = ByteBuffer(repeating: 0x61, count: 70_000)
        let framed = WebSocketFraming.frame(opcode: .binary, payload: big)
        #expect(framed.readableBytes == 70_010)
        #expect(Array(bytes(framed).prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70])
    }

    @Test("closeFrame carries the code big-endian and a reason cut to 123 bytes")
    func closeFrame() {
        #expect(bytes(WebSocketFraming.closeFrame(code: 1000, reason: "bye")) == [0x88, 0x05, 0x03, 0xE8, 0x62, 0x79, 0x65])
        #expect(bytes(WebSocketFraming.closeFrame(code: 4001, reason: "")) == [0x88, 0x02, 0x0F, 0xA1])
        let long = WebSocketFraming.closeFrame(code: 1001, reason: String(repeating: "x", count: 300))
        #expect(long.readableBytes == 127)
        #expect(Array(bytes(long).prefix(4)) == [0x88, 0x7D, 0x03, 0xE9])
    }

    @Test("Base64 encoding, padded", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func encode(_ pair: (String, String)) {
        #expect(Base64.encode(Array(pair.0.utf8)) == pair.1)
        #expect(Base64.decode(Array(pair.1.utf8)) == Array(pair.0.utf8))
    }

    @Test("Base64 binary bytes and URL-safe decoding")
    func binary() {
        #expect(Base64.encode([0xFB, 0xFF, 0xBF]) == "+/+/")
        #expect(Base64.encode([0x00, 0x00]) == "AAA=")
        #expect(Base64.decode(Array("-_-_".utf8)) == [0xFB, 0xFF, 0xBF])
        #expect(Base64.decode(Array("+/+/".utf8)) == [0xFB, 0xFF, 0xBF])
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.decode(Array(Base64.encode(all).utf8)) == all)
        // The WebSocket accept key example from RFC 6455 §1.3 (the SHA-1 digest, base64-encoded).
        let digest: [UInt8] = [0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38, 0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea]
        #expect(Base64.encode(digest) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test("Base64 rejects invalid input")
    func invalid() {
        #expect(Base64.decode(Array("Zm9v!".utf8)) == nil)
        #expect(Base64.decode(Array("Zg=a".utf8)) == nil)
        #expect(Base64.decode(Array("Zg===".utf8)) == nil)
        #expect(Base64.decode(Array("Zm 9v".utf8)) == nil)
    }
}
