import HeraldCore
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which events a tail client wants: globs over the channel and the event name (`*` any run,
/// `?` one character; see `Glob`). A `nil` glob matches everything.
struct TailFilter: Sendable, Hashable {
    /// Glob over the channel name (`orders.*`), or `nil` for every channel.
    var channel: String?
    /// Glob over the event name (`App\Events\*`), or `nil` for every event.
    var event: String?

    /// Longest glob accepted (a longer one is a 400).
    static let maxPatternLength = 256

    init(channel: String? = nil, event: String? = nil) {
        self.channel = channel.flatMap { $0.isEmpty ? nil : $0 }
        self.event = event.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether an event on `channel` named `event` passes.
    func matches(channel name: String, event eventName: String) -> Bool {
        if let channel, !Glob.matches(name, pattern: channel) { return false }
        if let event, !Glob.matches(eventName, pattern: event) { return false }
        return true
    }
}

/// One event as a tail client sees it: a JSON object on one line.
///
/// `{"time":<unix ms>,"channel":…,"event":…,"source":"redis"|"http"|"inProcess"|"client",
/// "socket":<excluded socket id or null>,"size":<payload bytes>,"payload":"<the payload's JSON
/// text, cut at maxPayload bytes>","truncated":<bool>}`. The payload is carried as a string so
/// the line stays valid JSON whatever the payload holds, and a cut never splits a UTF-8
/// sequence.
enum TailLine {
    /// Payload bytes a line carries at most.
    static let defaultMaxPayload = 2_048

    /// The JSON object for `event` (no framing).
    static func json(_ event: Event, timeMillis: Int64, maxPayload: Int = defaultMaxPayload) -> ByteBuffer {
        let size = event.data.readableBytes
        var cut = min(size, max(0, maxPayload))
        let bytes = event.data.readableBytesView
        if cut < size {
            // Back off to the start of a UTF-8 sequence (never past the start of the payload).
            while cut > 0, (bytes[bytes.startIndex + cut] & 0xC0) == 0x80 { cut -= 1 }
        }
        var out = ByteBuffer()
        out.reserveCapacity(cut + event.channel.utf8.count + event.name.utf8.count + 160)
        out.writeString("{\"time\":\(timeMillis),\"channel\":")
        JSONValue.writeQuoted(event.channel, into: &out)
        out.writeStaticString(",\"event\":")
        JSONValue.writeQuoted(event.name, into: &out)
        out.writeStaticString(",\"source\":")
        JSONValue.writeQuoted(event.source.rawValue, into: &out)
        out.writeStaticString(",\"socket\":")
        if let socket = event.excludedSocketID {
            JSONValue.writeQuoted(socket, into: &out)
        } else {
            out.writeStaticString("null")
        }
        out.writeString(",\"size\":\(size),\"payload\":")
        JSONValue.writeQuoted(utf8: bytes.prefix(cut), into: &out)
        out.writeString(",\"truncated\":\(cut < size)}")
        return out
    }

    /// `event` as one Server-Sent Events message: `data: <json>\n\n`.
    static func serverSentEvent(_ event: Event, timeMillis: Int64, maxPayload: Int = defaultMaxPayload) -> ByteBuffer {
        var json = json(event, timeMillis: timeMillis, maxPayload: maxPayload)
        var out = ByteBuffer()
        out.reserveCapacity(json.readableBytes + 8)
        out.writeStaticString("data: ")
        out.writeBuffer(&json)
        out.writeStaticString("\n\n")
        return out
    }

    /// The SSE comment a client gets where lines were lost: `: dropped N events …`.
    static func droppedComment(_ count: Int) -> String {
        ": dropped \(count) event\(count == 1 ? "" : "s") (this tail client read too slowly)\n\n"
    }

    /// Wall-clock time in Unix milliseconds.
    static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// Where `GET /tail` clients get events from: every event the router fans out, after the
/// plugins and before delivery.
///
/// Tail clients are few (at most ``maxSubscribers``) and must never slow the relay. With no
/// client, ``offer(_:)`` costs the router one relaxed atomic load. With clients, the router
/// encodes a matching event once and appends it to each matching client's bounded buffer under
/// that client's short lock; the client's event loop writes the buffer out. A client whose
/// connection stops draining (its socket buffer is over the high-water mark) keeps at most
/// ``bufferedLines`` lines; later ones are dropped, counted, and announced to it with an SSE
/// comment once it reads again.
final class TailHub: Sendable {
    /// Most tail clients at once (beyond: 503).
    let maxSubscribers: Int
    /// Lines a client may have waiting before new ones are dropped.
    let bufferedLines: Int
    /// Payload bytes per line (longer payloads are cut and marked `truncated`).
    let maxPayload: Int

    /// Number of subscribers: the one thing the router reads when nobody tails.
    private let active = Atomic<Int>(0)
    private struct State {
        var subscribers: [ObjectIdentifier: TailSubscriber] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    init(maxSubscribers: Int = 16, bufferedLines: Int = 1_000, maxPayload: Int = TailLine.defaultMaxPayload) {
        self.maxSubscribers = max(1, maxSubscribers)
        self.bufferedLines = max(1, bufferedLines)
        self.maxPayload = max(0, maxPayload)
    }

    /// Tail clients connected now.
    var subscriberCount: Int { active.load(ordering: .relaxed) }

    /// Hands `event` to every tail client whose filter matches. Called by the router for every
    /// event; with no client it returns after one atomic load.
    @inline(__always)
    func offer(_ event: Event) {
        guard active.load(ordering: .relaxed) > 0 else { return }
        publish(event)
    }

    private func publish(_ event: Event) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        var line: ByteBuffer?
        for subscriber in subscribers where subscriber.filter.matches(channel: event.channel, event: event.name) {
            let encoded = line ?? TailLine.serverSentEvent(event, timeMillis: TailLine.nowMillis(), maxPayload: maxPayload)
            line = encoded
            subscriber.enqueue(encoded)
        }
    }

    enum AddError: Error, Sendable {
        case tooMany
        case shuttingDown
    }

    /// Registers `subscriber`; it is removed when its channel closes.
    func add(_ subscriber: TailSubscriber) -> Result<Void, AddError> {
        let result: Result<Void, AddError> = state.withLock { state in
            if state.closed { return .failure(.shuttingDown) }
            if state.subscribers.count >= maxSubscribers { return .failure(.tooMany) }
            state.subscribers[ObjectIdentifier(subscriber)] = subscriber
            active.store(state.subscribers.count, ordering: .relaxed)
            return .success(())
        }
        if case .success = result {
            subscriber.channel.closeFuture.whenComplete { [self] _ in remove(subscriber) }
        }
        return result
    }

    func remove(_ subscriber: TailSubscriber) {
        state.withLock { state in
            state.subscribers[ObjectIdentifier(subscriber)] = nil
            active.store(state.subscribers.count, ordering: .relaxed)
        }
    }

    /// Ends every tail stream (graceful shutdown) and refuses new ones.
    func closeAll() {
        let subscribers = state.withLock { state in
            state.closed = true
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}

/// One `GET /tail` connection: a bounded buffer of lines written out on its channel's loop.
final class TailSubscriber: Sendable {
    let filter: TailFilter
    let channel: any Channel
    private let capacity: Int

    private struct State {
        var pending: [ByteBuffer] = []
        /// Lines lost since the last write (told to the client before the next lines).
        var dropped = 0
        /// Lines lost over the connection's life.
        var droppedTotal = 0
        /// A drain is queued on the loop.
        var scheduled = false
        var finished = false
    }
    private let state = Mutex(State())

    init(filter: TailFilter, channel: any Channel, capacity: Int) {
        self.filter = filter
        self.channel = channel
        self.capacity = max(1, capacity)
    }

    /// Lines this client lost because it read too slowly.
    var droppedLines: Int { state.withLock { $0.droppedTotal } }

    /// Queues a line (any thread). Never blocks: past the capacity the line is dropped and
    /// counted.
    func enqueue(_ line: ByteBuffer) {
        let schedule = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            if state.pending.count < capacity {
                state.pending.append(line)
            } else {
                state.dropped += 1
                state.droppedTotal += 1
            }
            guard !state.scheduled else { return false }
            state.scheduled = true
            return true
        }
        if schedule {
            channel.eventLoop.execute { self.drain() }
        }
    }

    /// Writes what is waiting, if the connection can take it (on the channel's loop). Called
    /// after ``enqueue(_:)`` and when the connection becomes writable again.
    func drain() {
        let (lines, dropped) = state.withLock { state -> ([ByteBuffer], Int) in
            state.scheduled = false
            guard !state.finished, channel.isWritable, !state.pending.isEmpty || state.dropped > 0 else { return ([], 0) }
            let lines = state.pending
            let dropped = state.dropped
            state.pending.removeAll(keepingCapacity: true)
            state.dropped = 0
            return (lines, dropped)
        }
        guard !lines.isEmpty || dropped > 0 else { return }
        var out = ByteBuffer()
        out.reserveCapacity(lines.reduce(0) { $0 + $1.readableBytes } + (dropped > 0 ? 80 : 0))
        // Lines are dropped only while the buffer is full, so the gap comes after them.
        for var line in lines { out.writeBuffer(&line) }
        if dropped > 0 { out.writeString(TailLine.droppedComment(dropped)) }
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(out)), promise: nil)
    }

    /// An SSE comment that keeps idle proxies (and the client's read timeout) from closing the
    /// stream (on the channel's loop).
    func keepAlive() {
        guard channel.isWritable, !state.withLock({ $0.finished }) else { return }
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: ": keep-alive\n\n"))), promise: nil)
    }

    /// Ends the stream: writes what is waiting, the end of the response, and closes.
    func finish() {
        let channel = self.channel
        channel.eventLoop.execute {
            self.drain()
            self.state.withLock { $0.finished = true }
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}

/// Sits at the end of a tail connection's pipeline and drains the subscriber when the socket
/// can take more. (The HTTP pipelining handler holds back anything else the client sends
/// until the response ends.)
final class TailStreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let subscriber: TailSubscriber

    init(subscriber: TailSubscriber) {
        self.subscriber = subscriber
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { subscriber.drain() }
        context.fireChannelWritabilityChanged()
    }
}
