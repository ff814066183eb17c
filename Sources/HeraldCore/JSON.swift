import NIOCore

/// A parsed JSON value.
///
/// Herald relays event payloads verbatim and never round-trips them through this type; it is
/// used for the small control messages clients send (subscribe, unsubscribe, client events) and
/// for configuration. Object members keep their order.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, kept as its literal text so no precision is lost.
    case number(String)
    /// A string, unescaped.
    case string(String)
    /// An array, elements in order.
    case array([JSONValue])
    /// An object, members in their order in the text (duplicate keys kept).
    case object([JSONMember])

    /// The member named `key` of an object, if any.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The string, for `.string` values.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The serialized form (compact, members in order).
    public var serialized: String {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return String(buffer: buffer)
    }

    /// Appends the compact serialization to `buffer`.
    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .null: buffer.writeStaticString("null")
        case .bool(let b): buffer.writeString(b ? "true" : "false")
        case .number(let n): buffer.writeString(n)
        case .string(let s): JSONValue.writeQuoted(s, into: &buffer)
        case .array(let items):
            buffer.writeInteger(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                item.write(into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        case .object(let members):
            buffer.writeInteger(UInt8(ascii: "{"))
            for (i, member) in members.enumerated() {
                if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                JSONValue.writeQuoted(member.key, into: &buffer)
                buffer.writeInteger(UInt8(ascii: ":"))
                member.value.write(into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        }
    }

    /// Appends `string` as a JSON string literal (quotes and escapes included).
    public static func writeQuoted(_ string: String, into buffer: inout ByteBuffer) {
        var string = string
        string.withUTF8 { writeQuoted(utf8: $0, into: &buffer) }
    }

    /// Appends UTF-8 text as one JSON string literal: quotes, backslashes and control bytes are
    /// escaped; every other byte is copied in runs (how a raw JSON payload becomes the string
    /// Pusher clients expect).
    ///
    /// `@inlinable` so callers in other modules get it specialized for their collection type:
    /// unspecialized, quoting a 200-byte `ByteBufferView` cost 5.5 µs and 187 allocations
    /// (measured in `Benchmarks/Micro`), specialized 0.4 µs and 2.
    @inlinable
    public static func writeQuoted<Bytes: Collection<UInt8>>(utf8 bytes: Bytes, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = bytes.startIndex
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let byte = bytes[i]
            if byte >= 0x20, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
                bytes.formIndex(after: &i)
                continue
            }
            if runStart != i { buffer.writeBytes(bytes[runStart..<i]) }
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            default:
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hexDigit(byte >> 4))
                buffer.writeInteger(hexDigit(byte & 0xF))
            }
            bytes.formIndex(after: &i)
            runStart = i
        }
        if runStart != i { buffer.writeBytes(bytes[runStart..<i]) }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// The lowercase hex digit for a value below 16.
    @inlinable
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Hashable {
    /// The member's name, unescaped.
    public var key: String
    /// The member's value.
    public var value: JSONValue
    /// Creates a member.
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// Why a JSON text was rejected, with the byte offset.
public struct JSONError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public var message: String
    /// The byte offset in the text where the problem was found.
    public var offset: Int
    /// `invalid JSON at byte <offset>: <message>`.
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A strict, allocation-light JSON reader (RFC 8259) with a nesting limit.
///
/// Besides building ``JSONValue``s it can validate a value and report its byte range without
/// building anything, which is how Herald keeps payloads verbatim.
public struct JSONReader {
    /// Deepest nesting accepted; deeper input is rejected rather than recursed into.
    public static let maxDepth = 256

    private let bytes: UnsafeRawBufferPointer
    private(set) var index: Int

    private init(bytes: UnsafeRawBufferPointer, index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    /// Parses a complete JSON text.
    public static func parse(_ buffer: ByteBuffer) throws(JSONError) -> JSONValue {
        try buffer.withUnsafeReadableBytes { (raw) throws(JSONError) -> JSONValue in
            var reader = JSONReader(bytes: raw)
            reader.skipWhitespace()
            let value = try reader.readValue(depth: 0)
            reader.skipWhitespace()
            guard reader.index == raw.count else { throw reader.error("trailing characters") }
            return value
        }
    }

    /// Parses a complete JSON text given as a string.
    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(ByteBuffer(string: text))
    }

    /// The top-level members of a JSON object, each with the byte range of its raw value
    /// (relative to the buffer's reader index). The whole text is validated.
    public static func objectMembers(_ buffer: ByteBuffer) throws(JSONError) -> [(key: String, range: Range<Int>)] {
        try buffer.withUnsafeReadableBytes { (raw) throws(JSONError) -> [(key: String, range: Range<Int>)] in
            var reader = JSONReader(bytes: raw)
            reader.skipWhitespace()
            guard reader.peek() == UInt8(ascii: "{") else { throw reader.error("expected an object") }
            reader.index += 1
            var members: [(key: String, range: Range<Int>)] = []
            reader.skipWhitespace()
            if reader.peek() == UInt8(ascii: "}") {
                reader.index += 1
            } else {
                while true {
                    reader.skipWhitespace()
                    guard reader.peek() == UInt8(ascii: "\"") else { throw reader.error("expected a member name") }
                    let key = try reader.readString()
                    reader.skipWhitespace()
                    guard reader.peek() == UInt8(ascii: ":") else { throw reader.error("expected ':'") }
                    reader.index += 1
                    reader.skipWhitespace()
                    let start = reader.index
                    try reader.skipValue(depth: 1)
                    members.append((key, start..<reader.index))
                    reader.skipWhitespace()
                    guard let next = reader.peek() else { throw reader.error("unterminated object") }
                    reader.index += 1
                    if next == UInt8(ascii: "}") { break }
                    guard next == UInt8(ascii: ",") else { throw reader.error("expected ',' or '}'") }
                }
            }
            reader.skipWhitespace()
            guard reader.index == raw.count else { throw reader.error("trailing characters") }
            return members
        }
    }

    /// The elements of a top-level JSON array as raw byte ranges (relative to the reader index).
    public static func arrayElements(_ buffer: ByteBuffer) throws(JSONError) -> [Range<Int>] {
        try buffer.withUnsafeReadableBytes { (raw) throws(JSONError) -> [Range<Int>] in
            var reader = JSONReader(bytes: raw)
            reader.skipWhitespace()
            guard reader.peek() == UInt8(ascii: "[") else { throw reader.error("expected an array") }
            reader.index += 1
            var elements: [Range<Int>] = []
            reader.skipWhitespace()
            if reader.peek() == UInt8(ascii: "]") {
                reader.index += 1
            } else {
                while true {
                    reader.skipWhitespace()
                    let start = reader.index
                    try reader.skipValue(depth: 1)
                    elements.append(start..<reader.index)
                    reader.skipWhitespace()
                    guard let next = reader.peek() else { throw reader.error("unterminated array") }
                    reader.index += 1
                    if next == UInt8(ascii: "]") { break }
                    guard next == UInt8(ascii: ",") else { throw reader.error("expected ',' or ']'") }
                }
            }
            reader.skipWhitespace()
            guard reader.index == raw.count else { throw reader.error("trailing characters") }
            return elements
        }
    }

    /// Checks that `buffer` is exactly one valid JSON value.
    public static func validate(_ buffer: ByteBuffer) throws(JSONError) {
        try buffer.withUnsafeReadableBytes { (raw) throws(JSONError) in
            var reader = JSONReader(bytes: raw)
            reader.skipWhitespace()
            try reader.skipValue(depth: 0)
            reader.skipWhitespace()
            guard reader.index == raw.count else { throw reader.error("trailing characters") }
        }
    }

    // MARK: - Internals

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private func error(_ message: String) -> JSONError { JSONError(message: message, offset: index) }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("truncated literal") }
        let ok = literal.withUTF8Buffer { lit in
            (0..<count).allSatisfy { bytes[index + $0] == lit[$0] }
        }
        guard ok else { throw error("invalid literal") }
        index += count
    }

    private mutating func readValue(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        guard let byte = peek() else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            index += 1
            var members: [JSONMember] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name") }
                let key = try readString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                members.append(JSONMember(key: key, value: try readValue(depth: depth + 1)))
                skipWhitespace()
                guard let next = peek() else { throw error("unterminated object") }
                index += 1
                if next == UInt8(ascii: "}") { return .object(members) }
                guard next == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try readValue(depth: depth + 1))
                skipWhitespace()
                guard let next = peek() else { throw error("unterminated array") }
                index += 1
                if next == UInt8(ascii: "]") { return .array(items) }
                guard next == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            }
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null"); return .null
        default:
            let start = index
            try skipNumber()
            return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }
    }

    private mutating func skipValue(depth: Int) throws(JSONError) {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        guard let byte = peek() else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { index += 1; return }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name") }
                try skipString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
                index += 1
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek() else { throw error("unterminated object") }
                index += 1
                if next == UInt8(ascii: "}") { return }
                guard next == UInt8(ascii: ",") else { throw error("expected ',' or '}'") }
            }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { index += 1; return }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard let next = peek() else { throw error("unterminated array") }
                index += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        default: try skipNumber()
        }
    }

    private mutating func skipNumber() throws(JSONError) {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            index = start
            throw error("unexpected character")
        }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) else { throw error("digit expected after '.'") }
            while let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) else { throw error("digit expected in exponent") }
            while let d = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) { index += 1 }
        }
    }

    private mutating func skipString() throws(JSONError) {
        index += 1  // opening quote
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") { index += 1; return }
            if byte == UInt8(ascii: "\\") {
                // Escapes are checked exactly as `readString` reads them, so that whatever
                // validates (and is then relayed verbatim) also parses.
                index += 1
                guard let escaped = peek() else { break }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    continue
                case UInt8(ascii: "u"):
                    _ = try readUnicodeEscape()
                    continue
                default:
                    throw error("invalid escape")
                }
            }
            if byte < 0x20 { throw error("control character in string") }
            index += 1
        }
        throw error("unterminated string")
    }

    private mutating func readString() throws(JSONError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return s
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("control character in string") }
            index += 1
        }
        var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if byte < 0x20 { throw error("control character in string") }
            if byte != UInt8(ascii: "\\") {
                out.append(byte)
                index += 1
                continue
            }
            index += 1
            guard let escaped = peek() else { break }
            index += 1
            switch escaped {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let unicode = Unicode.Scalar(try readUnicodeEscape()) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(unicode)).utf8))
            default:
                throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    /// Reads a `\u` escape from just after the `u`: a surrogate pair when a high surrogate is
    /// followed by another `\u` (the low half must follow then), U+FFFD for a lone surrogate.
    private mutating func readUnicodeEscape() throws(JSONError) -> UInt32 {
        let scalar = try readHex4()
        if (0xD800...0xDBFF).contains(scalar) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                return 0xFFFD
            }
            index += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
            return 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        return (0xDC00...0xDFFF).contains(scalar) ? 0xFFFD : scalar
    }

    private mutating func readHex4() throws(JSONError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
