import HeraldRedis
import NIOCore
import Testing

@Suite("HiredisReader and RedisCommandEncoder")
struct HiredisReaderTests {
    /// A stream of replies of every kind, with what each decodes to.
    static let stream: [UInt8] = Array((
        "+OK\r\n"
        + "-ERR wrong number of arguments\r\n"
        + ":42\r\n"
        + ":-7\r\n"
        + "$5\r\nhello\r\n"
        + "$-1\r\n"
        + "*-1\r\n"
        + "*3\r\n*2\r\n$1\r\na\r\n:1\r\n$0\r\n\r\n*0\r\n"
        + "$8\r\na\r\nb\r\n\r\n\r\n"
        + "*3\r\n$8\r\npmessage\r\n$1\r\n*\r\n*1\r\n+nested\r\n"
    ).utf8) + [UInt8(ascii: "$"), UInt8(ascii: "3"), 13, 10, 0x00, 0xFF, 0x7F, 13, 10]

    static let expected: [RESPValue] = [
        .simpleString("OK"),
        .error("ERR wrong number of arguments"),
        .integer(42),
        .integer(-7),
        .bulkString(ByteBuffer(string: "hello")),
        .null,
        .null,
        .array([.array([.bulkString(ByteBuffer(string: "a")), .integer(1)]), .bulkString(ByteBuffer()), .array([])]),
        .bulkString(ByteBuffer(string: "a\r\nb\r\n\r\n")),
        .array([.bulkString(ByteBuffer(string: "pmessage")), .bulkString(ByteBuffer(string: "*")), .array([.simpleString("nested")])]),
        .bulkString(ByteBuffer(bytes: [0x00, 0xFF, 0x7F])),
    ]

    /// Feeds `chunks` one at a time, draining complete replies after each.
    static func decode(_ chunks: [[UInt8]]) throws -> [RESPValue] {
        let reader = try HiredisReader()
        var replies: [RESPValue] = []
        for chunk in chunks {
            try reader.feed(ByteBuffer(bytes: chunk))
            while let reply = try reader.next() { replies.append(reply) }
        }
        #expect(try reader.next() == nil)
        return replies
    }

    @Test("all at once")
    func wholeStream() throws {
        #expect(try Self.decode([Self.stream]) == Self.expected)
    }

    @Test("byte by byte")
    func byteByByte() throws {
        #expect(try Self.decode(Self.stream.map { [$0] }) == Self.expected)
    }

    @Test("fixed chunk sizes", arguments: [2, 3, 4, 5, 7, 11, 16, 33])
    func chunked(size: Int) throws {
        let chunks = stride(from: 0, to: Self.stream.count, by: size).map { Array(Self.stream[$0..<min($0 + size, Self.stream.count)]) }
        #expect(try Self.decode(chunks) == Self.expected)
    }

    @Test("every split into two pieces, and seeded random splits")
    func arbitrarySplits() throws {
        for cut in 0...Self.stream.count {
            #expect(try Self.decode([Array(Self.stream[..<cut]), Array(Self.stream[cut...])]) == Self.expected)
        }
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<200 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < Self.stream.count {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                let n = Int(seed >> 59) + 1  // 1...32
                chunks.append(Array(Self.stream[i..<min(i + n, Self.stream.count)]))
                i += n
            }
            #expect(try Self.decode(chunks) == Self.expected)
        }
    }

    @Test("an incomplete reply yields nothing until completed")
    func incomplete() throws {
        let reader = try HiredisReader()
        try reader.feed(ByteBuffer(string: "$5\r\nhel"))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: "lo\r"))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: "\n:1"))
        #expect(try reader.next() == .bulkString(ByteBuffer(string: "hello")))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer())
        try reader.feed(ByteBuffer(string: "\r\n"))
        #expect(try reader.next() == .integer(1))
    }

    @Test("garbage is a protocol error")
    func garbage() throws {
        let reader = try HiredisReader()
        try reader.feed(ByteBuffer(string: "!bad\r\n"))
        do {
            _ = try reader.next()
            Issue.record("expected a protocol error")
        } catch {
            #expect(error.kind == .protocolError)
            #expect(error.message.contains("Protocol error"))
        }
    }

    @Test("RESPValue accessors")
    func accessors() {
        #expect(RESPValue.simpleString("OK").string == "OK")
        #expect(RESPValue.bulkString(ByteBuffer(string: "12")).int == 12)
        #expect(RESPValue.integer(3).string == "3")
        #expect(RESPValue.null.string == nil)
        #expect(RESPValue.error("ERR").int == nil)
    }

    static func encoded(_ arguments: [ByteBuffer]) -> [UInt8] {
        var out = ByteBuffer()
        RedisCommandEncoder.encode(arguments, into: &out)
        return Array(out.readableBytesView)
    }

    @Test("command encoding is exact RESP multi-bulk")
    func encoder() {
        var out = ByteBuffer(string: "existing|")
        RedisCommandEncoder.encode(["SET", "key", "value"], into: &out)
        #expect(String(buffer: out) == "existing|*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")

        var ping = ByteBuffer()
        RedisCommandEncoder.encode(["PING"], into: &ping)
        #expect(String(buffer: ping) == "*1\r\n$4\r\nPING\r\n")

        #expect(Self.encoded([ByteBuffer(string: "SET"), ByteBuffer(string: "k"), ByteBuffer()])
            == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".utf8))
        #expect(Self.encoded([ByteBuffer(), ByteBuffer()]) == Array("*2\r\n$0\r\n\r\n$0\r\n\r\n".utf8))

        let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x24]
        #expect(Self.encoded([ByteBuffer(string: "PUBLISH"), ByteBuffer(string: "ch é"), ByteBuffer(bytes: binary)])
            == Array("*3\r\n$7\r\nPUBLISH\r\n$5\r\nch é\r\n$5\r\n".utf8) + binary + [13, 10])
    }

    @Test("encoded commands decode back to their arguments")
    func encoderRoundTrip() throws {
        let arguments = [ByteBuffer(string: "SET"), ByteBuffer(bytes: [0, 1, 13, 10]), ByteBuffer(string: String(repeating: "x", count: 10_000))]
        var out = ByteBuffer()
        RedisCommandEncoder.encode(arguments, into: &out)
        let reader = try HiredisReader()
        try reader.feed(out)
        #expect(try reader.next() == .array(arguments.map { .bulkString($0) }))
    }
}
