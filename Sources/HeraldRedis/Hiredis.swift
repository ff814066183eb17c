import CHiredis
import NIOCore

/// Incremental RESP decoder backed by hiredis's `redisReader`.
///
/// Feed it bytes as they arrive and pull complete replies out. It is not thread-safe: each
/// instance belongs to one connection and is used on that connection's event loop only.
/// After it reports a protocol error it must be discarded (hiredis's reader is unusable then).
///
/// hiredis 0.14 trusts the lengths Redis sends (it allocates an array's elements on its header
/// alone), so every chunk first goes through a small guard that follows the RESP framing and
/// refuses a reply beyond ``RESPLimits`` — an array of more than 1,048,576 elements, a bulk
/// string over 512 MB — before hiredis sees its header. The replies before it are returned as
/// usual, then ``next()`` throws ``RedisError`` `.protocolError` ("Redis sent an array of N
/// elements (more than the limit M)"), as it would for a protocol error found by hiredis.
public final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>
    /// Behind a pointer, like `reader`, so the hot path pays no exclusivity check. Its `error`,
    /// once set, is thrown by ``next()`` when hiredis has returned the replies before that point,
    /// and by ``feed(_:)`` from then on.
    private let frameGuard: UnsafeMutablePointer<RESPFrameGuard>

    /// Creates a reader. Fails only if hiredis cannot allocate one.
    ///
    /// - Parameter limits: what a reply may announce; the defaults suit every command Herald sends.
    public init(limits: RESPLimits = .default) throws(RedisError) {
        guard let reader = redisReaderCreate() else {
            throw RedisError(.protocolError, "hiredis could not allocate a reader")
        }
        self.reader = reader
        self.frameGuard = .allocate(capacity: 1)
        self.frameGuard.initialize(to: RESPFrameGuard(limits: limits))
    }

    deinit {
        redisReaderFree(reader)
        frameGuard.deinitialize(count: 1)
        frameGuard.deallocate()
    }

    /// Appends raw bytes received from Redis.
    ///
    /// Bytes from a header beyond the limits on are withheld from hiredis; the error comes from
    /// ``next()`` after the replies before it. Feeding more after that throws the error.
    public func feed(_ buffer: ByteBuffer) throws(RedisError) {
        if let error = frameGuard.pointee.error { throw error }
        let status = buffer.withUnsafeReadableBytes { raw -> Int32 in
            guard let base = raw.baseAddress, raw.count > 0 else { return REDIS_OK }
            let count = frameGuard.pointee.scan(raw)
            guard count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), count)
        }
        if status != REDIS_OK { throw self.currentError() }
    }

    /// Returns the next complete reply, or `nil` when more bytes are needed.
    ///
    /// Throws ``RedisError`` `.protocolError` for invalid RESP or a reply beyond the limits.
    public func next() throws(RedisError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer? = nil
        if redisReaderGetReply(reader, &reply) != REDIS_OK {
            throw self.currentError()
        }
        guard let reply else {
            if let error = frameGuard.pointee.error { throw error }
            return nil
        }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self))
    }

    private func currentError() -> RedisError {
        let text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(.protocolError, text.isEmpty ? "invalid RESP" : text)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(Self.bytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(buffer: Self.bytes(r.str, r.len)))
        case REDIS_REPLY_ERROR:
            return .error(String(buffer: Self.bytes(r.str, r.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var values: [RESPValue] = []
            values.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let element = r.element[i] {
                    values.append(Self.convert(element))
                } else {
                    values.append(.null)
                }
            }
            return .array(values)
        default:
            return .null
        }
    }

    private static func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> ByteBuffer {
        guard let pointer, count > 0 else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// Encodes commands with hiredis's `redisFormatCommandArgv` (binary-safe RESP multi-bulk).
public enum RedisCommandEncoder {
    /// Appends the RESP encoding of `arguments` (command name first) to `buffer`.
    public static func encode(_ arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        // One contiguous copy of all arguments; hiredis gets pointers into it.
        var joined = ByteBuffer()
        joined.reserveCapacity(arguments.reduce(0) { $0 + $1.readableBytes })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            lengths.append(argument.readableBytes)
            joined.writeImmutableBuffer(argument)
        }
        var target: UnsafeMutablePointer<CChar>? = nil
        let length: Int32 = joined.withUnsafeReadableBytes { raw in
            let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for count in lengths {
                pointers.append(base.map { UnsafePointer($0 + offset) })
                offset += count
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisFormatCommandArgv(&target, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
        }
        guard length > 0, let target else { return }
        defer { redisFreeCommand(target) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }

    /// Appends the RESP encoding of a command given as strings.
    public static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        encode(arguments.map { ByteBuffer(string: $0) }, into: &buffer)
    }
}
