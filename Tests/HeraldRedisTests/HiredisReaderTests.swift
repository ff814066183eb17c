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

/// The guard in front of hiredis (issue #7, `Fuzz/Corpus/FuzzRESP/oom-multibulk-count`): hiredis
/// 0.14 allocates an array's elements on its header alone, so a header such as `*2000000000`
/// from a broken or hostile server aborted the relay for lack of memory.
@Suite("HiredisReader limits on what Redis sends")
struct HiredisReaderLimitTests {
    /// What a reader gives for `chunks` fed one at a time, replies drained after each: the
    /// replies, and the error that stopped it if any.
    static func read(_ chunks: [[UInt8]], limits: RESPLimits = .default) throws -> (replies: [RESPValue], error: RedisError?) {
        let reader = try HiredisReader(limits: limits)
        var replies: [RESPValue] = []
        do {
            for chunk in chunks {
                try reader.feed(ByteBuffer(bytes: chunk))
                while let reply = try reader.next() { replies.append(reply) }
            }
        } catch {
            return (replies, error)
        }
        return (replies, nil)
    }

    /// `stream` cut in two at every offset, byte by byte, and whole.
    static func everyCut(_ stream: [UInt8]) -> [[[UInt8]]] {
        [[stream], stream.map { [$0] }] + (0...stream.count).map { [Array(stream[..<$0]), Array(stream[$0...])] }
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let subscribed: [RESPValue] = [.array([.bulkString(ByteBuffer(string: "psubscribe")), .bulkString(ByteBuffer(string: "*")), .integer(1)])]
    static let subscribedBytes = bytes("*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n")

    @Test("the fuzzer's known issue: *2000000000 is refused before hiredis allocates, at every cut")
    func knownIssue() throws {
        // The file's first byte is FuzzRESP's control byte (where to cut); the rest is the stream.
        let file: [UInt8] = [0x00, 0x2A, 0x32, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x0D, 0x0A]
        let hostile = Array(file.dropFirst())
        let message = "Redis sent an array of 2000000000 elements (more than the limit 1048576)"
        for chunks in Self.everyCut(Self.subscribedBytes + hostile + Self.bytes(":1\r\n")) {
            let (replies, error) = try Self.read(chunks)
            // The replies before the header are all returned, however the stream is cut.
            #expect(replies == Self.subscribed)
            #expect(error == RedisError(.protocolError, message), "cut \(chunks.map(\.count))")
        }
    }

    @Test("feeding after the refusal throws the same error; nothing more reaches hiredis")
    func afterRefusal() throws {
        let reader = try HiredisReader()
        try reader.feed(ByteBuffer(bytes: Self.bytes("*4000000000\r\n")))
        #expect(throws: RedisError.self) { try reader.next() }
        #expect(throws: RedisError(.protocolError, "Redis sent an array of 4000000000 elements (more than the limit 1048576)")) {
            try reader.feed(ByteBuffer(bytes: Self.bytes(":1\r\n")))
        }
    }

    @Test("array limits: at the limit read, one more refused, nested arrays counted together")
    func arrayLimits() throws {
        // The default limit itself is accepted (hiredis allocates 8 MB and waits for elements).
        #expect(try Self.read([Self.bytes("*1048576\r\n:1\r\n")]) == ([], nil))
        #expect(try Self.read([Self.bytes("*1048577\r\n")]).error?.message == "Redis sent an array of 1048577 elements (more than the limit 1048576)")

        let small = RESPLimits(maxArrayElements: 4)
        let four = Self.bytes("*4\r\n:1\r\n:2\r\n*2\r\n:3\r\n$-1\r\n*-1\r\n")
        for chunks in Self.everyCut(four + four) {
            let (replies, error) = try Self.read(chunks, limits: small)
            let one = RESPValue.array([.integer(1), .integer(2), .array([.integer(3), .null]), .null])
            #expect(replies == [one, one] && error == nil)
        }
        // Three elements still to come in the outer array, then an inner array of 2: 5 > 4.
        for chunks in Self.everyCut(four + Self.bytes("*4\r\n*2\r\n:1\r\n")) {
            let (replies, error) = try Self.read(chunks, limits: small)
            #expect(replies.count == 1)
            #expect(error?.message == "Redis sent an array of 2 elements inside arrays still waiting for 3 (more than the limit 4 in all)")
        }
        // A huge header deep inside a reply.
        let nested = Self.bytes("*2\r\n*1\r\n*3000000000\r\n")
        for chunks in Self.everyCut(nested) {
            #expect(try Self.read(chunks).error?.message == "Redis sent an array of 3000000000 elements (more than the limit 1048576)")
        }
    }

    @Test("nesting: 8 levels read, a 9th is hiredis's own protocol error (it allocates nothing)")
    func nesting() throws {
        let eight = String(repeating: "*1\r\n", count: 8) + ":7\r\n"
        var expected = RESPValue.integer(7)
        for _ in 0..<8 { expected = .array([expected]) }
        #expect(try Self.read([Self.bytes(eight)]) == ([expected], nil))
        let nine = Self.bytes(String(repeating: "*1\r\n", count: 9) + ":7\r\n")
        for chunks in Self.everyCut(nine) {
            let (replies, error) = try Self.read(chunks)
            #expect(replies.isEmpty)
            #expect(error?.message.contains("nested multi bulk replies with depth > 7") == true)
        }
    }

    @Test("bulk strings: up to 512 MB announced, more refused; huge digits are hiredis's error")
    func bulkLimits() throws {
        // Announced, not sent: the reader waits for the payload.
        #expect(try Self.read([Self.bytes("$536870912\r\nabc")]) == ([], nil))
        for chunks in Self.everyCut(Self.subscribedBytes + Self.bytes("$536870913\r\n")) {
            let (replies, error) = try Self.read(chunks)
            #expect(replies == Self.subscribed)
            #expect(error?.message == "Redis sent a bulk string of 536870913 bytes (more than the limit 536870912)")
        }
        #expect(try Self.read([Self.bytes("$99999999999999999999\r\n")]).error?.message.contains("Bad bulk string length") == true)
        #expect(try Self.read([Self.bytes("*99999999999999999999\r\n")]).error?.message.contains("Bad multi-bulk length") == true)
        let small = RESPLimits(maxBulkLength: 3)
        #expect(try Self.read([Self.bytes("$3\r\nabc\r\n$4\r\nabcd\r\n")], limits: small)
            == ([.bulkString(ByteBuffer(string: "abc"))], RedisError(.protocolError, "Redis sent a bulk string of 4 bytes (more than the limit 3)")))
    }

    @Test("endless lines are cut at the line limit")
    func lineLimits() throws {
        let small = RESPLimits(maxLineLength: 8)
        #expect(try Self.read([Self.bytes("+12345678\r\n-ERR 5678\r\n:-1234567\r\n")], limits: small)
            == ([.simpleString("12345678"), .error("ERR 5678"), .integer(-1234567)], nil))
        // A length line gets 20 characters before it counts as a plain (malformed) line.
        for text in ["+123456789", "*" + String(repeating: "9", count: 25), "$12a4567890", ":" + String(repeating: "\r", count: 10)] {
            let (replies, error) = try Self.read([Self.bytes(text)], limits: small)
            #expect(replies.isEmpty && error?.message == "Redis sent a reply line longer than 8 bytes", "\(text)")
        }
        // The default: a 2 MB status line with no end is refused, in 64 KB reads.
        let (_, error) = try Self.read([Self.bytes("+")] + Array(repeating: Array(repeating: UInt8(ascii: "a"), count: 65_536), count: 32))
        #expect(error?.message == "Redis sent a reply line longer than 1048576 bytes")
    }

    @Test("malformed lengths and RESP3 types are still hiredis's own errors", arguments: [
        ("*-2\r\n", "Multi-bulk length out of range"),
        ("$-2\r\n", "Bulk string length out of range"),
        ("$\r\n", "Bad bulk string length"),
        ("*12a\r\n", "Bad multi-bulk length"),
        ("*1\r2\r\n", "Bad multi-bulk length"),
        ("*-\r\n", "Bad multi-bulk length"),
        ("*--1\r\n", "Bad multi-bulk length"),
        ("$-0\r\n", "Bad bulk string length"),
        ("%1\r\n+a\r\n+b\r\n", "Protocol error"),
        ("~1\r\n:1\r\n", "Protocol error"),
        (">3\r\n$7\r\nmessage\r\n", "Protocol error"),
        ("_\r\n", "Protocol error"),
    ])
    func malformed(text: String, message: String) throws {
        for chunks in Self.everyCut(Self.subscribedBytes + Self.bytes(text) + Self.bytes(":1\r\n")) {
            let (replies, error) = try Self.read(chunks)
            #expect(replies == Self.subscribed)
            #expect(error?.message.contains(message) == true, "\(text): \(String(describing: error))")
        }
    }

    /// A subscriber's stream: confirmations, `message` and `pmessage` pushes whose payloads hold
    /// bytes that look like huge headers (the guard must skip payloads by their length).
    static let pubsub: (stream: [UInt8], expected: [RESPValue]) = {
        let fake: [UInt8] = Array("\r\n*2000000000\r\n$999999999999\r\n+".utf8) + [0x00, 0xFF, 13, 13, 10]
        var stream = Self.subscribedBytes + Self.bytes("*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:2\r\n")
        var expected = Self.subscribed + [.array([.bulkString(ByteBuffer(string: "subscribe")), .bulkString(ByteBuffer(string: "news")), .integer(2)])]
        for (i, payload) in [Self.bytes(#"{"event":"a","data":{}}"#), fake, [], Array(repeating: UInt8(ascii: "x"), count: 300)].enumerated() {
            stream += Self.bytes("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$\(payload.count)\r\n") + payload + [13, 10]
            expected.append(.array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "news")), .bulkString(ByteBuffer(bytes: payload))]))
            let channel = "laravel_database_orders.\(i)"
            stream += Self.bytes("*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$\(channel.utf8.count)\r\n\(channel)\r\n$\(payload.count)\r\n") + payload + [13, 10]
            expected.append(.array([.bulkString(ByteBuffer(string: "pmessage")), .bulkString(ByteBuffer(string: "*")), .bulkString(ByteBuffer(string: channel)), .bulkString(ByteBuffer(bytes: payload))]))
        }
        return (stream, expected)
    }()

    @Test("pub/sub streams read the same at every cut and byte by byte")
    func pubsubSplits() throws {
        for chunks in Self.everyCut(Self.pubsub.stream) {
            let (replies, error) = try Self.read(chunks)
            #expect(error == nil)
            #expect(replies == Self.pubsub.expected, "cut \(chunks.map(\.count))")
            #expect(replies.compactMap(RedisPubSubMessage.init(push:)).count == 8)
        }
        // Three pieces, every pair of cuts over the first 120 bytes (the headers of interest).
        let stream = Self.pubsub.stream
        for a in 0..<120 {
            for b in a..<min(stream.count, 120) {
                let (replies, error) = try Self.read([Array(stream[..<a]), Array(stream[a..<b]), Array(stream[b...])])
                #expect(replies == Self.pubsub.expected && error == nil, "cuts \(a), \(b)")
            }
        }
    }

    @Test("the reply stream of every kind still reads as before, and at the tightest limits that fit it")
    func unchanged() throws {
        for chunks in Self.everyCut(HiredisReaderTests.stream) {
            #expect(try Self.read(chunks) == (HiredisReaderTests.expected, nil))
            let tight = RESPLimits(maxArrayElements: 4, maxBulkLength: 8, maxLineLength: 30)
            #expect(try Self.read(chunks, limits: tight) == (HiredisReaderTests.expected, nil))
        }
    }
}
