import NIOCore

/// Stops the run when an invariant does not hold. libFuzzer reports the trap as a crash and
/// saves the input, exactly as for a parser that crashed on its own.
public func fuzzCheck(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() {
        fatalError("fuzz invariant violated: \(message())", file: file, line: line)
    }
}

/// The bytes libFuzzer hands to `LLVMFuzzerTestOneInput`, with the views the targets need.
public struct FuzzInput {
    /// The input, copied.
    public let bytes: [UInt8]

    /// Copies `count` bytes at `data` (libFuzzer may pass a null pointer for an empty input).
    public init(_ data: UnsafeRawPointer?, _ count: Int) {
        if let data, count > 0 {
            bytes = Array(UnsafeRawBufferPointer(start: data, count: count))
        } else {
            bytes = []
        }
    }

    /// The input in a fresh buffer (reader index 0).
    public var buffer: ByteBuffer { ByteBuffer(bytes: bytes) }

    /// The input in a buffer whose reader index is not 0: a few guard bytes are written first
    /// and skipped, so a decoder that mixes up absolute and relative indices shows it.
    public var offsetBuffer: ByteBuffer { Self.offsetBuffer(bytes[...]) }

    /// `bytes` behind skipped guard bytes (see ``offsetBuffer``).
    public static func offsetBuffer(_ bytes: ArraySlice<UInt8>) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([0xFF, 0x00, 0x7B, 0x22, 0x5B])  // 0xFF NUL { " [ — never part of the input
        buffer.writeBytes(bytes)
        buffer.moveReaderIndex(forwardBy: 5)
        return buffer
    }

    /// Splits the input at the first `maxSplits` occurrences of `separator`; missing parts are
    /// empty, so the result always has `maxSplits + 1` elements.
    public func split(separator: UInt8, maxSplits: Int) -> [ArraySlice<UInt8>] {
        var parts: [ArraySlice<UInt8>] = []
        var rest = bytes[...]
        while parts.count < maxSplits, let index = rest.firstIndex(of: separator) {
            parts.append(rest[..<index])
            rest = rest[(index + 1)...]
        }
        parts.append(rest)
        while parts.count < maxSplits + 1 { parts.append([]) }
        return parts
    }
}

/// Whether `bytes` is well-formed UTF-8.
public func isValidUTF8(_ bytes: some Collection<UInt8>) -> Bool {
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

/// The readable bytes of a buffer, for messages.
public func describe(_ buffer: ByteBuffer?) -> String {
    guard let buffer else { return "nil" }
    return String(decoding: buffer.readableBytesView, as: UTF8.self).debugDescription
}
