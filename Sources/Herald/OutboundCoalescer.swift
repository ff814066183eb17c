import NIOCore

/// Gathers the frames one connection receives during one event-loop turn so they go down the
/// channel pipeline as a single write.
///
/// The first frame of a turn is kept by reference (the broadcast's shared bytes: no copy, no
/// allocation). Only when a second frame arrives before the flush — i.e. under load — are the
/// frames copied into one buffer, which costs a memcpy per frame instead of a pipeline write
/// (and its retain/release traffic) per frame.
struct OutboundCoalescer {
    private var first: ByteBuffer?
    private var gathered: ByteBuffer?

    /// Whether nothing is waiting.
    var isEmpty: Bool { first == nil }

    mutating func append(_ frame: ByteBuffer) {
        // The common case under load first: write in place, without copying `first` (a copy
        // is a retain/release pair on the broadcast buffer every recipient shares — contended
        // between event loops; measured at ~16 % of CPU in a 1M deliveries/s profile).
        if gathered != nil {
            gathered?.writeImmutableBuffer(frame)
            return
        }
        guard let head = first else {
            first = frame
            return
        }
        if gathered == nil {
            var buffer = ByteBuffer()
            buffer.reserveCapacity((head.readableBytes + frame.readableBytes) * 4)
            buffer.writeImmutableBuffer(head)
            gathered = buffer
        }
        gathered?.writeImmutableBuffer(frame)
    }

    /// Everything gathered since the last call, as one buffer (or `nil`).
    mutating func take() -> ByteBuffer? {
        defer {
            first = nil
            gathered = nil
        }
        return gathered ?? first
    }
}

/// A token bucket: `rate` tokens a second, at most `rate` banked (client-event limits).
struct TokenBucket {
    let rate: Double
    private var tokens: Double
    private var refilledAt: NIODeadline

    init(perSecond rate: Int, now: NIODeadline = .now()) {
        self.rate = Double(rate)
        self.tokens = Double(rate)
        self.refilledAt = now
    }

    /// Takes one token if there is one.
    mutating func take(now: NIODeadline = .now()) -> Bool {
        tokens = min(rate, tokens + Double((now - refilledAt).nanoseconds) / 1e9 * rate)
        refilledAt = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// A FIFO of packets that allocates nothing until the first append: WebSocket sessions (almost
/// every session) never queue, and an eagerly made `CircularBuffer` cost ~0.1 KiB per idle
/// connection (measured: Socket.IO idle RSS 6.12 → see BENCHMARKS.md).
struct LazyPacketQueue {
    private var storage: CircularBuffer<ByteBuffer>?

    var count: Int { storage?.count ?? 0 }
    var isEmpty: Bool { storage?.isEmpty ?? true }

    mutating func append(_ packet: ByteBuffer) {
        if storage == nil { storage = CircularBuffer(initialCapacity: 4) }
        storage?.append(packet)
    }

    mutating func popFirst() -> ByteBuffer? {
        storage?.popFirst()
    }

    /// Removes and returns the first packet; the queue must not be empty.
    mutating func removeFirst() -> ByteBuffer {
        storage?.popFirst() ?? ByteBuffer()
    }

    /// Empties the queue and gives its memory back.
    mutating func removeAll() {
        storage = nil
    }
}

extension Actor {
    /// Calls `body` isolated to this actor, for code that runs on the actor's executor by
    /// construction: the router's fan-out, on the session's event loop (callers assert it).
    ///
    /// `assumeIsolated` costs three heap allocations per recipient on the fan-out path
    /// (measured with the malloc counters of `Benchmarks/Micro`: 30,018 per event to 10k
    /// sessions). This is what it does inside — reinterpret the isolated function as a plain
    /// one, which `isolated` allows because it does not change the calling convention — minus
    /// its runtime executor check and the escaping wrapper: `body` must capture nothing (its
    /// input comes as `argument`), so it has no context to box and the call allocates nothing.
    @inline(__always)
    nonisolated func callIsolatedOnLoop<A, R>(_ argument: A, _ body: @escaping (isolated Self, A) -> R) -> R {
        unsafeBitCast(body, to: ((Self, A) -> R).self)(self, argument)
    }
}
