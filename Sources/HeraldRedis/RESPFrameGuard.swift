/// Limits on what Redis may send, enforced by ``HiredisReader`` before hiredis sees the bytes.
///
/// Debian's hiredis 0.14 trusts the lengths in a reply: on a multi-bulk header such as
/// `*2000000000\r\n` it allocates the whole element array at once (16 GB here) before a single
/// element has arrived, and a line or bulk string grows its buffer for as long as the bytes come.
/// A broken or hostile server, or anyone able to tamper with a plain-TCP link, could so abort
/// the relay for lack of memory. The defaults are far above anything Herald asks Redis for.
public struct RESPLimits: Sendable, Hashable {
    /// The most elements one array may announce, and the most announced elements not yet
    /// received across all arrays of a reply that are still open (so nesting cannot multiply
    /// the up-front allocation). 1,048,576 by default (8 MB of element pointers in hiredis).
    public var maxArrayElements: Int
    /// The longest bulk string, in bytes: 512 MB by default, Redis's own `proto-max-bulk-len`.
    public var maxBulkLength: Int
    /// The longest status (`+`), error (`-`) or integer (`:`) line, in bytes, without its CRLF:
    /// 1 MB by default (Redis's are a few dozen bytes; an error from a script may be longer).
    public var maxLineLength: Int

    /// Creates limits; every value must be at least 0.
    public init(maxArrayElements: Int = 1 << 20, maxBulkLength: Int = 512 << 20, maxLineLength: Int = 1 << 20) {
        self.maxArrayElements = max(0, maxArrayElements)
        self.maxBulkLength = min(max(0, maxBulkLength), Int.max - 2)
        self.maxLineLength = max(0, maxLineLength)
    }

    /// 1,048,576 array elements, 512 MB bulk strings, 1 MB lines.
    public static let `default` = RESPLimits()
}

/// Follows RESP2 framing across chunk boundaries just far enough to see every header before
/// hiredis does, and stops the stream at the first one beyond ``RESPLimits``.
///
/// It reads type bytes, the length lines of bulk strings (`$`) and arrays (`*`), and skips bulk
/// payloads by their length; status, error and integer lines are only scanned for their CRLF.
/// It frames exactly as hiredis 0.14's reader does for every input hiredis accepts: one type
/// byte, a line up to the first `\r\n`, and for `$n` (n ≥ 0) n bytes plus two. Where hiredis
/// would report a protocol error (an unknown type byte such as RESP3's `%`, `~` or `>`, a
/// malformed or out-of-range length), the guard lets hiredis have the bytes up to and including
/// the offending item, so that hiredis reports its own error, and withholds everything after.
/// Arrays nested deeper than 7 levels are refused by hiredis itself before it reads their length
/// (its task stack has 9 entries), so the guard needs no stack: one counter of the elements
/// announced and not yet received bounds the whole reply.
struct RESPFrameGuard {
    private enum State {
        /// The next byte is a type byte.
        case type
        /// In a status, error or integer line (or a malformed length line), up to its CRLF.
        case line
        /// In the length line of a bulk string or array.
        case length
        /// After the CR of a length line: the LF must follow.
        case lengthLF
        /// In a bulk string's payload and its CRLF (`remaining` bytes left).
        case payload
        /// Past a point where the stream was stopped: nothing more goes to hiredis.
        case stopped
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let star = UInt8(ascii: "*")
    private static let dollar = UInt8(ascii: "$")
    private static let minus = UInt8(ascii: "-")
    private static let zero = UInt8(ascii: "0")

    let limits: RESPLimits
    /// Why the guard stopped the stream, once it has: what the reader reports after hiredis
    /// has returned the replies before that point.
    private(set) var error: RedisError?
    private var state = State.type
    /// `*` or `$` while in a length line.
    private var kind: UInt8 = 0
    /// The length read so far; `negative` when it began with `-`.
    private var value = 0
    private var negative = false
    /// Bytes of the current length line (sign and digits) or line (without its CRLF) so far.
    private var count = 0
    /// The current line's last byte was a CR.
    private var sawCR = false
    /// Once a length line turned out malformed: after its CRLF the stream is stopped.
    private var malformed = false
    /// Payload bytes (and the CRLF) of the current bulk string not yet seen.
    private var remaining = 0
    /// Elements announced by the open arrays and not yet begun.
    private var outstanding = 0

    init(limits: RESPLimits) {
        self.limits = limits
    }

    /// Scans the next chunk of the stream and returns how many of its bytes hiredis may have:
    /// all of them, or fewer when the stream stops in this chunk (``error`` is then set).
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int {
        let end = bytes.count
        var i = 0
        // Where, in this chunk, the item being read began (0 when it began in an earlier chunk):
        // a refused header is withheld from hiredis from there on.
        var itemStart = 0
        while i < end {
            switch state {
            case .payload:
                let take = min(remaining, end - i)
                remaining -= take
                i += take
                if remaining == 0 { state = .type }

            case .type:
                let byte = bytes[i]
                itemStart = i
                i += 1
                if outstanding > 0 { outstanding -= 1 }
                switch byte {
                case Self.star, Self.dollar:
                    kind = byte
                    // The usual case, in one go: up to 18 digits (no overflow) and the CRLF all
                    // in this chunk, and a bulk payload skipped at once. Anything else (a sign, a
                    // longer number, a line cut by the chunk's end) takes the steps below.
                    var j = i
                    var length = 0
                    while j < end && j - i < 18 {
                        let digit = bytes[j] &- Self.zero
                        guard digit < 10 else { break }
                        length = length &* 10 &+ Int(digit)
                        j += 1
                    }
                    if j > i && j + 1 < end && bytes[j] == Self.cr && bytes[j + 1] == Self.lf {
                        count = j - i
                        value = length
                        negative = false
                        i = j + 2
                        if let stop = endOfLength(itemStart: itemStart, lineEnd: i) { return stop }
                        if state == .payload {
                            let take = min(remaining, end - i)
                            remaining -= take
                            i += take
                            if remaining == 0 { state = .type }
                        }
                        continue
                    }
                    state = .length
                    value = 0
                    negative = false
                    count = 0
                case UInt8(ascii: "+"), Self.minus, UInt8(ascii: ":"):
                    state = .line
                    count = 0
                    sawCR = false
                    malformed = false
                default:
                    // hiredis fails on this byte ("Protocol error, got … as reply type byte").
                    return stop(safeCount: i, "Redis sent an invalid reply type byte \(byte)")
                }

            case .line:
                while i < end {
                    let byte = bytes[i]
                    i += 1
                    if byte == Self.lf && sawCR {
                        if malformed {
                            // hiredis fails on this line ("Bad … length").
                            return stop(safeCount: i, "Redis sent a malformed length line")
                        }
                        state = .type
                        break
                    }
                    sawCR = byte == Self.cr
                    count += 1
                    // A last CR may turn out to start the CRLF: it is not counted yet.
                    if count - (sawCR ? 1 : 0) > limits.maxLineLength {
                        return stop(safeCount: itemStart, "Redis sent a reply line longer than \(limits.maxLineLength) bytes")
                    }
                }

            case .length:
                while i < end {
                    let byte = bytes[i]
                    i += 1
                    let digit = byte &- Self.zero
                    if digit < 10 {
                        count += 1
                        // hiredis reads a length as a C long long and rejects one that overflows
                        // (or has leading zeros: 20 characters is plenty for any it accepts).
                        if count > 20 {
                            malformedLine()
                            break
                        }
                        let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                        let (next, o2) = times10.addingReportingOverflow(Int(digit))
                        if o1 || o2 {
                            malformedLine()
                            break
                        }
                        value = next
                    } else if byte == Self.cr {
                        state = .lengthLF
                        break
                    } else if byte == Self.minus && count == 0 {
                        negative = true
                        count = 1
                    } else {
                        malformedLine()
                        break
                    }
                }

            case .lengthLF:
                guard bytes[i] == Self.lf else {
                    // A CR inside the line: hiredis reads on to the next CRLF, then fails.
                    malformedLine()
                    count += 1
                    sawCR = true
                    continue
                }
                i += 1
                if let stop = endOfLength(itemStart: itemStart, lineEnd: i) { return stop }

            case .stopped:
                return 0
            }
        }
        return end
    }

    /// The CRLF of a length line has been read (it ends at `lineEnd` in the chunk): checks the
    /// length against the limits and moves on to what follows; returns where the stream stops
    /// when it does.
    private mutating func endOfLength(itemStart: Int, lineEnd: Int) -> Int? {
        if count == (negative ? 1 : 0) || (negative && value != 1) {
            // No digits, or below -1: hiredis fails on this line; it has all of it.
            return stop(safeCount: lineEnd, "Redis sent a malformed length line")
        }
        if negative {
            state = .type  // -1: the nil bulk string or nil array
        } else if kind == Self.dollar {
            guard value <= limits.maxBulkLength else {
                return stop(safeCount: itemStart, "Redis sent a bulk string of \(value) bytes (more than the limit \(limits.maxBulkLength))")
            }
            remaining = value + 2
            state = .payload
        } else {
            guard value <= limits.maxArrayElements else {
                return stop(safeCount: itemStart, "Redis sent an array of \(value) elements (more than the limit \(limits.maxArrayElements))")
            }
            guard value <= limits.maxArrayElements - outstanding else {
                return stop(
                    safeCount: itemStart,
                    "Redis sent an array of \(value) elements inside arrays still waiting for \(outstanding) (more than the limit \(limits.maxArrayElements) in all)"
                )
            }
            outstanding += value
            state = .type
        }
        return nil
    }

    /// The current length line cannot be a valid length: read on to its CRLF as a plain line
    /// (hiredis does the same and then fails), bounded like one.
    private mutating func malformedLine() {
        state = .line
        malformed = true
        sawCR = false
    }

    private mutating func stop(safeCount: Int, _ message: String) -> Int {
        state = .stopped
        error = RedisError(.protocolError, message)
        return safeCount
    }
}
