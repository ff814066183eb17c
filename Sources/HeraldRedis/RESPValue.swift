import NIOCore

/// A decoded Redis reply (RESP2), as produced by hiredis's reader.
///
/// Bulk strings stay bytes (`ByteBuffer`): pub/sub payloads are relayed verbatim and are never
/// forced through `String`.
public enum RESPValue: Sendable, Hashable {
    /// A status reply such as `+OK`.
    case simpleString(String)
    /// An error reply such as `-ERR unknown command`.
    case error(String)
    /// An integer reply.
    case integer(Int64)
    /// A bulk string, binary safe.
    case bulkString(ByteBuffer)
    /// The nil bulk string or nil array.
    case null
    /// A multi-bulk reply.
    case array([RESPValue])

    /// The reply as text, for status and bulk-string replies.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b): return String(buffer: b)
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    /// The reply as an integer, for integer replies (and bulk strings holding digits).
    public var int: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulkString(let b): return Int64(String(buffer: b))
        default: return nil
        }
    }
}

/// An error reported by the Redis layer.
public struct RedisError: Error, Sendable, CustomStringConvertible, Hashable {
    /// What went wrong, in broad strokes.
    public enum Kind: Sendable, Hashable {
        /// Redis answered with an error reply (`-ERR …`).
        case server
        /// The byte stream could not be parsed as RESP.
        case protocolError
        /// The connection is closed or was lost before the reply arrived.
        case connectionClosed
        /// The URL or configuration is invalid.
        case invalidConfiguration
        /// Redis did not answer in time; the connection was closed.
        case timeout
        /// Through Sentinel: no sentinel named a master, or the one named could not be reached
        /// or is not a master (yet) — typically in the middle of a failover; worth retrying.
        case masterUnavailable
    }

    /// The kind of failure.
    public var kind: Kind
    /// Human-readable detail.
    public var message: String

    /// Creates an error of `kind` with a human-readable `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// `Redis <kind>: <message>`.
    public var description: String { "Redis \(kind): \(message)" }
}
