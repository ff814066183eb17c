@testable import Herald
import HeraldCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@Suite("Status: the event-rate ring")
struct EventRateRingTests {
    @Test("each second's slot holds the events since the previous sample, oldest first")
    func deltas() {
        var ring = EventRateRing(capacity: 5)
        ring.sample(total: 3, second: 1)
        ring.sample(total: 3, second: 2)
        ring.sample(total: 10, second: 3)
        #expect(ring.perSecond == [0, 0, 3, 0, 7])
        #expect(ring.lastSecond == 3)
        #expect(ring.sum(lastSeconds: 2) == 7)
        #expect(ring.sum(lastSeconds: 60) == 10)
    }

    @Test("a late sampler charges the events to the second it woke in and zeros the skipped ones")
    func gaps() {
        var ring = EventRateRing(capacity: 6)
        ring.sample(total: 2, second: 1)
        ring.sample(total: 9, second: 4)
        #expect(ring.perSecond == [0, 0, 2, 0, 0, 7])
        // A gap longer than the window leaves only the newest second.
        ring.sample(total: 20, second: 100)
        #expect(ring.perSecond == [0, 0, 0, 0, 0, 11])
        #expect(ring.lastSecond == 100)
    }

    @Test("a second sampled twice adds up; stale samples and falling totals record nothing")
    func sameSecondAndStale() {
        var ring = EventRateRing(capacity: 3, startTotal: 100, startSecond: 10)
        ring.sample(total: 104, second: 11)
        ring.sample(total: 106, second: 11)
        #expect(ring.perSecond == [0, 0, 6])
        ring.sample(total: 110, second: 9)  // older than the newest slot: ignored, baseline moves
        #expect(ring.perSecond == [0, 0, 6])
        ring.sample(total: 50, second: 12)  // a total that went down counts 0
        ring.sample(total: 111, second: 13)
        #expect(ring.perSecond == [6, 0, 1])
    }

    @Test("the window wraps: only the newest capacity seconds are kept")
    func wraps() {
        var ring = EventRateRing(capacity: 4)
        var total = 0
        for second in 1...10 {
            total += second
            ring.sample(total: total, second: Int64(second))
        }
        #expect(ring.perSecond == [7, 8, 9, 10])
        #expect(ring.sum(lastSeconds: 100) == 34)
    }
}

@Suite("Status: tail filters and lines")
struct TailLineTests {
    private func event(_ channel: String, _ name: String, _ data: String, socket: String? = nil, source: EventSource = .redis) -> Event {
        Event(channel: channel, name: name, data: ByteBuffer(string: data), excludedSocketID: socket, source: source)
    }

    @Test("channel and event globs; a missing or empty glob matches everything")
    func filters() {
        let all = TailFilter(channel: "", event: nil)
        #expect(all.channel == nil)
        #expect(all.matches(channel: "anything", event: "at all"))
        let orders = TailFilter(channel: "orders.*")
        #expect(orders.matches(channel: "orders.7", event: "App\\Events\\Shipped"))
        #expect(!orders.matches(channel: "orders", event: "x"))
        #expect(!orders.matches(channel: "private-orders.7", event: "x"))
        let both = TailFilter(channel: "presence-chat.?", event: "App\\Events\\*")
        #expect(both.matches(channel: "presence-chat.1", event: "App\\Events\\Message"))
        #expect(!both.matches(channel: "presence-chat.1", event: "client-typing"))
        #expect(!both.matches(channel: "presence-chat.12", event: "App\\Events\\Message"))
    }

    @Test("a line is one JSON object with the payload as text")
    func line() throws {
        let json = TailLine.json(event("orders", "App\\Events\\Shipped", #"{"id":1,"s":"a\"b"}"#, socket: "abc.1"), timeMillis: 1_700_000_000_123)
        #expect(String(buffer: json) == #"{"time":1700000000123,"channel":"orders","event":"App\\Events\\Shipped","source":"redis","socket":"abc.1","size":19,"payload":"{\"id\":1,\"s\":\"a\\\"b\"}","truncated":false}"#)
        let parsed = try JSONReader.parse(json)
        #expect(parsed["payload"]?.stringValue == #"{"id":1,"s":"a\"b"}"#)
        #expect(parsed["socket"]?.stringValue == "abc.1")

        let sse = String(buffer: TailLine.serverSentEvent(event("c", "e", "1", source: .client), timeMillis: 5))
        #expect(sse == "data: {\"time\":5,\"channel\":\"c\",\"event\":\"e\",\"source\":\"client\",\"socket\":null,\"size\":1,\"payload\":\"1\",\"truncated\":false}\n\n")
    }

    @Test("a long payload is cut at the bound, never inside a UTF-8 sequence, and marked")
    func truncation() throws {
        // "é" is two bytes; a cut at byte 4 would split the second one.
        let data = #""éé€x""#  // 1 + 2 + 2 + 3 + 1 + 1 = 10 bytes
        let parsed = try JSONReader.parse(TailLine.json(event("c", "e", data), timeMillis: 0, maxPayload: 4))
        #expect(parsed["payload"]?.stringValue == "\"é")
        #expect(parsed["truncated"] == .bool(true))
        #expect(parsed["size"] == .number("10"))
        let inside = try JSONReader.parse(TailLine.json(event("c", "e", data), timeMillis: 0, maxPayload: 7))
        #expect(inside["payload"]?.stringValue == "\"éé")  // the euro sign (bytes 5…7) is left out whole
        let whole = try JSONReader.parse(TailLine.json(event("c", "e", data), timeMillis: 0, maxPayload: 10))
        #expect(whole["payload"]?.stringValue == data)
        #expect(whole["truncated"] == .bool(false))
    }
}

@Suite("Status: the tail hub")
struct TailHubTests {
    private func event(_ channel: String, _ name: String = "e", _ data: String = "{}") -> Event {
        Event(channel: channel, name: name, data: ByteBuffer(string: data), source: .http)
    }

    private func connectedChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything written to `channel` since the last call, as text (`<end>` for the end).
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var out = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .body(.byteBuffer(let buffer)): out += String(buffer: buffer)
            case .end: out += "<end>"
            default: out += "<other>"
            }
        }
        return out
    }

    private func dataLines(_ text: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map(String.init)
    }

    @Test("events reach the subscribers whose filter matches, once encoded")
    func delivery() throws {
        let hub = TailHub()
        #expect(hub.subscriberCount == 0)
        let a = try connectedChannel(), b = try connectedChannel()
        let orders = TailSubscriber(filter: TailFilter(channel: "orders.*"), channel: a, capacity: 10)
        let everything = TailSubscriber(filter: TailFilter(), channel: b, capacity: 10)
        #expect((try? hub.add(orders).get()) != nil)
        #expect((try? hub.add(everything).get()) != nil)
        #expect(hub.subscriberCount == 2)

        hub.offer(event("orders.1", "shipped"))
        hub.offer(event("news", "posted"))
        a.embeddedEventLoop.run()
        b.embeddedEventLoop.run()
        let toOrders = dataLines(try written(a))
        let toAll = dataLines(try written(b))
        #expect(toOrders.count == 1)
        #expect(toOrders.first?.contains(#""channel":"orders.1","event":"shipped""#) == true)
        #expect(toAll.count == 2)
        #expect(toAll.last?.contains(#""channel":"news""#) == true)

        // A closed connection leaves the hub.
        try a.close().wait()
        a.embeddedEventLoop.run()
        #expect(hub.subscriberCount == 1)
        _ = try b.finish()
    }

    @Test("a subscriber that stops reading keeps a bounded buffer, loses the rest, and is told how many")
    func slowSubscriber() throws {
        let hub = TailHub()
        let channel = try connectedChannel()
        let subscriber = TailSubscriber(filter: TailFilter(), channel: channel, capacity: 3)
        try channel.pipeline.syncOperations.addHandler(TailStreamHandler(subscriber: subscriber))
        #expect((try? hub.add(subscriber).get()) != nil)

        channel.isWritable = false
        for index in 0..<10 { hub.offer(event("c", "e\(index)")) }
        channel.embeddedEventLoop.run()
        #expect(try written(channel) == "")  // nothing written while the socket is full
        #expect(subscriber.droppedLines == 7)

        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let text = try written(channel)
        let lines = dataLines(text)
        #expect(lines.count == 3)
        #expect(lines.map { $0.contains(#""event":"e0""#) || $0.contains(#""event":"e1""#) || $0.contains(#""event":"e2""#) } == [true, true, true])
        #expect(text.hasSuffix(": dropped 7 events (this tail client read too slowly)\n\n"))

        // Reading again: later events flow, with no second notice.
        hub.offer(event("c", "e10"))
        channel.embeddedEventLoop.run()
        let later = try written(channel)
        #expect(dataLines(later).count == 1)
        #expect(!later.contains("dropped"))
        _ = try channel.finish()
    }

    @Test("at most maxSubscribers; closeAll ends every stream and refuses new ones")
    func limitsAndShutdown() throws {
        let hub = TailHub(maxSubscribers: 1)
        let first = try connectedChannel(), second = try connectedChannel()
        let one = TailSubscriber(filter: TailFilter(), channel: first, capacity: 10)
        #expect((try? hub.add(one).get()) != nil)
        guard case .failure(.tooMany) = hub.add(TailSubscriber(filter: TailFilter(), channel: second, capacity: 10)) else {
            Issue.record("a second subscriber was accepted past the limit")
            return
        }
        hub.offer(event("c"))
        hub.closeAll()
        first.embeddedEventLoop.run()
        let text = try written(first)
        #expect(dataLines(text).count == 1)
        #expect(text.hasSuffix("<end>"))
        #expect(!first.isActive)
        #expect(hub.subscriberCount == 0)
        guard case .failure(.shuttingDown) = hub.add(TailSubscriber(filter: TailFilter(), channel: second, capacity: 10)) else {
            Issue.record("a subscriber was accepted after closeAll")
            return
        }
        _ = try? second.finish()
    }
}

@Suite("Status: the token in herald.yaml")
struct StatusConfigurationTests {
    @Test("status.token turns the endpoints on; HERALD_STATUS_TOKEN overrides it; unknown keys are errors")
    func token() throws {
        #expect(try HeraldConfigurationFile.parse("server:\n  port: 6001\n").configuration.statusToken == nil)
        let file = "status:\n  token: from-the-file-0123456789\n"
        #expect(try HeraldConfigurationFile.parse(file).configuration.statusToken == "from-the-file-0123456789")
        let overridden = try HeraldConfigurationFile.parse(file, environment: ["HERALD_STATUS_TOKEN": "from-the-environment"])
        #expect(overridden.configuration.statusToken == "from-the-environment")
        // The environment alone is enough, and an empty token means off.
        #expect(try HeraldConfigurationFile.parse("", environment: ["HERALD_STATUS_TOKEN": "env-only"]).configuration.statusToken == "env-only")
        #expect(try HeraldConfigurationFile.parse("status:\n  token: ''\n").configuration.statusToken == nil)
        #expect(throws: ConfigurationFileError.self) { try HeraldConfigurationFile.parse("status:\n  tokn: x\n") }
        do {
            _ = try HeraldConfigurationFile.parse("status:\n  tokn: x\n", file: "herald.yaml")
        } catch {
            #expect(error.keyPath == "status.tokn")
            #expect(error.message.contains("did you mean 'token'?"))
        }
    }
}
