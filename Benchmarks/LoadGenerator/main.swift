// herald-load: a Socket.IO (Engine.IO 4, WebSocket) load generator for Herald and its peers.
//
// Opens N WebSocket connections spread over many loopback source addresses, joins `/`,
// subscribes them over K channels (echo mode) or not at all (seed mode, where the relay emits
// to everyone), publishes Laravel-format events to Redis at a fixed rate with a monotonic send
// timestamp in the payload, and reports deliveries, loss, latency percentiles, and the relay's
// CPU time and RSS read from /proc.
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
    static let configuration = CommandConfiguration(commandName: "herald-load", abstract: "Socket.IO load generator (Engine.IO 4 over WebSocket).")

    @Option var host = "127.0.0.1"
    @Option var port = 6001
    @Option var path = "/socket.io/"
    @Option(help: "seed (relay emits <channel>:<event> to all) or echo (clients subscribe to rooms)") var mode = "echo"
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
                let channel = echo ? "bench.\(index % channels)" : nil
                tasks.addTask {
                    let client = BenchClient(index: index, subscribe: channel, host: host, path: path, stats: stats)
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
        for h in handlers { if let c = h.subscribe, let k = Int(c.split(separator: ".").last ?? "") { perChannel[k] += 1 } }
        let publishStart = clock.now
        for i in 0..<totalEvents {
            let k = i % channels
            let due = publishStart + .nanoseconds(Int64(i) * 1_000_000_000 / Int64(rate))
            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
            let payload = "{\"event\":\"bench.event\",\"data\":{\"ts\":\(monotonicNanos()),\"seq\":\(i),\"pad\":\"\(padding)\"},\"socket\":null}"
            _ = try await publisher.publish(ByteBuffer(string: payload), to: keyPrefix + "bench.\(k)")
            expected += echo ? perChannel[k] : established
        }
        let publishSeconds = (clock.now - publishStart).seconds
        try await Task.sleep(for: .seconds(drain))
        let after = ProcessStats(pid: pid)
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
        let failed = stats.failed.load(ordering: .relaxed)
        let loss = expected == 0 ? 0 : max(0, Double(expected - received) / Double(expected) * 100)
        let connectRate = Double(established) / max(connectSeconds, 1e-9)
        let deliveryRate = Double(received) / (publishSeconds + Double(drain))
        let maxMs = latencies.last.map { Double($0) / 1000 } ?? .nan
        print("mode=\(mode) connections=\(connections) established=\(established) failed=\(failed) channels=\(channels) rate=\(rate)/s duration=\(duration)s")
        print("connect: \(fmt(connectSeconds)) s (\(fmt(connectRate, 0)) conn/s)")
        print("deliveries: expected=\(expected) received=\(received) loss=\(fmt(loss))% rate=\(fmt(deliveryRate, 0))/s")
        print("latency ms: p50=\(fmt(pct(0.5))) p90=\(fmt(pct(0.9))) p99=\(fmt(pct(0.99))) p99.9=\(fmt(pct(0.999))) max=\(fmt(maxMs))")
        if pid != nil {
            let rssPer = Double((afterConnect.rssKiB ?? 0) - (before.rssKiB ?? 0)) / Double(max(established, 1))
            let usPerDelivery = received > 0 ? cpuSeconds * 1e6 / Double(received) : -1
            print("relay: rss before=\(before.rssKiB ?? 0) KiB after-connect=\(afterConnect.rssKiB ?? 0) KiB (\(fmt(rssPer)) KiB/conn) cpu publish+drain=\(fmt(cpuSeconds, 3)) s => \(fmt(usPerDelivery)) us/delivery")
            var json = "RESULT {\"mode\":\"\(mode)\",\"connections\":\(connections),\"established\":\(established),\"failed\":\(failed)"
            json += ",\"rate\":\(rate),\"expected\":\(expected),\"received\":\(received),\"loss_pct\":\(fmt(loss, 3))"
            json += ",\"p50_ms\":\(fmt(pct(0.5), 3)),\"p99_ms\":\(fmt(pct(0.99), 3)),\"us_per_delivery\":\(fmt(usPerDelivery, 3))"
            json += ",\"rss_kib_per_conn\":\(fmt(rssPer)),\"connect_per_s\":\(fmt(connectRate, 0))}"
            print(json)
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

/// One client connection: HTTP upgrade, then a minimal WebSocket + Engine.IO 4 + Socket.IO 5
/// client that answers pings, joins `/`, optionally subscribes, and timestamps deliveries.
final class BenchClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let index: Int
    let subscribe: String?
    let host: String
    let path: String
    let stats: Stats
    let ready: EventLoopPromise<Void>
    private var upgraded = false
    private var buffer = ByteBuffer()
    private var latencies: [UInt32] = []
    private var channel: (any Channel)?

    init(index: Int, subscribe: String?, host: String, path: String, stats: Stats) {
        self.index = index
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
        let request = "GET \(path)?EIO=4&transport=websocket HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
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
                    handleText(UnsafeRawBufferPointer(rebasing: raw[headerLength..<(headerLength + length)]), context: context)
                }
            } else if opcode == 0x8 {
                context.close(promise: nil)
            }
            incoming.moveReaderIndex(forwardBy: headerLength + length)
        }
        if incoming.readableBytes > 0 { buffer.writeBuffer(&incoming) }
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        var frame = ByteBuffer()
        let bytes = Array(text.utf8)
        frame.writeInteger(UInt8(0x81))
        if bytes.count < 126 {
            frame.writeInteger(UInt8(0x80 | bytes.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(bytes.count))
        }
        frame.writeInteger(UInt32(0))  // mask key 0: payload unchanged
        frame.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func handleText(_ payload: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        guard let first = payload.first else { return }
        switch first {
        case UInt8(ascii: "0"):
            send("40", context: context)
        case UInt8(ascii: "2"):
            send("3", context: context)
        case UInt8(ascii: "4"):
            let second = payload.count > 1 ? payload[1] : 0
            if second == UInt8(ascii: "0") {
                if let subscribe { send("42[\"subscribe\",{\"channel\":\"\(subscribe)\"}]", context: context) }
                ready.succeed(())
            } else if second == UInt8(ascii: "2") {
                stats.received.add(1, ordering: .relaxed)
                // Find `"ts":` (near the start of the payload) and read the digits after it.
                var i = 2
                let end = payload.count
                while i + 5 <= end {
                    if payload[i] == UInt8(ascii: "\""), payload[i + 1] == UInt8(ascii: "t"), payload[i + 2] == UInt8(ascii: "s"),
                       payload[i + 3] == UInt8(ascii: "\""), payload[i + 4] == UInt8(ascii: ":") {
                        var j = i + 5
                        var ts: UInt64 = 0
                        while j < end, payload[j] >= 48, payload[j] <= 57 { ts = ts &* 10 &+ UInt64(payload[j] - 48); j += 1 }
                        let now = monotonicNanos()
                        if now > ts { latencies.append(UInt32(min((now - ts) / 1000, UInt64(UInt32.max)))) }
                        break
                    }
                    i += 1
                }
            }
        default:
            break
        }
    }
}
