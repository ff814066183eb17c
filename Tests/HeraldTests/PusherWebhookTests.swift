@testable import Herald
import HeraldCore
import HeraldProtocols
import Logging
import MetricsTestKit
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// Pusher webhooks (PROTOCOLS.md D.14): the wire format, the filters, the bounded queue and its
/// batching, the registry's transitions, and delivery with retries against a real HTTP server
/// on loopback (NIO, in this process).
@Suite struct PusherWebhookTests {
    static let app = PusherApp(id: "3", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func app(url: String, delivery: PusherWebhookDelivery = PusherWebhookDelivery(), webhook: PusherWebhook? = nil) -> PusherApp {
        var app = Self.app
        app.webhooks = [webhook ?? PusherWebhook(url: url)]
        app.webhookDelivery = delivery
        return app
    }

    static func sender(_ apps: [PusherApp], metrics: TestMetrics = TestMetrics()) throws -> PusherWebhookSender {
        try #require(PusherWebhookSender(apps: apps, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, metrics: HeraldMetrics(factory: metrics), logger: logger))
    }

    static func counter(_ metrics: TestMetrics, _ label: String, _ dimensions: [(String, String)] = []) throws -> Int64 {
        try metrics.expectCounter(label, dimensions).totalValue
    }

    // MARK: Wire format

    @Test func bodyAndSignatureMatchTheProtocolVector() {
        let body = PusherWebhookRequest.body([.channelOccupied(channel: "test_channel")], timeMilliseconds: 1_327_078_148_132)
        #expect(String(buffer: body) == #"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test_channel"}]}"#)
        #expect(PusherWebhookRequest.signature(body: body, secret: Self.app.secret) == "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa")
        #expect(PusherWebhookRequest.signature(body: body, secret: "another") != "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa")
    }

    @Test func everyEventTypeIsEncodedAsPusherSendsIt() throws {
        let events: [PusherWebhookEvent] = [
            .channelOccupied(channel: "presence-room"),
            .memberAdded(channel: "presence-room", userID: "7"),
            .clientEvent(channel: "presence-room", event: "client-typing", data: ByteBuffer(string: #" {"name":"Ann \"A\""} "#), socketID: "123.456", userID: "7"),
            .clientEvent(channel: "private-chat", event: "client-note", data: ByteBuffer(string: #""already a string""#), socketID: "1.2", userID: nil),
            .clientEvent(channel: "private-chat", event: "client-n", data: ByteBuffer(string: "42"), socketID: "1.2", userID: nil),
            .memberRemoved(channel: "presence-room", userID: "7"),
            .channelVacated(channel: "presence-room"),
            .cacheMiss(channel: "cache-weather"),
        ]
        let body = PusherWebhookRequest.body(events, timeMilliseconds: 5)
        #expect(String(buffer: body) == """
            {"time_ms":5,"events":[\
            {"name":"channel_occupied","channel":"presence-room"},\
            {"name":"member_added","channel":"presence-room","user_id":"7"},\
            {"name":"client_event","channel":"presence-room","event":"client-typing","data":"{\\"name\\":\\"Ann \\\\\\"A\\\\\\"\\"}","socket_id":"123.456","user_id":"7"},\
            {"name":"client_event","channel":"private-chat","event":"client-note","data":"already a string","socket_id":"1.2"},\
            {"name":"client_event","channel":"private-chat","event":"client-n","data":"42","socket_id":"1.2"},\
            {"name":"member_removed","channel":"presence-room","user_id":"7"},\
            {"name":"channel_vacated","channel":"presence-room"},\
            {"name":"cache_miss","channel":"cache-weather"}]}
            """)
        // It is valid JSON, and the client event's data string holds the event's JSON.
        let parsed = try JSONReader.parse(body)
        guard case .array(let list)? = parsed["events"] else { Issue.record("no events array"); return }
        #expect(list.count == events.count)
        let data = try #require(list[2]["data"]?.stringValue)
        #expect(try JSONReader.parse(data) == JSONReader.parse(#"{"name":"Ann \"A\""}"#))
    }

    @Test func filtersAndURLValidation() throws {
        let all = PusherWebhook(url: "http://example.test/hook")
        for type in PusherWebhookEventType.allCases { #expect(all.accepts(type, channel: "anything")) }
        let some = PusherWebhook(url: "https://example.test/hook", eventTypes: [.memberAdded, .memberRemoved],
                                 channelNameStartsWith: "presence-", channelNameEndsWith: ".admins")
        #expect(some.accepts(.memberAdded, channel: "presence-team.admins"))
        #expect(!some.accepts(.channelOccupied, channel: "presence-team.admins"))
        #expect(!some.accepts(.memberAdded, channel: "presence-team.users"))
        #expect(!some.accepts(.memberAdded, channel: "private-team.admins"))
        #expect(PusherWebhookEventType(rawValue: "cache_miss") == .cacheMiss)

        try PusherWebhook(url: "HTTPS://user:pw@example.test:8443/a?b").validate()
        try PusherWebhook(url: "http://[::1]:8080/").validate()
        for bad in ["ftp://example.test/", "example.test/hook", "http:///path", "http://", "http://user@/x", "http://exa mple.test/"] {
            #expect(throws: PusherWebhookConfigurationError.self, "\(bad)") { try PusherWebhook(url: bad).validate() }
        }
        // A relay whose only webhook is unusable has no sender; credentials never reach logs.
        #expect(PusherWebhookSender(apps: [Self.app(url: "ftp://x")], eventLoopGroup: MultiThreadedEventLoopGroup.singleton, metrics: .disabled, logger: Self.logger) == nil)
        #expect(PusherWebhookRequest.redacted("https://user:secret@example.test/hook?x=@") == "https://***@example.test/hook?x=@")
    }

    // MARK: Queue and batching

    @Test func aFullQueueDropsAndCountsAndBatchesAreBounded() async throws {
        let metrics = TestMetrics()
        let delivery = PusherWebhookDelivery(batchSize: 2, batchInterval: .milliseconds(20), maxQueuedEvents: 3)
        let sender = try Self.sender([Self.app(url: "http://127.0.0.1:9/", delivery: delivery)], metrics: metrics)
        let target = try #require(sender.targets.first)
        for n in 1...5 { sender.record(.channelOccupied(channel: "c\(n)")) }
        #expect(target.queuedCount == 3)
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "queue_full")]) == 2)
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "shutdown")]) == 0)

        // A full batch is taken at once; the rest waits for the interval, in order.
        #expect(await target.nextBatch() == [.channelOccupied(channel: "c1"), .channelOccupied(channel: "c2")])
        #expect(await target.nextBatch() == [.channelOccupied(channel: "c3")])
        // With the queue drained there is room again.
        sender.record(.channelOccupied(channel: "c6"))
        #expect(target.queuedCount == 1)

        // Shutdown: what is queued comes out at once, then delivery stops and later events
        // are dropped as such.
        sender.finish()
        #expect(await target.nextBatch() == [.channelOccupied(channel: "c6")])
        #expect(await target.nextBatch() == nil)
        sender.record(.channelOccupied(channel: "late"))
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "shutdown")]) == 1)
    }

    @Test func eventsGoOnlyToWebhooksWhoseFiltersMatch() throws {
        var app = Self.app
        app.webhooks = [
            PusherWebhook(url: "http://127.0.0.1:9/all"),
            PusherWebhook(url: "http://127.0.0.1:9/members", eventTypes: [.memberAdded]),
            PusherWebhook(url: "http://127.0.0.1:9/orders", channelNameStartsWith: "orders."),
        ]
        var other = PusherApp(id: "4", key: "k4", secret: "s4")
        other.webhooks = [PusherWebhook(url: "http://127.0.0.1:9/other")]
        let sender = try Self.sender([app, other, PusherApp(id: "5", key: "k5", secret: "s5")])
        #expect(sender.targets.map(\.appID) == ["3", "3", "3", "4"])
        sender.record(.channelOccupied(channel: "orders.1"))
        sender.record(.memberAdded(channel: "presence-x", userID: "1"))
        // Shared channels are the first app's: the second app's webhook hears nothing of them,
        // only of its own channels (issue #4).
        #expect(sender.targets.map(\.queuedCount) == [2, 1, 1, 0])
        sender.record(.channelOccupied(channel: ChannelKey(namespace: "4", name: "orders.1")))
        #expect(sender.targets.map(\.queuedCount) == [2, 1, 1, 1])
    }

    @Test func backoffGrowsExponentiallyWithJitterUpToTheCap() throws {
        let delivery = PusherWebhookDelivery(initialBackoff: .milliseconds(100), maxBackoff: .seconds(1))
        let target = try #require(try Self.sender([Self.app(url: "http://127.0.0.1:9/", delivery: delivery)]).targets.first)
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (60, 1000)] {
            for _ in 0..<20 {
                let delay = target.backoff(afterAttempt: attempt)
                #expect(delay >= .milliseconds(base / 2) && delay <= .milliseconds(base), "attempt \(attempt): \(delay)")
            }
        }
    }

    // MARK: Where events come from

    @Test func registryRecordsOccupancyAndDeduplicatedPresence() async throws {
        let sender = try Self.sender([Self.app(url: "http://127.0.0.1:9/", delivery: PusherWebhookDelivery(batchSize: 100, batchInterval: .seconds(60)))])
        let target = try #require(sender.targets.first)
        let registry = ChannelRegistry(metrics: .disabled, webhooks: sender)
        let loop = EmbeddedEventLoop()
        let a = FakeRecipient(loop: loop), b = FakeRecipient(loop: loop), c = FakeRecipient(loop: loop)

        registry.subscribe(a, to: "news")        // occupied
        registry.subscribe(b, to: "news")
        registry.subscribe(a, to: "news")        // repeat: nothing
        registry.unsubscribe(a, from: "news")
        registry.unsubscribe(a, from: "news")    // not there: nothing
        registry.subscribe(b, to: "sport")       // occupied
        registry.disconnect(b, channels: ["news", "sport"])   // both vacated

        // User 7 with two connections, user 8 with one.
        _ = registry.joinPresence(a, socketID: "a", channel: "presence-room", member: PresenceMember(userID: .number("7")))
        _ = registry.joinPresence(b, socketID: "b", channel: "presence-room", member: PresenceMember(userID: .string("7")))
        _ = registry.joinPresence(c, socketID: "c", channel: "presence-room", member: PresenceMember(userID: .string("8")))
        #expect(registry.presenceUserID("presence-room", of: c) == "8")
        #expect(registry.presenceUserID("presence-room", of: b) == "7")
        _ = registry.leavePresence(a, channel: "presence-room")   // 7 still has b
        _ = registry.leavePresence(c, channel: "presence-room")   // 8 leaves
        _ = registry.leavePresence(b, channel: "presence-room")   // 7 leaves, channel empty
        #expect(registry.presenceUserID("presence-room", of: b) == nil)

        // `finish()` makes the queue come out at once, in the order things happened.
        sender.finish()
        let recorded = await target.nextBatch()
        #expect(recorded == [
            .channelOccupied(channel: "news"),
            .channelOccupied(channel: "sport"),
            .channelVacated(channel: "news"),
            .channelVacated(channel: "sport"),
            .channelOccupied(channel: "presence-room"),
            .memberAdded(channel: "presence-room", userID: "7"),
            .memberAdded(channel: "presence-room", userID: "8"),
            .memberRemoved(channel: "presence-room", userID: "8"),
            .memberRemoved(channel: "presence-room", userID: "7"),
            .channelVacated(channel: "presence-room"),
        ])
    }

    // MARK: Delivery over HTTP

    @Test func aRefusedBatchIsRetriedAndArrivesSigned() async throws {
        let receiver = try await WebhookReceiver(statuses: [500, 503])   // then 200
        let metrics = TestMetrics()
        let delivery = PusherWebhookDelivery(batchSize: 50, batchInterval: .milliseconds(10), maxAttempts: 5,
                                             initialBackoff: .milliseconds(5), maxBackoff: .milliseconds(20))
        let sender = try Self.sender([Self.app(url: receiver.url + "/hooks/pusher", delivery: delivery)], metrics: metrics)
        async let running: Void = sender.run()
        sender.record(.channelOccupied(channel: "orders.1"))
        sender.record(.memberAdded(channel: "presence-room", userID: "7"))

        var requests: [WebhookReceiver.Request] = []
        for await request in receiver.requests {
            requests.append(request)
            if requests.count == 3 { break }
        }
        sender.finish()
        await running
        await receiver.close()

        // The same signed bytes every time; the third attempt was accepted.
        #expect(requests.map(\.status) == [500, 503, 200])
        for request in requests {
            #expect(request.method == .POST && request.uri == "/hooks/pusher")
            #expect(request.headers["Content-Type"] == ["application/json"])
            #expect(request.headers["X-Pusher-Key"] == [Self.app.key])
            #expect(request.headers["X-Pusher-Signature"] == [PusherWebhookRequest.signature(body: ByteBuffer(string: request.body), secret: Self.app.secret)])
            #expect(request.body == requests[0].body)
        }
        let body = try JSONReader.parse(requests[0].body)
        #expect(body["events"] == (try JSONReader.parse(#"[{"name":"channel_occupied","channel":"orders.1"},{"name":"member_added","channel":"presence-room","user_id":"7"}]"#)))
        if case .number(let ms)? = body["time_ms"] { #expect(Int64(ms) ?? 0 > 1_600_000_000_000) } else { Issue.record("no time_ms") }
        #expect(try Self.counter(metrics, "herald_webhook_requests_total", [("result", "error")]) == 2)
        #expect(try Self.counter(metrics, "herald_webhook_requests_total", [("result", "success")]) == 1)
        #expect(try Self.counter(metrics, "herald_webhook_events_sent_total") == 2)
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "delivery_failed")]) == 0)
    }

    @Test func manyEventsGoOutInBatchesOfTheConfiguredSizeInOrder() async throws {
        let receiver = try await WebhookReceiver(statuses: [])
        let delivery = PusherWebhookDelivery(batchSize: 50, batchInterval: .seconds(60))
        let sender = try Self.sender([Self.app(url: receiver.url, delivery: delivery)])
        for n in 0..<120 { sender.record(.channelOccupied(channel: "c\(n)")) }
        async let running: Void = sender.run()
        var requests: [WebhookReceiver.Request] = []
        for await request in receiver.requests {
            requests.append(request)
            // Two full batches go at once; the last 20 wait for the (long) interval, and
            // shutdown flushes them.
            if requests.count == 2 { sender.finish() }
            if requests.count == 3 { break }
        }
        await running
        await receiver.close()
        var channels: [String] = []
        for request in requests {
            guard case .array(let events)? = try JSONReader.parse(request.body)["events"] else { Issue.record("no events"); return }
            channels.append(contentsOf: events.compactMap { $0["channel"]?.stringValue })
        }
        #expect(requests.map { $0.body.components(separatedBy: "channel_occupied").count - 1 } == [50, 50, 20])
        #expect(channels == (0..<120).map { "c\($0)" })
    }

    @Test func aBatchThatKeepsFailingIsDroppedAndCounted() async throws {
        let receiver = try await WebhookReceiver(statuses: [500, 500, 500, 500])
        let metrics = TestMetrics()
        let delivery = PusherWebhookDelivery(batchInterval: .milliseconds(1), maxAttempts: 2, initialBackoff: .milliseconds(1), maxBackoff: .milliseconds(2))
        let sender = try Self.sender([Self.app(url: receiver.url, delivery: delivery)], metrics: metrics)
        async let running: Void = sender.run()
        sender.record(.cacheMiss(channel: "cache-a"))
        sender.record(.cacheMiss(channel: "cache-b"))
        var attempts = 0
        for await _ in receiver.requests {
            attempts += 1
            if attempts == 2 { break }
        }
        sender.finish()
        await running
        await receiver.close()
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "delivery_failed")]) == 2)
        #expect(try Self.counter(metrics, "herald_webhook_requests_total", [("result", "error")]) == 2)
        #expect(try Self.counter(metrics, "herald_webhook_requests_total", [("result", "success")]) == 0)
    }

    @Test func shutdownIsBoundedWhenTheEndpointIsDown() async throws {
        // Nothing listens on the port: every attempt fails, and a retry would be far away.
        let port = try await WebhookReceiver.unusedPort()
        let metrics = TestMetrics()
        let delivery = PusherWebhookDelivery(batchInterval: .milliseconds(1), maxAttempts: 10, initialBackoff: .seconds(600),
                                             maxBackoff: .seconds(600), shutdownTimeout: .milliseconds(200))
        let sender = try Self.sender([Self.app(url: "http://127.0.0.1:\(port)/", delivery: delivery)], metrics: metrics)
        sender.record(.channelVacated(channel: "a"))
        sender.record(.channelVacated(channel: "b"))
        async let running: Void = sender.run()
        // Wait (without a clock) until the first attempt failed.
        // Shutdown right away: the batch is either being connected (refused connections are
        // retried until the connect timeout) or waiting for its retry; both are cut short.
        sender.finish()
        await running   // returns after the 200 ms shutdown timeout, not minutes later
        #expect(try Self.counter(metrics, "herald_webhook_events_dropped_total", [("reason", "shutdown")]) == 2)
        #expect(try Self.counter(metrics, "herald_webhook_events_sent_total") == 0)
    }
}

/// A real HTTP/1.1 server on a free loopback port that answers webhook POSTs with scripted
/// statuses (then 200) and hands every request to the test.
final class WebhookReceiver: Sendable {
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: String
        var status: Int
    }

    let requests: AsyncStream<Request>
    private let continuation: AsyncStream<Request>.Continuation
    /// The statuses still to answer, in order (then 200).
    final class Script: Sendable {
        let statuses: Mutex<[Int]>
        init(_ statuses: [Int]) { self.statuses = Mutex(statuses) }
        func next() -> Int { statuses.withLock { $0.isEmpty ? 200 : $0.removeFirst() } }
    }

    private let channel: any Channel
    let url: String

    init(statuses: [Int]) async throws {
        (requests, continuation) = AsyncStream.makeStream(of: Request.self)
        let script = Script(statuses)
        let continuation = self.continuation
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler { head, body in
                        let status = script.next()
                        continuation.yield(Request(method: head.method, uri: head.uri, headers: head.headers, body: body, status: status))
                        return status
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        url = "http://127.0.0.1:\(channel.localAddress?.port ?? 0)"
    }

    /// A loopback port nothing listens on (bound, then closed).
    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    func close() async {
        continuation.finish()
        try? await channel.close()
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let answer: @Sendable (HTTPRequestHead, String) -> Int
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(answer: @escaping @Sendable (HTTPRequestHead, String) -> Int) { self.answer = answer }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let head else { return }
                let status = answer(head, String(buffer: body))
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "2")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
