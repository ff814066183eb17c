// Herald micro-benchmarks (issue #6). Every benchmark measures one piece of the hot path through
// the main package's *public* API; inputs are built before the measured region. Names say what
// one operation is: the inner loop runs it `scalingFactor` times and the table reports per
// operation (wall clock, throughput, mallocs).
//
// Registry subscribe/unsubscribe and fan-out to 10,000 in-memory sessions are in
// RegistryAndFanOut.swift (through Herald's `@_spi(Benchmarks)` entries).
import Benchmark
import Herald
import HeraldCore
import HeraldProtocols
import HeraldRedis
import Logging
import NIOCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1_000
    )

    protocolBenchmarks()
    redisBenchmarks()
    pluginBenchmarks()
    routerBenchmarks()
    registryBenchmarks()
    fanOutBenchmarks()
}

// MARK: - Inputs

/// A Laravel-style payload like the load generator's (≈ 200 bytes).
let payloadJSON = #"{"ts":123456789012345,"seq":4711,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#
let eventName = #"App\Events\OrderShipped"#
let channelName = "bench.3"

/// The RESP bytes of one `pmessage` as Redis sends it for `PSUBSCRIBE laravel_database_*`.
func pmessageBytes(count: Int = 1) -> ByteBuffer {
    let laravel = LaravelBroadcast(event: eventName, data: ByteBuffer(string: payloadJSON), socket: nil).encoded()
    let body = String(buffer: laravel)
    var buffer = ByteBuffer()
    for _ in 0..<count {
        RedisCommandEncoder.encode(["pmessage", "laravel_database_*", "laravel_database_" + channelName, body], into: &buffer)
    }
    return buffer
}

func quietLogger() -> Logger {
    Logger(label: "herald.micro", factory: { _ in SwiftLogNoOpLogHandler() })
}

// MARK: - Engine.IO / Socket.IO and Pusher

func protocolBenchmarks() {
    // A client's `subscribe` emit as it arrives in one WebSocket text frame.
    let subscribeFrame = ByteBuffer(string: #"42["subscribe",{"channel":"private-orders.1","auth":{"headers":{"Authorization":"Bearer abc"}}}]"#)
    Benchmark("EngineIO4+SocketIO5 decode: subscribe packet") { benchmark in
        for _ in benchmark.scaledIterations {
            let packet = try! EngineIOCodec.decodePacket(subscribeFrame)
            blackHole(try! SocketIOCodec.decode(packet.data))
        }
    }

    // A polling POST body with 16 packets (the python-engineio client's batch).
    var body = ByteBuffer()
    for i in 0..<16 {
        if i > 0 { body.writeInteger(EngineIOCodec.recordSeparator) }
        body.writeString(#"42["client event",{"channel":"private-chat.1","event":"client-typing","data":{"n":\#(i)}}]"#)
    }
    let pollingBody = body
    Benchmark("EngineIO4 decode: polling payload of 16 packets") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! EngineIOCodec.decodePayloadV4(pollingBody))
        }
    }

    let data = ByteBuffer(string: payloadJSON)
    Benchmark("SocketIO encode: channel event 42[…] + WebSocket frame") { benchmark in
        for _ in benchmark.scaledIterations {
            var packet = ByteBuffer()
            packet.reserveCapacity(data.readableBytes + eventName.utf8.count + channelName.utf8.count + 16)
            SocketIOCodec.writeChannelEvent(event: eventName, channel: channelName, data: data, into: &packet)
            blackHole(WebSocketFraming.frame(opcode: .text, payload: packet))
        }
    }

    Benchmark("Pusher encode: event frame (data string-encoded) + WebSocket frame") { benchmark in
        for _ in benchmark.scaledIterations {
            let message = PusherMessage.event(eventName, channel: channelName, data: data)
            blackHole(WebSocketFraming.frame(opcode: .text, payload: message))
        }
    }

    // Where the Pusher encode's time goes: `data` written as a JSON string literal, from the
    // payload's bytes (what `PusherMessage.event` does) and, for comparison, from a String
    // (contiguous UTF-8). Same bytes out.
    let payloadString = payloadJSON
    Benchmark("JSON quote: 200-byte payload from a ByteBufferView (Pusher's data path)") { benchmark in
        for _ in benchmark.scaledIterations {
            var out = ByteBuffer()
            out.reserveCapacity(512)
            JSONValue.writeQuoted(utf8: data.readableBytesView, into: &out)
            blackHole(out)
        }
    }
    Benchmark("JSON quote: 200-byte payload from a String") { benchmark in
        for _ in benchmark.scaledIterations {
            var out = ByteBuffer()
            out.reserveCapacity(512)
            JSONValue.writeQuoted(payloadString, into: &out)
            blackHole(out)
        }
    }

    // What the router builds once per event: both dialects, each framed once.
    Benchmark("Broadcast encode: SocketIO + Pusher, both framed (once per event)") { benchmark in
        for _ in benchmark.scaledIterations {
            var packet = ByteBuffer()
            packet.reserveCapacity(data.readableBytes + eventName.utf8.count + channelName.utf8.count + 16)
            SocketIOCodec.writeChannelEvent(event: eventName, channel: channelName, data: data, into: &packet)
            blackHole(WebSocketFraming.frame(opcode: .text, payload: packet))
            let message = PusherMessage.event(eventName, channel: channelName, data: data)
            blackHole(WebSocketFraming.frame(opcode: .text, payload: message))
        }
    }

    let pusherSubscribe = ByteBuffer(string: #"{"event":"pusher:subscribe","data":{"auth":"app-key:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","channel":"private-orders.1"}}"#)
    Benchmark("Pusher decode: pusher:subscribe + subscribe request") { benchmark in
        for _ in benchmark.scaledIterations {
            let message = try! PusherMessage(frame: pusherSubscribe)
            blackHole(try! message.subscribeRequest())
        }
    }

    let pusherClientEvent = ByteBuffer(string: #"{"event":"client-typing","channel":"private-chat.1","data":{"user":"ada","typing":true}}"#)
    Benchmark("Pusher decode: client event") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! PusherMessage(frame: pusherClientEvent))
        }
    }
}

// MARK: - hiredis reply handling (the subscriber's reader) and the ingest parse

func redisBenchmarks() {
    let one = pmessageBytes()
    let reader = try! HiredisReader()
    Benchmark("hiredis: pmessage reply → RedisPubSubMessage") { benchmark in
        for _ in benchmark.scaledIterations {
            try! reader.feed(one)
            let reply = try! reader.next()!
            blackHole(RedisPubSubMessage(push: reply))
        }
    }

    // One socket read carrying 50 replies, drained; 20 reads = 1,000 replies, reported per reply.
    let batch = pmessageBytes(count: 50)
    let batchReader = try! HiredisReader()
    Benchmark("hiredis: 50 pmessage replies per read (per reply)") { benchmark in
        for _ in 0..<(benchmark.scaledIterations.count / 50) {
            try! batchReader.feed(batch)
            while let reply = try! batchReader.next() {
                blackHole(RedisPubSubMessage(push: reply))
            }
        }
    }

    let ingestReader = try! HiredisReader()
    let prefix = "laravel_database_"
    Benchmark("Ingest parse: pmessage → Laravel payload → Event") { benchmark in
        for _ in benchmark.scaledIterations {
            try! ingestReader.feed(one)
            let message = RedisPubSubMessage(push: try! ingestReader.next()!)!
            let broadcast = try! LaravelBroadcast(payload: message.payload)
            let channel = message.channel.hasPrefix(prefix) ? String(message.channel.dropFirst(prefix.count)) : message.channel
            blackHole(Event(channel: channel, name: broadcast.event, data: broadcast.data, excludedSocketID: broadcast.socket, source: .redis))
        }
    }
}

// MARK: - Plugin chain

/// The simplest event plugin: passes every event on unchanged.
struct PassPlugin: EventPlugin {
    let name: String
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision { .pass(event) }
}

/// Renames the event (a rewrite that builds a new value).
struct RenamePlugin: EventPlugin {
    let name = "rename"
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        var event = event
        event.name = "renamed." + event.name
        return .pass(event)
    }
}

func pluginBenchmarks() {
    let event = Event(channel: channelName, name: eventName, data: ByteBuffer(string: payloadJSON), source: .redis)
    let logger = quietLogger()
    let chains: [(String, PluginChain)] = [
        ("0 plugins", PluginChain()),
        ("1 plugin (pass)", PluginChain([PassPlugin(name: "pass")])),
        ("3 plugins (pass, rename, pass)", PluginChain([PassPlugin(name: "a"), RenamePlugin(), PassPlugin(name: "b")])),
    ]
    for (label, chain) in chains {
        // `PluginChain.run` is the public one-shot entry: a task per call (the router's lanes
        // run the same runner without one; see "Router: …" below).
        Benchmark("PluginChain.run: \(label)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(await chain.run(event, logger: logger))
            }
        }
    }
}

// MARK: - Router (in-process publish → route) to an empty registry

func routerBenchmarks() {
    let event = Event(channel: channelName, name: eventName, data: ByteBuffer(string: payloadJSON), source: .inProcess)
    let logger = quietLogger()
    let chains: [(String, PluginChain)] = [
        ("0 plugins", PluginChain()),
        ("3 plugins", PluginChain([PassPlugin(name: "a"), RenamePlugin(), PassPlugin(name: "b")])),
    ]
    for (label, chain) in chains {
        // 1,000 events queued before the measured region; measured: the router's task takes
        // each, runs the chain (lanes) and routes it (registry lookup, nobody subscribed).
        Benchmark("Router: route 1,000 queued events to an empty registry, \(label) (per event)", configuration: .init(scalingFactor: .kilo)) { benchmark in
            let router = Router(registry: ChannelRegistry(), plugins: chain, emitToAll: false, queueSize: 4_096, logger: logger)
            for _ in benchmark.scaledIterations { router.publish(event) }
            router.finish()
            benchmark.startMeasurement()
            await router.run()
            benchmark.stopMeasurement()
            blackHole(router.statistics)
        }
    }

    // The whole public ingest path after the socket: hiredis → Laravel parse → Router.
    let batch = pmessageBytes(count: 1_000)
    let prefix = "laravel_database_"
    Benchmark("Ingest+route: 1,000 pmessages → hiredis → Laravel → Router → empty registry (per event)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let router = Router(registry: ChannelRegistry(), emitToAll: false, queueSize: 4_096, logger: logger)
        let reader = try! HiredisReader()
        benchmark.startMeasurement()
        try! reader.feed(batch)
        while let reply = try! reader.next() {
            guard let message = RedisPubSubMessage(push: reply), let broadcast = try? LaravelBroadcast(payload: message.payload) else { continue }
            let channel = message.channel.hasPrefix(prefix) ? String(message.channel.dropFirst(prefix.count)) : message.channel
            router.publish(Event(channel: channel, name: broadcast.event, data: broadcast.data, excludedSocketID: broadcast.socket, source: .redis))
        }
        router.finish()
        await router.run()
        benchmark.stopMeasurement()
        blackHole(router.statistics)
    }
}
