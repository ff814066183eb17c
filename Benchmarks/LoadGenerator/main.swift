// herald-load: a Socket.IO (Engine.IO 4, WebSocket) and Pusher (protocol 7) load generator for
// Herald and its peers.
//
// Opens N WebSocket connections spread over many loopback source addresses. Socket.IO: joins
// `/`, subscribes them over K channels (echo mode) or not at all (seed mode, where the relay
// emits to everyone). Pusher: waits for `pusher:connection_established`, then subscribes each
// connection to one of K public channels (echo mode) or to all K (seed mode: every event reaches
// every connection, as emit-to-all does for Socket.IO), answers `pusher:ping`. Then publishes
// Laravel-format events to Redis at a fixed rate with a monotonic send timestamp in the payload,
// and reports deliveries, loss, latency percentiles, and the relay's CPU time and RSS read from
// /proc.
import ArgumentParser
import HeraldRedis
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "herald-load", abstract: "Socket.IO (Engine.IO 4) and Pusher 7 load generator over WebSocket.")

    @Option var host = "127.0.0.1"
    @Option var port = 6001
    @Option(help: "socketio (Engine.IO 4 / Socket.IO 5) or pusher (Pusher protocol 7)") var `protocol` = "socketio"
    @Option(help: "Socket.IO endpoint path") var path = "/socket.io/"
    @Option(help: "Pusher app key (connects to /app/<key>)") var appKey = "app-key"
    @Option(help: "seed (Socket.IO: relay emits <channel>:<event> to all; Pusher: every connection subscribes to every channel) or echo (each connection subscribes to one channel)") var mode = "echo"
    @Option var connections = 1000
    @Option var channels = 10
    @Option(help: "events per second published to Redis (spread over the channels)") var rate = 100
    @Option(help: "seconds of publishing") var duration = 10
    @Option(help: "payload size in bytes (approximate)") var payloadBytes = 200
    @Option var redis = "redis://127.0.0.1:6379"
    @Option(help: "Redis key prefix the relay strips") var keyPrefix = ""
    @Option(help: "loopback source addresses to spread connections over (127.0.0.2 …)") var sourceAddresses = 50
    @Option(help: "most connection attempts in flight") var connectConcurrency = 256
    @Option(help: "relay process id, for CPU and RSS from /proc") var pid: Int32?
    @Option(help: "seconds to wait for deliveries after publishing stops") var drain = 2
    @Option(help: "seconds to stay connected and idle before publishing (memory measurement)") var idle = 1

    func run() async throws {
        var logger = Logger(label: "herald-load")
        logger.logLevel = .error
        let group = MultiThreadedEventLoopGroup.singleton
        let stats = Stats(connections: connections)
        let echo = mode == "echo"
        guard echo || mode == "seed" else { throw ValidationError("mode must be seed or echo") }
        let pusher = `protocol` == "pusher"
        guard pusher || `protocol` == "socketio" else { throw ValidationError("protocol must be socketio or pusher") }
        let requestPath = pusher ? "/app/\(appKey)?protocol=7&client=herald-load&version=1" : "\(path)?EIO=4&transport=websocket"
        let allChannels = (0..<channels).map { "bench.\($0)" }

        let before = ProcessStats(pid: pid)
        // Connect storm.
        let clock = ContinuousClock()
        let connectStart = clock.now
        var handlers: [BenchClient] = []
        handlers.reserveCapacity(connections)
        try await withThrowingTaskGroup(of: BenchClient?.self) { tasks in
            var started = 0
            var running = 0
            func launch(_ index: Int) {
                let source = "127.0.0.\(2 + index % max(1, sourceAddresses))"
                // Socket.IO seed mode subscribes to nothing (the relay emits to everyone); Pusher
                // has no emit-to-all, so its seed mode subscribes every connection to every channel.
                let subscribe = echo ? [allChannels[index % channels]] : (pusher ? allChannels : [])
                tasks.addTask {
                    let client = BenchClient(index: index, protocol: pusher ? .pusher : .socketIO, subscribe: subscribe, host: host, path: requestPath, stats: stats)
                    do {
                        _ = try await ClientBootstrap(group: group)
                            .channelOption(.socketOption(.so_reuseaddr), value: 1)
                            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                            .bind(to: try SocketAddress(ipAddress: source, port: 0))
                            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(client) } }
                            .connect(host: host, port: port).get()
                        try await client.ready.futureResult.get()
                        return client
                    } catch {
                        stats.failed.add(1, ordering: .relaxed)
                        return nil
                    }
                }
            }
            while started < min(connectConcurrency, connections) { launch(started); started += 1; running += 1 }
            while let result = try await tasks.next() {
                if let result { handlers.append(result) }
                if started < connections { launch(started); started += 1 }
            }
        }
        let connectSeconds = (clock.now - connectStart).seconds
        // Pusher acknowledges every subscription: publish only once the relay has confirmed all
        // of them (waiting at most 30 s; an unconfirmed subscription's deliveries count as loss).
        var subscribeSeconds = 0.0
        if pusher {
            let want = handlers.reduce(0) { $0 + ($1.subscribe.isEmpty ? 0 : 1) }
            let deadline = clock.now + .seconds(30)
            while stats.subscribed.load(ordering: .relaxed) < want, clock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            subscribeSeconds = (clock.now - connectStart).seconds
        }
        try await Task.sleep(for: .seconds(idle))
        let afterConnect = ProcessStats(pid: pid)

        // Publish.
        let redisConfig = try RedisConfiguration(url: redis)
        let publisher = try await RedisConnection.connect(configuration: redisConfig, eventLoopGroup: group, logger: logger)
        let padding = String(repeating: "x", count: max(0, payloadBytes - 60))
        let totalEvents = rate * duration
        var expected = 0
        let established = handlers.count
        var perChannel = [Int](repeating: 0, count: channels)
        for h in handlers {
            for c in h.subscribe { if let k = Int(c.split(separator: ".").last ?? "") { perChannel[k] += 1 } }
        }
        let selfBefore = ProcessStats(pid: getpid())
        let publishStart = clock.now
        for i in 0..<totalEvents {
            let k = i % channels
            let due = publishStart + .nanoseconds(Int64(i) * 1_000_000_000 / Int64(rate))
            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
            let payload = "{\"event\":\"bench.event\",\"data\":{\"ts\":\(monotonicNanos()),\"seq\":\(i),\"pad\":\"\(padding)\"},\"socket\":null}"
            _ = try await publisher.publish(ByteBuffer(string: payload), to: keyPrefix + "bench.\(k)")
            expected += (echo || pusher) ? perChannel[k] : established
        }
        let publishSeconds = (clock.now - publishStart).seconds
        try await Task.sleep(for: .seconds(drain))
        let after = ProcessStats(pid: pid)
        let selfAfter = ProcessStats(pid: getpid())
        await publisher.close()

        let received = stats.received.load(ordering: .relaxed)
        var latencies: [UInt32] = []
        for h in handlers { latencies += await h.latenciesMicros() }
        latencies.sort()
        func pct(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000
        }
        let cpuSeconds = (after.cpuSeconds ?? 0) - (afterConnect.cpuSeconds ?? 0)
        // The load generator's own CPU over the same window: near (publish + drain) seconds × cores
        // means it, not the relay, sets the pace (and the latency).
        let selfCPUSeconds = (selfAfter.cpuSeconds ?? 0) - (selfBefore.cpuSeconds ?? 0)
        let failed = stats.failed.load(ordering: .relaxed)
        let subscribed = stats.subscribed.load(ordering: .relaxed)
        let errors = stats.errors.load(ordering: .relaxed)
        let loss = expected == 0 ? 0 : max(0, Double(expected - received) / Double(expected) * 100)
        let connectRate = Double(established) / max(connectSeconds, 1e-9)
        let deliveryRate = Double(received) / (publishSeconds + Double(drain))
        let maxMs = latencies.last.map { Double($0) / 1000 } ?? .nan
        print("protocol=\(`protocol`) mode=\(mode) connections=\(connections) established=\(established) failed=\(failed) channels=\(channels) rate=\(rate)/s duration=\(duration)s")
        print("connect: \(fmt(connectSeconds)) s (\(fmt(connectRate, 0)) conn/s)" + (pusher ? "; all subscribed after \(fmt(subscribeSeconds)) s (\(subscribed) connections, \(errors) pusher:error/subscription_error)" : ""))
        print("deliveries: expected=\(expected) received=\(received) loss=\(fmt(loss))% rate=\(fmt(deliveryRate, 0))/s")
        print("load generator cpu publish+drain=\(fmt(selfCPUSeconds, 3)) s over \(fmt(publishSeconds + Double(drain))) s")
        print("latency ms: p50=\(fmt(pct(0.5))) p90=\(fmt(pct(0.9))) p99=\(fmt(pct(0.99))) p99.9=\(fmt(pct(0.999))) max=\(fmt(maxMs))")
        if pid != nil {
            let rssPer = Double((afterConnect.rssKiB ?? 0) - (before.rssKiB ?? 0)) / Double(max(established, 1))
            let usPerDelivery = received > 0 ? cpuSeconds * 1e6 / Double(received) : -1
            print("relay: rss before=\(before.rssKiB ?? 0) KiB after-connect=\(afterConnect.rssKiB ?? 0) KiB (\(fmt(rssPer)) KiB/conn) cpu publish+drain=\(fmt(cpuSeconds, 3)) s => \(fmt(usPerDelivery)) us/delivery")
            var json = "RESULT {\"protocol\":\"\(`protocol`)\",\"mode\":\"\(mode)\",\"connections\":\(connections),\"established\":\(established),\"failed\":\(failed)"
            json += ",\"rate\":\(rate),\"expected\":\(expected),\"received\":\(received),\"loss_pct\":\(fmt(loss, 3))"
            json += ",\"p50_ms\":\(fmt(pct(0.5), 3)),\"p90_ms\":\(fmt(pct(0.9), 3)),\"p99_ms\":\(fmt(pct(0.99), 3)),\"p999_ms\":\(fmt(pct(0.999), 3)),\"max_ms\":\(fmt(maxMs, 3))"
            json += ",\"delivery_per_s\":\(fmt(deliveryRate, 0)),\"subscribed\":\(subscribed),\"errors\":\(errors),\"rss_kib_after\":\(afterConnect.rssKiB ?? 0),\"load_cpu_s\":\(fmt(selfCPUSeconds, 3)),\"relay_cpu_s\":\(fmt(cpuSeconds, 3))"
            json += ",\"us_per_delivery\":\(fmt(usPerDelivery, 3))"
            json += ",\"rss_kib_per_conn\":\(fmt(rssPer)),\"connect_per_s\":\(fmt(connectRate, 0))}"
            print(json.replacing(":nan", with: ":null"))
        }
        for h in handlers { h.close() }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// `value` with `digits` decimals (no Foundation).
func fmt(_ value: Double, _ digits: Int = 2) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        if digits == 0 { text = String(text[..<dot]) } else if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
    }
    return text
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

final class Stats: Sendable {
    let received = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// Pusher connections whose every subscription was acknowledged.
    let subscribed = Atomic<Int>(0)
    /// `pusher:error` and `pusher:subscription_error` messages received.
    let errors = Atomic<Int>(0)
    init(connections: Int) {}
}

/// CPU time and RSS of a process, from /proc.
struct ProcessStats {
    var cpuSeconds: Double?
    var rssKiB: Int?

    init(pid: Int32?) {
        guard let pid else { return }
        if let stat = readFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // fields[0] is state (field 3); utime = field 14, stime = field 15.
            if fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) {
                cpuSeconds = (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = readFile("/proc/\(pid)/status"),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
            rssKiB = Int(line.split(separator: " ").dropFirst().first ?? "")
        }
    }
}

func readFile(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var out = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// One client connection: HTTP upgrade, then a minimal WebSocket client speaking either
/// Engine.IO 4 + Socket.IO 5 (answers pings, joins `/`, optionally subscribes) or Pusher 7
/// (waits for `connection_established`, subscribes, answers `pusher:ping`), and timestamps
/// deliveries. Frames are parsed in place in the read buffer; only a partial frame is kept.
final class BenchClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum WireProtocol { case socketIO, pusher }

    let index: Int
    let wireProtocol: WireProtocol
    /// Channels to subscribe to once connected.
    let subscribe: [String]
    let host: String
    /// Request target of the WebSocket upgrade (path and query).
    let path: String
    let stats: Stats
    /// Succeeds on Engine.IO's namespace connect (`40`) or Pusher's `connection_established`.
    let ready: EventLoopPromise<Void>
    private var upgraded = false
    private var buffer = ByteBuffer()
    private var latencies: [UInt32] = []
    private var channel: (any Channel)?
    private var pendingSubscriptions = 0

    init(index: Int, protocol wireProtocol: WireProtocol, subscribe: [String], host: String, path: String, stats: Stats) {
        self.index = index
        self.wireProtocol = wireProtocol
        self.subscribe = subscribe
        self.host = host
        self.path = path
        self.stats = stats
        self.ready = MultiThreadedEventLoopGroup.singleton.any().makePromise()
    }

    func latenciesMicros() async -> [UInt32] {
        guard let channel else { return [] }
        return (try? await channel.eventLoop.submit { self.latencies }.get()) ?? []
    }

    func close() { channel?.close(promise: nil) }

    func channelActive(context: ChannelHandlerContext) {
        channel = context.channel
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: request)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(ChannelError.ioOnClosedChannel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ready.fail(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        // Parse straight from the read buffer; only a partial frame at the end is kept.
        if buffer.readableBytes > 0 {
            buffer.writeBuffer(&incoming)
            swap(&buffer, &incoming)
            buffer.clear()
        }
        if !upgraded {
            guard let end = incoming.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else {
                buffer.writeBuffer(&incoming)
                return
            }
            let head = String(decoding: incoming.readableBytesView[incoming.readerIndex..<end.lowerBound], as: UTF8.self)
            incoming.moveReaderIndex(to: end.upperBound)
            guard head.hasPrefix("HTTP/1.1 101") else {
                ready.fail(ChannelError.inappropriateOperationForState)
                context.close(promise: nil)
                return
            }
            upgraded = true
        }
        // Server frames are unmasked; parse every complete one.
        var out: ByteBuffer? = nil
        while incoming.readableBytes >= 2 {
            let start = incoming.readerIndex
            guard let b0 = incoming.getInteger(at: start, as: UInt8.self), let b1 = incoming.getInteger(at: start + 1, as: UInt8.self) else { break }
            var length = Int(b1 & 0x7F)
            var headerLength = 2
            if length == 126 {
                guard let l = incoming.getInteger(at: start + 2, as: UInt16.self) else { break }
                length = Int(l); headerLength = 4
            } else if length == 127 {
                guard let l = incoming.getInteger(at: start + 2, as: UInt64.self) else { break }
                length = Int(l); headerLength = 10
            }
            guard incoming.readableBytes >= headerLength + length else { break }
            let opcode = b0 & 0x0F
            if opcode == 0x1 {
                incoming.withUnsafeReadableBytes { raw in
                    let payload = UnsafeRawBufferPointer(rebasing: raw[headerLength..<(headerLength + length)])
                    switch wireProtocol {
                    case .socketIO: handleSocketIO(payload, out: &out)
                    case .pusher: handlePusher(payload, out: &out)
                    }
                }
            } else if opcode == 0x8 {
                context.close(promise: nil)
            }
            incoming.moveReaderIndex(forwardBy: headerLength + length)
        }
        if incoming.readableBytes > 0 { buffer.writeBuffer(&incoming) }
        // Whatever this read called for (pong, subscriptions) leaves in one write.
        if let out { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
    }

    /// Appends `text` as one masked client text frame (mask key 0: payload unchanged).
    private func frame(_ text: String, into out: inout ByteBuffer?) {
        var frame = out ?? ByteBuffer()
        let bytes = Array(text.utf8)
        frame.writeInteger(UInt8(0x81))
        if bytes.count < 126 {
            frame.writeInteger(UInt8(0x80 | bytes.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(bytes.count))
        }
        frame.writeInteger(UInt32(0))
        frame.writeBytes(bytes)
        out = frame
    }

    /// Records the publish→receive latency from the first `ts` member of `payload`: `"ts":<n>`
    /// (Socket.IO, data inline) or `\"ts\":<n>` (Pusher, data as a JSON string).
    private func recordLatency(_ payload: UnsafeRawBufferPointer, from: Int) {
        var i = from
        let end = payload.count
        while i + 4 <= end {
            if payload[i] == UInt8(ascii: "t"), payload[i + 1] == UInt8(ascii: "s") {
                var j = i + 2
                if j < end, payload[j] == UInt8(ascii: "\\") { j += 1 }
                if j + 1 < end, payload[j] == UInt8(ascii: "\""), payload[j + 1] == UInt8(ascii: ":") {
                    j += 2
                    var ts: UInt64 = 0
                    while j < end, payload[j] >= 48, payload[j] <= 57 { ts = ts &* 10 &+ UInt64(payload[j] - 48); j += 1 }
                    let now = monotonicNanos()
                    if now > ts { latencies.append(UInt32(min((now - ts) / 1000, UInt64(UInt32.max)))) }
                    return
                }
            }
            i += 1
        }
    }

    private func handleSocketIO(_ payload: UnsafeRawBufferPointer, out: inout ByteBuffer?) {
        guard let first = payload.first else { return }
        switch first {
        case UInt8(ascii: "0"):
            frame("40", into: &out)
        case UInt8(ascii: "2"):
            frame("3", into: &out)
        case UInt8(ascii: "4"):
            let second = payload.count > 1 ? payload[1] : 0
            if second == UInt8(ascii: "0") {
                for channel in subscribe { frame("42[\"subscribe\",{\"channel\":\"\(channel)\"}]", into: &out) }
                ready.succeed(())
            } else if second == UInt8(ascii: "2") {
                stats.received.add(1, ordering: .relaxed)
                recordLatency(payload, from: 2)
            }
        default:
            break
        }
    }

    private static let eventPrefix = Array("{\"event\":\"".utf8)
    private static let pusherPrefix = Array("pusher".utf8)

    /// Pusher frames are `{"event":"<name>",…}`. Application events (any name not starting with
    /// `pusher`) are deliveries; of the protocol's own, only the few a subscriber sees matter.
    private func handlePusher(_ payload: UnsafeRawBufferPointer, out: inout ByteBuffer?) {
        let prefix = Self.eventPrefix
        guard payload.count > prefix.count, payload.starts(with: prefix) else { return }
        let nameStart = prefix.count
        let isProtocolEvent = payload.count > nameStart + 6 && payload[nameStart..<(nameStart + 6)].elementsEqual(Self.pusherPrefix)
        if !isProtocolEvent {
            stats.received.add(1, ordering: .relaxed)
            recordLatency(payload, from: nameStart)
            return
        }
        var nameEnd = nameStart
        while nameEnd < payload.count, payload[nameEnd] != UInt8(ascii: "\"") { nameEnd += 1 }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: payload[nameStart..<nameEnd]), as: UTF8.self)
        switch name {
        case "pusher:connection_established":
            pendingSubscriptions = subscribe.count
            for channel in subscribe { frame("{\"event\":\"pusher:subscribe\",\"data\":{\"auth\":\"\",\"channel\":\"\(channel)\"}}", into: &out) }
            ready.succeed(())
        case "pusher_internal:subscription_succeeded":
            pendingSubscriptions -= 1
            if pendingSubscriptions == 0 { stats.subscribed.add(1, ordering: .relaxed) }
        case "pusher:ping":
            frame("{\"event\":\"pusher:pong\",\"data\":{}}", into: &out)
        case "pusher:error", "pusher:subscription_error":
            if stats.errors.add(1, ordering: .relaxed).newValue <= 3 {
                print("connection \(index): \(String(decoding: payload, as: UTF8.self))")
            }
        default:
            break
        }
    }
}
