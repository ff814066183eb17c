import Crypto
import HeraldCore
import HeraldProtocols
import HeraldRedis
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// The status endpoints, on when ``HeraldConfiguration/statusToken`` is set (else 404):
///
/// | request | answer |
/// |---|---|
/// | `GET /status.json[?top=N]` | the node's state as JSON (connections by protocol, busiest channels, presence, events per second over the last 5 minutes, Redis) |
/// | `GET /status` | the status page (``StatusPage``), which polls `/status.json` |
/// | `GET /tail[?channel=GLOB&event=GLOB]` | Server-Sent Events: one `data: {…}` line per routed event (see ``TailLine``) |
///
/// Each takes the token as `Authorization: Bearer <token>` or `?token=<token>` (so the page
/// opens in a browser), compared in constant time; a wrong or missing token is a 401 JSON
/// error. The token is never logged.
final class StatusEndpoint: Sendable {
    private let token: [UInt8]
    private let configuration: HeraldConfiguration
    private let registry: ChannelRegistry
    private let router: Router
    private let engine: EngineIOServer
    private let subscriber: RedisSubscriber?
    private let notLaravel: @Sendable () -> Int
    private let loop: any EventLoop
    private let logger: Logger
    private let started = ContinuousClock.now
    private let rates: Mutex<EventRateRing>
    /// The tail hub the router offers every event to.
    var tail: TailHub { router.tail }

    /// Most rows of the busiest-channel table (`?top=`) and of the presence table.
    static let maxRows = 100
    /// Seconds of history in `events.per_second`.
    static let windowSeconds = 300
    /// `Content-Security-Policy` of the page: nothing but its own inline script (pinned by
    /// hash), its inline style, and requests to this origin.
    static let pagePolicy: String = {
        var policy = "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        let html = StatusPage.html
        if let open = html.range(of: "<script>"), let close = html.range(of: "</script>", range: open.upperBound..<html.endIndex) {
            let digest = SHA256.hash(data: Array(html[open.upperBound..<close.lowerBound].utf8))
            policy += "; script-src 'sha256-\(Base64.encode(Array(digest)))'"
        }
        return policy
    }()

    /// - Parameters:
    ///   - token: the status token (not empty).
    ///   - notLaravel: Redis messages the ingest dropped as not Laravel broadcasts.
    ///   - loop: where the once-a-second sampling timer runs.
    init(
        token: String,
        configuration: HeraldConfiguration,
        registry: ChannelRegistry,
        router: Router,
        engine: EngineIOServer,
        subscriber: RedisSubscriber?,
        notLaravel: @escaping @Sendable () -> Int,
        loop: any EventLoop,
        logger: Logger
    ) {
        self.token = Array(token.utf8)
        self.configuration = configuration
        self.registry = registry
        self.router = router
        self.engine = engine
        self.subscriber = subscriber
        self.notLaravel = notLaravel
        self.loop = loop
        self.logger = logger
        self.rates = Mutex(EventRateRing(capacity: Self.windowSeconds, startTotal: router.statistics.eventsIn, startSecond: 0))
    }

    // MARK: Sampling

    /// Samples the router's event total once a second until cancellation or graceful shutdown;
    /// then ends every tail stream. Runs in the relay's task group.
    func run() async {
        let (ticks, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let timer = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            continuation.yield()
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            for await _ in ticks { self.sample() }
        } onCancelOrGracefulShutdown: {
            timer.cancel()
            continuation.finish()
            self.tail.closeAll()
        }
        timer.cancel()
    }

    private var elapsedSeconds: Int64 { (ContinuousClock.now - started).components.seconds }

    private func sample() {
        let total = router.statistics.eventsIn
        let second = elapsedSeconds
        rates.withLock { $0.sample(total: total, second: second) }
    }

    // MARK: HTTP

    /// Whether `path` is one of the status endpoints.
    func handles(_ path: Substring) -> Bool {
        path == "/status" || path == "/status.json" || path == "/tail"
    }

    /// Answers a complete request to one of the status endpoints (on the channel's loop).
    func handle(head: HTTPRequestHead, channel: any Channel) {
        let path = EngineIOServer.path(head.uri)
        let responder = PollResponder(channel: channel, headers: HTTPHeaders(), keepAlive: head.isKeepAlive)
        guard head.method == .GET else {
            let answer = PollResponder(channel: channel, headers: ["Allow": "GET"], keepAlive: head.isKeepAlive)
            answer.respond(status: .methodNotAllowed, contentType: "application/json", body: Self.error("\(head.method) is not allowed here; use GET"))
            return
        }
        guard authorized(head) else {
            logger.info("status request refused: missing or wrong status token", metadata: ["herald.path": "\(path)"])
            let answer = PollResponder(channel: channel, headers: ["WWW-Authenticate": "Bearer realm=\"herald\""], keepAlive: head.isKeepAlive)
            answer.respond(
                status: .unauthorized, contentType: "application/json",
                body: Self.error("missing or wrong status token: send 'Authorization: Bearer <token>' or add ?token=<token>")
            )
            return
        }
        let query = EngineIOServer.query(head.uri)
        switch path {
        case "/status.json":
            var top = 10
            if let text = query["top"] {
                guard let value = Int(text), (1...Self.maxRows).contains(value) else {
                    responder.respond(status: .badRequest, contentType: "application/json", body: Self.error("top must be a whole number from 1 to \(Self.maxRows)"))
                    return
                }
                top = value
            }
            var body = ByteBuffer()
            document(top: top).write(into: &body)
            responder.respond(contentType: "application/json", body: body)
        case "/status":
            let page = PollResponder(channel: channel, headers: [
                "Content-Security-Policy": Self.pagePolicy,
                "X-Content-Type-Options": "nosniff",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
            ], keepAlive: head.isKeepAlive)
            page.respond(contentType: "text/html; charset=utf-8", body: ByteBuffer(string: StatusPage.html))
        default:
            openTail(head: head, query: query, channel: channel, responder: responder)
        }
    }

    private func authorized(_ head: HTTPRequestHead) -> Bool {
        let given: Substring?
        if let header = head.headers.first(name: "Authorization") {
            let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            given = parts.count == 2 && parts[0].lowercased() == "bearer" ? parts[1].drop { $0 == " " } : nil
        } else {
            given = EngineIOServer.query(head.uri)["token"].map { Substring($0) }
        }
        guard let given, !given.isEmpty else { return false }
        return PusherSignature.constantTimeEquals(Array(given.utf8), token)
    }

    static func error(_ message: String) -> ByteBuffer {
        var body = ByteBuffer()
        JSONValue.object([JSONMember(key: "error", value: .string(message))]).write(into: &body)
        return body
    }

    // MARK: /tail

    private func openTail(head: HTTPRequestHead, query: [String: String], channel: any Channel, responder: PollResponder) {
        for key in ["channel", "event"] {
            if let pattern = query[key], pattern.utf8.count > TailFilter.maxPatternLength {
                responder.respond(status: .badRequest, contentType: "application/json", body: Self.error("\(key) glob is longer than \(TailFilter.maxPatternLength) bytes"))
                return
            }
        }
        let filter = TailFilter(channel: query["channel"], event: query["event"])
        let subscriber = TailSubscriber(filter: filter, channel: channel, capacity: tail.bufferedLines)
        switch tail.add(subscriber) {
        case .failure(.tooMany):
            responder.respond(status: .serviceUnavailable, contentType: "application/json", body: Self.error("too many tail clients (at most \(tail.maxSubscribers)); close one and retry"))
            return
        case .failure(.shuttingDown):
            responder.respond(status: .serviceUnavailable, contentType: "application/json", body: Self.error("the node is shutting down"))
            return
        case .success:
            break
        }
        var response = HTTPResponseHead(version: head.version, status: .ok)
        response.headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        response.headers.add(name: "Cache-Control", value: "no-store")
        response.headers.add(name: "X-Accel-Buffering", value: "no")
        channel.write(HTTPServerResponsePart.head(response), promise: nil)
        let hello = ": herald tail channel=\(filter.channel ?? "*") event=\(filter.event ?? "*")\n\n"
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(string: hello))), promise: nil)
        try? channel.pipeline.syncOperations.addHandler(TailStreamHandler(subscriber: subscriber))
        let keepAlive = channel.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(15), delay: .seconds(15)) { _ in
            subscriber.keepAlive()
        }
        let logger = self.logger
        let metadata: Logger.Metadata = ["herald.tail.channel": "\(filter.channel ?? "*")", "herald.tail.event": "\(filter.event ?? "*")"]
        logger.info("tail client connected", metadata: metadata)
        channel.closeFuture.whenComplete { _ in
            keepAlive.cancel()
            var closed = metadata
            closed["herald.tail.dropped"] = "\(subscriber.droppedLines)"
            logger.info("tail client disconnected", metadata: closed)
        }
    }

    // MARK: /status.json

    /// The status document (see the README's "Status page, status and tail").
    func document(top: Int) -> JSONValue {
        sample()
        func number(_ n: some BinaryInteger) -> JSONValue { .number(String(n)) }
        let uptime = ContinuousClock.now - started
        let seconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18

        let counts = engine.connectionCounts
        let connections: JSONValue = .object([
            JSONMember(key: "total", value: number(counts.socketIOv3 + counts.socketIOv4 + counts.pusher)),
            JSONMember(key: "socketio_v4", value: number(counts.socketIOv4)),
            JSONMember(key: "socketio_v3", value: number(counts.socketIOv3)),
            JSONMember(key: "pusher", value: number(counts.pusher)),
        ])

        // Every namespace: a further Pusher app's channel reads `app <id>: <name>` (`channel`)
        // and carries the app id (`app`), so it is never mistaken for a shared channel.
        let keys = registry.channelKeys
        let busiest = keys.map { (key: $0, name: $0.description, subscribers: registry.subscriberCount(key: $0)) }
            .filter { $0.subscribers > 0 }
            .sorted { $0.subscribers != $1.subscribers ? $0.subscribers > $1.subscribers : $0.name < $1.name }
            .prefix(top)
        let channels: JSONValue = .object([
            JSONMember(key: "count", value: number(keys.count)),
            JSONMember(key: "busiest", value: .array(busiest.map { entry in
                .object(Self.channelMembers(entry.key, name: entry.name) + [JSONMember(key: "subscribers", value: number(entry.subscribers))])
            })),
        ])

        let presenceKeys = keys.filter { ChannelKind($0.name) == .presence }
        let presenceRows = presenceKeys
            .map { (key: $0, name: $0.description, members: registry.presenceMembers(key: $0).count, subscribers: registry.subscriberCount(key: $0)) }
            .sorted { $0.members != $1.members ? $0.members > $1.members : $0.name < $1.name }
            .prefix(Self.maxRows)
        let presence: JSONValue = .object([
            JSONMember(key: "count", value: number(presenceKeys.count)),
            JSONMember(key: "channels", value: .array(presenceRows.map { row in
                .object(Self.channelMembers(row.key, name: row.name) + [
                    JSONMember(key: "members", value: number(row.members)),
                    JSONMember(key: "subscribers", value: number(row.subscribers)),
                ])
            })),
        ])

        let statistics = router.statistics
        let ring = rates.withLock { $0 }
        let events: JSONValue = .object([
            JSONMember(key: "in_total", value: number(statistics.eventsIn)),
            JSONMember(key: "dropped_total", value: number(statistics.eventsDropped)),
            JSONMember(key: "deliveries_total", value: number(statistics.deliveries)),
            JSONMember(key: "last_minute", value: number(ring.sum(lastSeconds: 60))),
            JSONMember(key: "window_seconds", value: number(ring.capacity)),
            JSONMember(key: "per_second", value: .array(ring.perSecond.map { number($0) })),
        ])

        let redis: JSONValue
        if let config = configuration.redis {
            redis = .object([
                JSONMember(key: "configured", value: .bool(true)),
                JSONMember(key: "address", value: .string(config.address)),
                JSONMember(key: "pattern", value: .string(configuration.redisPattern)),
                JSONMember(key: "subscribed", value: .bool(subscriber?.isSubscribed ?? false)),
                JSONMember(key: "reconnects", value: number(subscriber?.reconnects ?? 0)),
                JSONMember(key: "dropped_messages", value: number(subscriber?.droppedMessages ?? 0)),
                JSONMember(key: "not_laravel", value: number(notLaravel())),
            ])
        } else {
            redis = .object([
                JSONMember(key: "configured", value: .bool(false)),
                JSONMember(key: "address", value: .null),
                JSONMember(key: "pattern", value: .null),
                JSONMember(key: "subscribed", value: .bool(false)),
                JSONMember(key: "reconnects", value: number(0)),
                JSONMember(key: "dropped_messages", value: number(0)),
                JSONMember(key: "not_laravel", value: number(0)),
            ])
        }

        return .object([
            JSONMember(key: "uptime_seconds", value: .number(String(format3(seconds)))),
            JSONMember(key: "memory_rss_bytes", value: EchoHTTPAPI.memoryUsage()["rss"] ?? number(0)),
            JSONMember(key: "connections", value: connections),
            JSONMember(key: "channels", value: channels),
            JSONMember(key: "presence", value: presence),
            JSONMember(key: "events", value: events),
            JSONMember(key: "redis", value: redis),
            JSONMember(key: "slow_consumer_disconnects", value: number(engine.slowConsumerDisconnects)),
            JSONMember(key: "tail", value: .object([JSONMember(key: "clients", value: number(tail.subscriberCount))])),
        ])
    }

    /// A channel row's `channel` (the readable ``ChannelKey/description``) and, for a further
    /// Pusher app's channel, `app` (its id).
    private static func channelMembers(_ key: ChannelKey, name: String) -> [JSONMember] {
        var members = [JSONMember(key: "channel", value: .string(name))]
        if let namespace = key.namespace { members.append(JSONMember(key: "app", value: .string(namespace))) }
        return members
    }

    /// `seconds` with three decimals, as JSON number text.
    private func format3(_ seconds: Double) -> String {
        let millis = Int64((max(0, seconds) * 1_000).rounded())
        let fraction = String(millis % 1_000)
        return "\(millis / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
