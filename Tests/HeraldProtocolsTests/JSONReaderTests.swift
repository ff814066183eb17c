import HeraldCore
import NIOCore
import Testing

@Suite("JSONReader")
struct JSONReaderTests {
    @Test("parses every kind of value, keeping member order and number text")
    func parseValues() throws {
        let value = try JSONReader.parse(#" {"b":[1,-2.5e+3,true,false,null,"x"],"a":{},"c":[]} "#)
        #expect(value == .object([
            JSONMember(key: "b", value: .array([.number("1"), .number("-2.5e+3"), .bool(true), .bool(false), .null, .string("x")])),
            JSONMember(key: "a", value: .object([])),
            JSONMember(key: "c", value: .array([])),
        ]))
        #expect(value["b"] == .array([.number("1"), .number("-2.5e+3"), .bool(true), .bool(false), .null, .string("x")]))
        #expect(value["missing"] == nil)
        #expect(value.serialized == #"{"b":[1,-2.5e+3,true,false,null,"x"],"a":{},"c":[]}"#)
        #expect(try JSONReader.parse("\"hi\"").stringValue == "hi")
        #expect(try JSONReader.parse("null").stringValue == nil)
    }

    @Test("string escapes and surrogate pairs")
    func escapes() throws {
        #expect(try JSONReader.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\t"))
        #expect(try JSONReader.parse(#""Ren\u00e9e \u20AC""#) == .string("Renée €"))
        #expect(try JSONReader.parse(#""\ud83d\ude00!""#) == .string("😀!"))
        #expect(try JSONReader.parse(#""raw é 😀""#) == .string("raw é 😀"))
        // Lone surrogates become U+FFFD rather than invalid UTF-8.
        #expect(try JSONReader.parse(#""\ud83d""#) == .string("\u{FFFD}"))
        #expect(try JSONReader.parse(#""\ude00x""#) == .string("\u{FFFD}x"))
        #expect(throws: JSONError.self) { try JSONReader.parse(#""\ud83d\u0041""#) }
        #expect(throws: JSONError.self) { try JSONReader.parse(#""\x""#) }
        #expect(throws: JSONError.self) { try JSONReader.parse(#""\u12g4""#) }
        #expect(throws: JSONError.self) { try JSONReader.parse(#""\u12""#) }
        #expect(throws: JSONError.self) { try JSONReader.parse("\"a\nb\"") }
        #expect(throws: JSONError.self) { try JSONReader.parse(#""unterminated"#) }
    }

    @Test("writeQuoted escapes what JSON requires and nothing else")
    func writeQuoted() {
        var out = ByteBuffer()
        JSONValue.writeQuoted("a\"b\\c\n\r\t\u{01}\u{1F}/é", into: &out)
        #expect(String(buffer: out) == #""a\"b\\c\n\r\t\u0001\u001f/é""#)
    }

    @Test("objectMembers reports raw value ranges relative to the reader index")
    func objectMembers() throws {
        let json = #"{ "event" : "e\"v", "data" : {"x":[1, 2]} , "socket":null}"#
        var input = ByteBuffer(string: "PREFIX" + json)
        input.moveReaderIndex(forwardBy: 6)
        let members = try JSONReader.objectMembers(input)
        #expect(members.map(\.key) == ["event", "data", "socket"])
        let raw = members.map { String(buffer: input.getSlice(at: input.readerIndex + $0.range.lowerBound, length: $0.range.count)!) }
        #expect(raw == [#""e\"v""#, #"{"x":[1, 2]}"#, "null"])
        #expect(members[0].range == 12..<18)
        #expect(try JSONReader.objectMembers(ByteBuffer(string: " {} ")).isEmpty)
        #expect(jsonError { try JSONReader.objectMembers(ByteBuffer(string: "[1]")) } == "expected an object @0")
        #expect(jsonError { try JSONReader.objectMembers(ByteBuffer(string: #"{"a":1} }"#)) } == "trailing characters @8")
    }

    @Test("arrayElements reports raw element ranges")
    func arrayElements() throws {
        let input = ByteBuffer(string: #"["subscribe", {"channel":"a"},3]"#)
        let ranges = try JSONReader.arrayElements(input)
        #expect(ranges.map { String(buffer: input.getSlice(at: $0.lowerBound, length: $0.count)!) } == [#""subscribe""#, #"{"channel":"a"}"#, "3"])
        #expect(try JSONReader.arrayElements(ByteBuffer(string: "[]")).isEmpty)
    }

    static func nested(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }

    @Test("nesting up to 256 is accepted, deeper is rejected")
    func depthLimit() throws {
        #expect(JSONReader.maxDepth == 256)
        _ = try JSONReader.parse(Self.nested(256))
        try JSONReader.validate(ByteBuffer(string: Self.nested(256)))
        #expect(jsonError { try JSONReader.parse(Self.nested(257)) } == "nesting deeper than 256 @256")
        #expect(jsonError { try JSONReader.validate(ByteBuffer(string: Self.nested(257))) } == "nesting deeper than 256 @256")
        // Inside an object member the object itself counts as one level.
        _ = try JSONReader.objectMembers(ByteBuffer(string: #"{"a":"# + Self.nested(255) + "}"))
        #expect(throws: JSONError.self) { try JSONReader.objectMembers(ByteBuffer(string: #"{"a":"# + Self.nested(256) + "}")) }
    }

    @Test("hostile nesting is rejected without exhausting the stack")
    func hostileNesting() {
        let deepArrays = String(repeating: "[", count: 200_000)
        let deepObjects = String(repeating: #"{"a":"#, count: 100_000)
        #expect(throws: JSONError.self) { try JSONReader.parse(deepArrays) }
        #expect(throws: JSONError.self) { try JSONReader.parse(deepObjects) }
        #expect(throws: JSONError.self) { try JSONReader.validate(ByteBuffer(string: deepArrays)) }
        #expect(throws: JSONError.self) { try JSONReader.objectMembers(ByteBuffer(string: #"{"a":"# + deepArrays)) }
        #expect(throws: JSONError.self) { try JSONReader.arrayElements(ByteBuffer(string: deepArrays)) }
    }

    @Test("trailing garbage is rejected")
    func trailingGarbage() {
        #expect(jsonError { try JSONReader.parse(#"{"a":1} x"#) } == "trailing characters @8")
        #expect(jsonError { try JSONReader.parse("1 2") } == "trailing characters @2")
        #expect(jsonError { try JSONReader.parse("truex") } == "trailing characters @4")
        #expect(jsonError { try JSONReader.parse("01") } == "trailing characters @1")
        #expect(throws: JSONError.self) { try JSONReader.parse("") }
        #expect(throws: JSONError.self) { try JSONReader.parse("   ") }
        #expect(throws: JSONError.self) { try JSONReader.parse("[1,]") }
        #expect(throws: JSONError.self) { try JSONReader.parse(#"{"a":1,}"#) }
        #expect(throws: JSONError.self) { try JSONReader.parse(#"{"a" 1}"#) }
        #expect(throws: JSONError.self) { try JSONReader.parse("nul") }
        #expect(throws: JSONError.self) { try JSONReader.validate(ByteBuffer(string: "[1] [2]")) }
    }

    @Test("numbers follow RFC 8259", arguments: ["0", "-0", "1.5", "-12.250", "1e10", "1E-2", "2.5e+3", "123456789012345678901234567890"])
    func validNumbers(_ literal: String) throws {
        #expect(try JSONReader.parse(literal) == .number(literal))
    }

    @Test("malformed numbers are rejected", arguments: ["-", "+1", ".5", "1.", "1e", "1e+", "0x10", "--1", "NaN", "Infinity"])
    func invalidNumbers(_ literal: String) {
        #expect(throws: JSONError.self) { try JSONReader.parse(literal) }
    }
}

/// The `JSONError` `body` throws, as "message @offset"; `nil` if it does not throw that.
func jsonError(_ body: () throws -> Any) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as JSONError {
        return "\(error.message) @\(error.offset)"
    } catch {
        return "unexpected \(error)"
    }
}
