// Registry subscribe/unsubscribe and fan-out of one event to 10,000 in-memory sessions
// (issue #6). These reach Herald's internal hot path through the `@_spi(Benchmarks)` entries
// of Sources/Herald/BenchmarkSupport.swift, each a thin forward to the internal member it names.
//
// The recipients are Herald's real sessions — `EngineSession` (Socket.IO over WebSocket) and
// `PusherSession` — opened by the relay's own upgrade path (`attachWebSocket`) on
// `NIOAsyncTestingChannel`s, joined and subscribed by the client frames a browser sends
// (`40`, `42["subscribe",…]`, `pusher:subscribe`). So a delivery runs the production code:
// `Router.deliver`'s task per loop, each session's `deliver` (`assumeIsolated`, the exclusion
// check, `OutboundCoalescer.append`), the loop's `LoopFlusher`, and each session's
// `flushDeliveries` with its `writeAndFlush` down the channel pipeline. The one stand-in is at
// the bottom of the pipeline: a handler that counts and drops what reaches it, as a socket
// that takes every byte at once (no `writev`; that is the load matrix's part).
//
// `NIOAsyncTestingEventLoop` runs its tasks on a dispatch queue of its own, like an event loop
// thread: `Router.deliver` called from the benchmark's thread crosses to it with `execute`, as
// it does from the router's task in production. Its per-task bookkeeping (a promise and a
// dispatch block per `execute`) differs from `SelectableEventLoop`'s; it is per event and per
// loop, not per recipient.
import Benchmark
@_spi(Benchmarks) import Herald
import HeraldCore
import Logging
import NIOCore
import NIOEmbedded

/// Sessions per fan-out channel and in the registry benchmarks.
let benchSessions = 10_000

// MARK: - The sink at the bottom of every session's pipeline

/// What the sessions of one loop wrote. Touched only on that loop, read by the benchmark after
/// `await loop.run()` (which orders it after the loop's work).
final class SinkCounters: @unchecked Sendable {
    var writes = 0
    var bytes = 0
}

/// Counts and drops outbound bytes: a socket that always takes everything.
final class CountingSink: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    let counters: SinkCounters

    init(_ counters: SinkCounters) { self.counters = counters }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        counters.writes += 1
        counters.bytes += unwrapOutboundIn(data).readableBytes
        promise?.succeed(())
    }

    func flush(context: ChannelHandlerContext) {}
}

/// `10000` → `"10,000"`.
func thousands(_ value: Int) -> String {
    var digits = Array(String(value))
    var index = digits.count - 3
    while index > 0 {
        digits.insert(",", at: index)
        index -= 3
    }
    return String(digits)
}

// MARK: - Harnesses (built once per process, outside any measured region)

let benchApp = PusherApp(id: "1", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")

func benchEndpoint() -> BenchmarkEndpoint {
    var configuration = HeraldConfiguration()
    configuration.pusherApps = [benchApp]
    return BenchmarkEndpoint(configuration: configuration, logger: quietLogger())
}

/// 10,000 Socket.IO sessions subscribed to `bench.socketio` and 10,000 Pusher connections
/// subscribed to `bench.pusher`, all on one loop; the first 1,000 of each also on
/// `bench.socketio.1k` / `bench.pusher.1k`.
final class FanOutHarness: Sendable {
    static let socketIOChannel = "bench.socketio"
    static let pusherChannel = "bench.pusher"
    static let small = 1_000

    let loop: NIOAsyncTestingEventLoop
    let endpoint: BenchmarkEndpoint
    let sink: SinkCounters
    /// Keeps the channels alive.
    let channels: [NIOAsyncTestingChannel]

    init() async throws {
        let loop = NIOAsyncTestingEventLoop()
        let endpoint = benchEndpoint()
        let sink = SinkCounters()
        let channels = (0..<(2 * benchSessions)).map { _ in NIOAsyncTestingChannel(loop: loop) }
        (self.loop, self.endpoint, self.sink, self.channels) = (loop, endpoint, sink, channels)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try await loop.executeInContext {
            for (index, channel) in channels.enumerated() {
                try channel.pipeline.syncOperations.addHandler(CountingSink(sink))
                channel.connect(to: address, promise: nil)
                let socketIO = index < benchSessions
                let ordinal = socketIO ? index : index - benchSessions
                if socketIO {
                    let session = endpoint.openSocketIO(on: channel)
                    session.receive(ByteBuffer(string: "40"), on: channel)
                    session.receive(ByteBuffer(string: #"42["subscribe",{"channel":"\#(Self.socketIOChannel)"}]"#), on: channel)
                    if ordinal < Self.small {
                        session.receive(ByteBuffer(string: #"42["subscribe",{"channel":"\#(Self.socketIOChannel).1k"}]"#), on: channel)
                    }
                } else {
                    let session = endpoint.openPusher(on: channel)
                    session.receive(ByteBuffer(string: #"{"event":"pusher:subscribe","data":{"channel":"\#(Self.pusherChannel)"}}"#), on: channel)
                    if ordinal < Self.small {
                        session.receive(ByteBuffer(string: #"{"event":"pusher:subscribe","data":{"channel":"\#(Self.pusherChannel).1k"}}"#), on: channel)
                    }
                }
            }
        }
        await loop.run()
        for name in [Self.socketIOChannel, Self.pusherChannel] {
            let members = endpoint.registry.subscriberCount(name)
            precondition(members == benchSessions, "fan-out harness: \(members) subscribers on \(name), expected \(benchSessions)")
            let small = endpoint.registry.subscriberCount(name + ".1k")
            precondition(small == Self.small, "fan-out harness: \(small) subscribers on \(name).1k, expected \(Self.small)")
        }
    }

    /// Bytes written so far; the loop must be idle (after `await loop.run()`).
    func written() async -> (writes: Int, bytes: Int) {
        await loop.run()
        return (sink.writes, sink.bytes)
    }
}

/// 10,000 Pusher connections (not started: they write nothing) alternating between two loops,
/// connected and subscribed to `reg.0` … `reg.3` through the registry; plus 1,000 more,
/// neither connected nor subscribed, for the churn benchmark.
final class RegistryHarness: Sendable {
    static let channelNames = (0..<4).map { "reg.\($0)" }
    static let churnCount = 1_000

    let loops: [NIOAsyncTestingEventLoop]
    let endpoint: BenchmarkEndpoint
    let members: [BenchmarkConnection]
    let churn: [BenchmarkConnection]
    /// Keeps the channels alive.
    let channels: [NIOAsyncTestingChannel]

    var registry: ChannelRegistry { endpoint.registry }

    init() async throws {
        let loops = [NIOAsyncTestingEventLoop(), NIOAsyncTestingEventLoop()]
        let endpoint = benchEndpoint()
        let total = benchSessions + Self.churnCount
        // Even indices on the first loop, odd on the second.
        let channels = (0..<total).map { NIOAsyncTestingChannel(loop: loops[$0 % 2]) }
        var opened: [BenchmarkConnection?] = Array(repeating: nil, count: total)
        for (parity, loop) in loops.enumerated() {
            let indices = Array(stride(from: parity, to: total, by: 2))
            let mine = indices.map { channels[$0] }
            let connections = try await loop.executeInContext { mine.map { endpoint.openPusher(on: $0, start: false) } }
            for (index, connection) in zip(indices, connections) { opened[index] = connection }
        }
        let all = opened.compactMap { $0 }
        (self.loops, self.endpoint, self.channels) = (loops, endpoint, channels)
        members = Array(all.prefix(benchSessions))
        churn = Array(all.dropFirst(benchSessions))
        for member in members {
            endpoint.registry.benchmarkConnect(member)
            for name in Self.channelNames { endpoint.registry.benchmarkSubscribe(member, to: name) }
        }
        precondition(endpoint.registry.sessionCount == benchSessions, "registry harness: \(endpoint.registry.sessionCount) sessions")
    }

    /// The `block`-th run of 250 members (1,000 member × channel pairs), rotating.
    func block(_ number: Int) -> ArraySlice<BenchmarkConnection> {
        let size = 250
        let start = (number * size) % benchSessions
        return members[start..<(start + size)]
    }
}

/// Builds each harness once, on first use.
actor Harnesses {
    static let shared = Harnesses()
    private var fanOut: FanOutHarness?
    private var registry: RegistryHarness?

    func fanOutHarness() async throws -> FanOutHarness {
        if let fanOut { return fanOut }
        let made = try await FanOutHarness()
        fanOut = made
        return made
    }

    func registryHarness() async throws -> RegistryHarness {
        if let registry { return registry }
        let made = try await RegistryHarness()
        registry = made
        return made
    }
}

// MARK: - Registry

func registryBenchmarks() {
    let names = RegistryHarness.channelNames
    // Each sample moves a block of 250 members × 4 channels (1,000 pairs) out and back in;
    // only one direction is measured. Every channel keeps ≈ 9,750–10,000 members on two loops.
    Benchmark("Registry: subscribe, 4 channels of 10,000 members on 2 loops (per subscribe)", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark async throws in
        let harness = try await Harnesses.shared.registryHarness()
        let block = harness.block(benchmark.currentIteration)
        for member in block { for name in names { harness.registry.benchmarkUnsubscribe(member, from: name) } }
        benchmark.startMeasurement()
        for member in block { for name in names { blackHole(harness.registry.benchmarkSubscribe(member, to: name)) } }
        benchmark.stopMeasurement()
    }

    Benchmark("Registry: unsubscribe, 4 channels of 10,000 members on 2 loops (per unsubscribe)", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark async throws in
        let harness = try await Harnesses.shared.registryHarness()
        let block = harness.block(benchmark.currentIteration)
        benchmark.startMeasurement()
        for member in block { for name in names { blackHole(harness.registry.benchmarkUnsubscribe(member, from: name)) } }
        benchmark.stopMeasurement()
        for member in block { for name in names { harness.registry.benchmarkSubscribe(member, to: name) } }
    }

    // A connection's whole life in the registry: connect, subscribe to 4 channels, disconnect
    // (which unsubscribes them), beside the 10,000 members.
    Benchmark("Registry: connect + 4 subscribes + disconnect, beside 10,000 sessions (per connection)", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(3))) { benchmark async throws in
        let harness = try await Harnesses.shared.registryHarness()
        let registry = harness.registry
        benchmark.startMeasurement()
        for connection in harness.churn {
            registry.benchmarkConnect(connection)
            for name in names { registry.benchmarkSubscribe(connection, to: name) }
        }
        for connection in harness.churn { registry.benchmarkDisconnect(connection, channels: names) }
        benchmark.stopMeasurement()
    }

    // Fan-out reads a copy-on-write snapshot of the channel's members; while a delivery task
    // still holds it, the next change to that channel copies the member table of the loop it
    // touches (here 5,000 members). One subscribe per sample.
    Benchmark("Registry: subscribe while a fan-out snapshot of the channel is alive (one subscribe, 5,000-member loop group)", configuration: .init(scalingFactor: .one, maxDuration: .seconds(2))) { benchmark async throws in
        let harness = try await Harnesses.shared.registryHarness()
        let member = harness.members[benchmark.currentIteration % benchSessions]
        harness.registry.benchmarkUnsubscribe(member, from: names[0])
        let snapshot = harness.registry.benchmarkAudience(of: names[0])
        benchmark.startMeasurement()
        blackHole(harness.registry.benchmarkSubscribe(member, to: names[0]))
        benchmark.stopMeasurement()
        blackHole(snapshot)
    }
}

// MARK: - Fan-out

func fanOutBenchmarks() {
    let data = ByteBuffer(string: payloadJSON)
    let kinds: [(label: String, channel: String)] = [
        ("Socket.IO (EngineSession, WebSocket)", FanOutHarness.socketIOChannel),
        ("Pusher (PusherSession)", FanOutHarness.pusherChannel),
    ]
    for kind in kinds {
        let broadcast = BenchmarkBroadcast(event: eventName, channel: kind.channel, data: data)
        let frameBytes = kind.channel == FanOutHarness.socketIOChannel ? broadcast.socketIOFrameBytes : broadcast.pusherFrameBytes

        // One event per loop turn (light load): the registry snapshot, `Router.deliver` (one
        // task to the loop), each session's deliver, and the loop's flush of every session.
        // The broadcast is encoded beforehand (see "Broadcast encode" for that once-per-event
        // cost). Every recipient gets the shared frame by reference: one pipeline write each.
        for (recipients, channel) in [(benchSessions, kind.channel), (FanOutHarness.small, kind.channel + ".1k")] {
            Benchmark("Fan-out: 1 event → \(thousands(recipients)) \(kind.label), snapshot + Router.deliver + flush (per event)", configuration: .init(scalingFactor: .one, maxDuration: .seconds(2))) { benchmark async throws in
                let harness = try await Harnesses.shared.fanOutHarness()
                let before = await harness.written()
                benchmark.startMeasurement()
                let audience = harness.endpoint.registry.benchmarkAudience(of: channel)
                let delivered = audience.map { Router.benchmarkDeliver(broadcast, to: $0) } ?? 0
                await harness.loop.run()
                benchmark.stopMeasurement()
                let after = await harness.written()
                precondition(delivered == recipients && after.writes - before.writes == recipients && after.bytes - before.bytes == recipients * frameBytes,
                             "fan-out: \(delivered) recipients, \(after.writes - before.writes) writes, \(after.bytes - before.bytes) bytes")
            }
        }

        // Four events in one loop turn (heavy load): the four delivery tasks run before the
        // turn's flush, so each session gathers four frames (`OutboundCoalescer`) into one
        // buffer and writes it once.
        Benchmark("Fan-out: 4 events in one loop turn → \(thousands(benchSessions)) \(kind.label) (per turn of 4 events)", configuration: .init(scalingFactor: .one, maxDuration: .seconds(2))) { benchmark async throws in
            let harness = try await Harnesses.shared.fanOutHarness()
            let before = await harness.written()
            let registry = harness.endpoint.registry
            let channel = kind.channel
            benchmark.startMeasurement()
            try await harness.loop.executeInContext {
                for _ in 0..<4 {
                    guard let audience = registry.benchmarkAudience(of: channel) else { return }
                    blackHole(Router.benchmarkDeliver(broadcast, to: audience))
                }
            }
            await harness.loop.run()
            benchmark.stopMeasurement()
            let after = await harness.written()
            precondition(after.writes - before.writes == benchSessions && after.bytes - before.bytes == 4 * benchSessions * frameBytes,
                         "fan-out ×4: \(after.writes - before.writes) writes, \(after.bytes - before.bytes) bytes")
        }

        // The router's whole path for one Redis event with no plugins: its queue and task,
        // `route` (tail check, cache-channel check, registry snapshot, encoding both dialects
        // once), `Router.deliver` and the flush — through the public `Router`.
        Benchmark("Route: 1 event → Router.publish/run → \(thousands(benchSessions)) \(kind.label), encode once (per event)", configuration: .init(scalingFactor: .one, maxDuration: .seconds(2))) { benchmark async throws in
            let harness = try await Harnesses.shared.fanOutHarness()
            let router = Router(registry: harness.endpoint.registry, emitToAll: false, queueSize: 16, logger: quietLogger())
            router.publish(Event(channel: kind.channel, name: eventName, data: data, source: .redis))
            router.finish()
            let before = await harness.written()
            benchmark.startMeasurement()
            await router.run()
            await harness.loop.run()
            benchmark.stopMeasurement()
            let after = await harness.written()
            precondition(router.statistics.deliveries == benchSessions && after.writes - before.writes == benchSessions && after.bytes - before.bytes == benchSessions * frameBytes,
                         "route: \(router.statistics.deliveries) deliveries, \(after.writes - before.writes) writes, \(after.bytes - before.bytes) bytes")
        }
    }
}
