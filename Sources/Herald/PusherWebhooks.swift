import AsyncHTTPClient
import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One Pusher webhook event (PROTOCOLS.md D.14), recorded where it happens.
///
/// Its channel is a ``ChannelKey``: the namespace says which app's webhooks hear of it (the
/// shared channels: the first app's), and only the name goes on the wire.
enum PusherWebhookEvent: Sendable, Hashable {
    /// The channel's subscriber count went from 0 to 1.
    case channelOccupied(channel: ChannelKey)
    /// The channel's subscriber count went from 1 to 0.
    case channelVacated(channel: ChannelKey)
    /// A user's first connection joined the presence channel.
    case memberAdded(channel: ChannelKey, userID: String)
    /// A user's last connection left the presence channel.
    case memberRemoved(channel: ChannelKey, userID: String)
    /// A client event; `data` is the event's raw JSON, `userID` the sender's presence user id.
    case clientEvent(channel: ChannelKey, event: String, data: ByteBuffer, socketID: String, userID: String?)
    /// A cache channel subscriber got `pusher:cache_miss`.
    case cacheMiss(channel: ChannelKey)

    /// The event's `name`.
    var type: PusherWebhookEventType {
        switch self {
        case .channelOccupied: .channelOccupied
        case .channelVacated: .channelVacated
        case .memberAdded: .memberAdded
        case .memberRemoved: .memberRemoved
        case .clientEvent: .clientEvent
        case .cacheMiss: .cacheMiss
        }
    }

    /// The event's channel.
    var channel: ChannelKey {
        switch self {
        case .channelOccupied(let channel), .channelVacated(let channel), .cacheMiss(let channel),
             .memberAdded(let channel, _), .memberRemoved(let channel, _), .clientEvent(let channel, _, _, _, _):
            channel
        }
    }

    /// Writes the event object: `{"name":…,"channel":…,…}`.
    func write(into buffer: inout ByteBuffer) {
        buffer.writeStaticString("{\"name\":")
        JSONValue.writeQuoted(type.rawValue, into: &buffer)
        buffer.writeStaticString(",\"channel\":")
        JSONValue.writeQuoted(channel.name, into: &buffer)
        switch self {
        case .channelOccupied, .channelVacated, .cacheMiss:
            break
        case .memberAdded(_, let userID), .memberRemoved(_, let userID):
            buffer.writeStaticString(",\"user_id\":")
            JSONValue.writeQuoted(userID, into: &buffer)
        case .clientEvent(_, let event, let data, let socketID, let userID):
            buffer.writeStaticString(",\"event\":")
            JSONValue.writeQuoted(event, into: &buffer)
            buffer.writeStaticString(",\"data\":")
            Self.writeDataString(data, into: &buffer)
            buffer.writeStaticString(",\"socket_id\":")
            JSONValue.writeQuoted(socketID, into: &buffer)
            if let userID {
                buffer.writeStaticString(",\"user_id\":")
                JSONValue.writeQuoted(userID, into: &buffer)
            }
        }
        buffer.writeStaticString("}")
    }

    /// `data` as Pusher sends it, a JSON string: a JSON string literal passes through as it is,
    /// any other JSON value (object, array, number, …) becomes the string of its JSON text.
    static func writeDataString(_ raw: ByteBuffer, into buffer: inout ByteBuffer) {
        let bytes = raw.readableBytesView
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
              let last = bytes.lastIndex(where: { !isSpace($0) }) else {
            buffer.writeStaticString("\"\"")
            return
        }
        let trimmed = bytes[first...last]
        // The data was parsed as JSON when it arrived, so a literal that starts and ends with
        // a quote is one whole, valid JSON string.
        if trimmed.count >= 2, trimmed.first == UInt8(ascii: "\""), trimmed.last == UInt8(ascii: "\"") {
            buffer.writeBytes(trimmed)
        } else {
            JSONValue.writeQuoted(utf8: trimmed, into: &buffer)
        }
    }
}

/// The bytes and headers of one webhook request (PROTOCOLS.md D.14).
enum PusherWebhookRequest {
    /// `{"time_ms":<ms>,"events":[…]}`.
    static func body(_ events: some Sequence<PusherWebhookEvent>, timeMilliseconds: Int64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("{\"time_ms\":\(timeMilliseconds),\"events\":[")
        var first = true
        for event in events {
            if !first { buffer.writeStaticString(",") }
            first = false
            event.write(into: &buffer)
        }
        buffer.writeStaticString("]}")
        return buffer
    }

    /// `X-Pusher-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes, keyed by the
    /// app secret.
    static func signature(body: ByteBuffer, secret: String) -> String {
        PusherSignature.hmacHex(secret: secret, bytes: Array(body.readableBytesView))
    }

    /// Milliseconds since the Unix epoch (wall clock, as Pusher's `time_ms`).
    static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// `url` without `user:password@`, for logs.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<schemeEnd.upperBound]) + "***@" + String(url[url.index(after: at)...])
    }
}

/// Sends the webhooks of every Pusher app that has some (``PusherApp/webhooks``).
///
/// **Whose**: an event goes only to the webhooks of the app owning its channel's namespace —
/// the first app for the shared channels (Socket.IO, Redis, the first app's own), each further
/// app for its own channels (see ``ChannelKey``). `#server-to-user-<id>` channels are Herald's
/// internal per-user channels (Pusher reserves `#` names): they produce no
/// `channel_occupied`/`channel_vacated`.
///
/// **Recording** (``record(_:)``) is what the relay's paths call — the ``ChannelRegistry`` on
/// occupancy and presence transitions (under its lock, so a channel's events are queued in the
/// order they happened), sessions on client events and cache misses. It never blocks and never
/// allocates per recipient: per webhook URL, a filter check, then one short lock and an append
/// to that URL's bounded queue. A full queue drops the event and counts it
/// (`herald_webhook_events_dropped_total{reason="queue_full"}`); the delivery task logs the
/// drops, at most once per 10 s per URL.
///
/// **Delivery** runs in ``run()`` — a child task of ``Relay/run()`` — one task per URL: it
/// waits until the URL's queue holds ``PusherWebhookDelivery/batchSize`` events or its oldest
/// event waited ``PusherWebhookDelivery/batchInterval``, then POSTs them as one signed batch,
/// retrying non-2xx answers and transport errors with exponential backoff and jitter up to
/// ``PusherWebhookDelivery/maxAttempts``; a batch that still fails is dropped, counted
/// (`reason="delivery_failed"`) and logged. One batch is in flight per URL at a time, so a
/// URL's events arrive in order; a slow URL holds back only its own queue.
///
/// **Shutdown**: ``finish()`` (called by the relay once it stopped accepting and started
/// closing connections) makes every URL flush what is queued without waiting for full batches,
/// keep taking events for a quiet period (the batch interval, within 100 ms…1 s: the vacated
/// and member-removed events of the connections being closed), and stop; after ``PusherWebhookDelivery/shutdownTimeout`` what
/// is still in flight is cancelled and counted (`reason="shutdown"`).
final class PusherWebhookSender: Sendable {
    /// One queue and delivery task per webhook URL of an app.
    let targets: [PusherWebhookTarget]
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let metrics: HeraldMetrics
    private let shutdown = Mutex(ShutdownState())

    private struct ShutdownState {
        var finishing = false
        var watchdog: CheckedContinuation<Void, Never>?
    }

    /// Makes a sender for the apps' webhooks; `nil` when no app has a usable one. Webhooks
    /// whose URL is invalid are logged and left out.
    init?(apps: [PusherApp], eventLoopGroup: any EventLoopGroup, metrics: HeraldMetrics, logger: Logger) {
        var targets: [PusherWebhookTarget] = []
        for app in apps {
            let namespace = ChannelKey.namespace(of: app, among: apps)
            for webhook in app.webhooks {
                do {
                    try webhook.validate()
                } catch {
                    logger.error("webhook left out: \(error.message)", metadata: ["herald.pusher.app": "\(app.id)"])
                    continue
                }
                targets.append(PusherWebhookTarget(
                    app: app, namespace: namespace, webhook: webhook, loop: eventLoopGroup.next(), metrics: metrics, logger: logger
                ))
            }
        }
        guard !targets.isEmpty else { return nil }
        self.targets = targets
        self.eventLoopGroup = eventLoopGroup
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues `event` for every webhook of the app owning its channel that wants it. Cheap and
    /// non-blocking; callable from any thread, including under the registry's lock.
    func record(_ event: PusherWebhookEvent) {
        let type = event.type
        let channel = event.channel
        if type == .channelOccupied || type == .channelVacated, channel.name.hasPrefix(PusherChannelName.serverToUserPrefix) {
            return
        }
        for target in targets where target.namespace == channel.namespace && target.webhook.accepts(type, channel: channel.name) {
            target.enqueue(event)
        }
    }

    /// Delivers until ``finish()`` was called and the queues are flushed (or the shutdown
    /// timeout passed), or until the task is cancelled.
    func run() async {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        // A refused connection is retried until the connect timeout, within the request's.
        let requestTimeout = targets.map(\.delivery.requestTimeout).min() ?? .seconds(10)
        let client = HTTPClient(
            eventLoopGroupProvider: .shared(eventLoopGroup),
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls,
                redirectConfiguration: .disallow,
                timeout: .init(connect: PusherWebhookTarget.timeAmount(min(requestTimeout, .seconds(5))))
            )
        )
        for target in targets {
            logger.info("Pusher webhook configured", metadata: target.logMetadata)
        }
        let shutdownTimeout = targets.map(\.delivery.shutdownTimeout).max() ?? .seconds(5)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withDiscardingTaskGroup { workers in
                    for target in self.targets {
                        workers.addTask { await target.run(client: client) }
                    }
                }
            }
            group.addTask {
                // The watchdog: once shutdown began, delivery gets `shutdownTimeout` to finish.
                await self.waitForFinish()
                try? await Task.sleep(for: shutdownTimeout)
            }
            // Whichever ends first (the workers drained, or the watchdog's time ran out)
            // ends the other.
            await group.next()
            group.cancelAll()
        }
        do {
            try await client.shutdown()
        } catch {
            logger.debug("webhook HTTP client shutdown", metadata: ["error": "\(error)"])
        }
    }

    /// Starts the graceful shutdown of delivery (idempotent): every URL flushes its queue,
    /// takes events for one more batch interval, then stops.
    func finish() {
        let watchdog: CheckedContinuation<Void, Never>? = shutdown.withLock { state in
            state.finishing = true
            defer { state.watchdog = nil }
            return state.watchdog
        }
        watchdog?.resume()
        for target in targets { target.finish() }
    }

    private func waitForFinish() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now: Bool = shutdown.withLock { state in
                    if state.finishing || Task.isCancelled { return true }
                    state.watchdog = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let watchdog = shutdown.withLock { state in
                defer { state.watchdog = nil }
                return state.watchdog
            }
            watchdog?.resume()
        }
    }
}

/// One webhook URL of one app: its filter, its bounded queue and its delivery loop.
final class PusherWebhookTarget: Sendable {
    let appID: String
    /// The channel namespace of the app (`nil`: the shared channels, for the first app).
    let namespace: String?
    let key: String
    private let secret: String
    let webhook: PusherWebhook
    let delivery: PusherWebhookDelivery
    /// Runs the batch timers.
    private let loop: any EventLoop
    private let metrics: HeraldMetrics
    private let logger: Logger
    private let queue = Mutex(Queue())
    /// Events dropped because the queue was full, not yet logged.
    private let droppedUnlogged = Atomic<Int>(0)
    /// When drops were last logged (delivery task only).
    private let lastDropLog = Mutex(NIODeadline.distantPast)

    private struct Queue {
        var events = CircularBuffer<PusherWebhookEvent>(initialCapacity: 16)
        /// When the oldest waiting event was queued (events queued later never make it later).
        var oldest = NIODeadline.distantPast
        /// The delivery task, waiting for `threshold` events (or its timer, or shutdown).
        var waiter: CheckedContinuation<Void, Never>?
        var threshold = 1
        var timer: Scheduled<Void>?
        /// Set by ``finish()``: flush without batching, stop once idle after `quietUntil`.
        var draining = false
        var quietUntil = NIODeadline.distantFuture
        /// The delivery task is gone: events are dropped.
        var stopped = false
        var cancelled = false
    }

    private enum Enqueued {
        case queued(wake: CheckedContinuation<Void, Never>?)
        case full
        case stopped
    }

    init(app: PusherApp, namespace: String?, webhook: PusherWebhook, loop: any EventLoop, metrics: HeraldMetrics, logger: Logger) {
        self.appID = app.id
        self.namespace = namespace
        self.key = app.key
        self.secret = app.secret
        self.webhook = webhook
        var delivery = app.webhookDelivery
        delivery.batchSize = max(1, delivery.batchSize)
        delivery.maxAttempts = max(1, delivery.maxAttempts)
        delivery.maxQueuedEvents = max(1, delivery.maxQueuedEvents)
        self.delivery = delivery
        self.loop = loop
        self.metrics = metrics
        self.logger = logger
    }

    /// App id and URL (credentials in it redacted); never the secret.
    var logMetadata: Logger.Metadata {
        [
            "herald.pusher.app": "\(appID)",
            "herald.webhook.url": "\(PusherWebhookRequest.redacted(webhook.url))",
            "herald.webhook.events": "\(webhook.eventTypes.isEmpty ? "all" : webhook.eventTypes.map(\.rawValue).sorted().joined(separator: ","))",
        ]
    }

    /// Number of events waiting.
    var queuedCount: Int { queue.withLock { $0.events.count } }

    // MARK: Recording

    /// Appends `event`, or drops and counts it when the queue is full or delivery stopped.
    func enqueue(_ event: PusherWebhookEvent) {
        let limit = delivery.maxQueuedEvents
        let result: Enqueued = queue.withLock { queue in
            if queue.stopped { return .stopped }
            if queue.events.count >= limit { return .full }
            if queue.events.isEmpty { queue.oldest = .now() }
            queue.events.append(event)
            guard queue.waiter != nil, queue.events.count >= queue.threshold else { return .queued(wake: nil) }
            defer { queue.waiter = nil }
            return .queued(wake: queue.waiter)
        }
        switch result {
        case .queued(let wake):
            wake?.resume()
        case .full:
            droppedUnlogged.add(1, ordering: .relaxed)
            metrics.webhookDropped(.queueFull).increment()
        case .stopped:
            metrics.webhookDropped(.shutdown).increment()
        }
    }

    /// Flush, then stop once the queue is empty and a quiet period (the batch interval, within
    /// 100 ms…1 s) has passed since this call (see ``PusherWebhookSender/finish()``).
    func finish() {
        let quiet = min(max(delivery.batchInterval, .milliseconds(100)), .seconds(1))
        let wake: CheckedContinuation<Void, Never>? = queue.withLock { queue in
            if !queue.draining {
                queue.draining = true
                queue.quietUntil = .now() + Self.timeAmount(quiet)
            }
            defer { queue.waiter = nil }
            return queue.waiter
        }
        wake?.resume()
    }

    // MARK: Delivery

    /// The delivery loop: batch, POST, retry; returns when stopped or cancelled.
    func run(client: HTTPClient) async {
        while let batch = await nextBatch() {
            await deliver(batch, client: client)
        }
        logDrops(force: true)
    }

    /// The next batch to send: up to `batchSize` events, once there are that many or the
    /// oldest waited `batchInterval` (at once while draining). `nil` when delivery stops; what
    /// is left is counted as dropped at shutdown.
    func nextBatch() async -> [PusherWebhookEvent]? {
        enum Step {
            case take([PusherWebhookEvent])
            case wait(threshold: Int, until: NIODeadline?)
            case stop(dropped: Int)
        }
        let batchSize = delivery.batchSize
        let interval = Self.timeAmount(delivery.batchInterval)
        while true {
            let now = NIODeadline.now()
            let cancelled = Task.isCancelled
            let step: Step = queue.withLock { queue in
                func take() -> [PusherWebhookEvent] {
                    let count = min(batchSize, queue.events.count)
                    var batch: [PusherWebhookEvent] = []
                    batch.reserveCapacity(count)
                    for _ in 0..<count { batch.append(queue.events.removeFirst()) }
                    return batch
                }
                if cancelled || queue.cancelled {
                    queue.stopped = true
                    defer { queue.events.removeAll() }
                    return .stop(dropped: queue.events.count)
                }
                if queue.draining {
                    if !queue.events.isEmpty { return .take(take()) }
                    if now >= queue.quietUntil {
                        queue.stopped = true
                        return .stop(dropped: 0)
                    }
                    return .wait(threshold: 1, until: queue.quietUntil)
                }
                if queue.events.isEmpty { return .wait(threshold: 1, until: nil) }
                if queue.events.count >= batchSize || now >= queue.oldest + interval { return .take(take()) }
                return .wait(threshold: batchSize, until: queue.oldest + interval)
            }
            switch step {
            case .take(let batch):
                return batch
            case .stop(let dropped):
                if dropped > 0 {
                    metrics.webhookDropped(.shutdown).increment(by: dropped)
                    logger.warning("webhook events dropped at shutdown", metadata: logMetadata.merging(["herald.dropped": "\(dropped)"]) { $1 })
                }
                return nil
            case .wait(let threshold, let deadline):
                await wait(threshold: threshold, until: deadline)
            }
        }
    }

    /// Suspends until `threshold` events are queued, `deadline` passes, shutdown begins or the
    /// task is cancelled (callers re-check: a wake-up may be spurious).
    private func wait(threshold: Int, until deadline: NIODeadline?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready: Bool = queue.withLock { queue in
                    if queue.cancelled || queue.events.count >= threshold { return true }
                    queue.waiter = continuation
                    queue.threshold = threshold
                    return false
                }
                if ready {
                    continuation.resume()
                    return
                }
                if let deadline {
                    let timer = loop.scheduleTask(deadline: deadline) { [self] in wakeForTimer() }
                    queue.withLock { $0.timer = timer }
                }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, Never>? = queue.withLock { queue in
                queue.cancelled = true
                defer { queue.waiter = nil }
                return queue.waiter
            }
            waiter?.resume()
        }
        queue.withLock { queue in
            queue.timer?.cancel()
            queue.timer = nil
        }
    }

    private func wakeForTimer() {
        let waiter: CheckedContinuation<Void, Never>? = queue.withLock { queue in
            defer { queue.waiter = nil }
            return queue.waiter
        }
        waiter?.resume()
    }

    /// POSTs one batch, retrying as configured; counts and logs the outcome.
    func deliver(_ batch: [PusherWebhookEvent], client: HTTPClient) async {
        let body = PusherWebhookRequest.body(batch, timeMilliseconds: PusherWebhookRequest.nowMilliseconds())
        let signature = PusherWebhookRequest.signature(body: body, secret: secret)
        var attempt = 0
        while true {
            attempt += 1
            logDrops(force: false)
            let failure = await post(body, signature: signature, client: client)
            guard let failure else {
                metrics.webhookRequestsSucceeded.increment()
                metrics.webhookEventsSent.increment(by: batch.count)
                if attempt > 1 {
                    logger.info("webhook delivered after retrying", metadata: logMetadata.merging(["herald.attempts": "\(attempt)"]) { $1 })
                }
                return
            }
            metrics.webhookRequestsFailed.increment()
            var metadata = logMetadata
            metadata["herald.reason"] = "\(failure)"
            metadata["herald.attempt"] = "\(attempt)"
            metadata["herald.events"] = "\(batch.count)"
            if Task.isCancelled {
                metrics.webhookDropped(.shutdown).increment(by: batch.count)
                logger.warning("webhook batch dropped at shutdown", metadata: metadata)
                return
            }
            guard attempt < delivery.maxAttempts else {
                metrics.webhookDropped(.deliveryFailed).increment(by: batch.count)
                logger.error("webhook batch dropped: every attempt failed", metadata: metadata)
                return
            }
            let delay = backoff(afterAttempt: attempt)
            metadata["herald.retry_in_ms"] = "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)"
            logger.debug("webhook attempt failed; retrying", metadata: metadata)
            do {
                try await Task.sleep(for: delay)
            } catch {
                metrics.webhookDropped(.shutdown).increment(by: batch.count)
                logger.warning("webhook batch dropped at shutdown", metadata: metadata)
                return
            }
        }
    }

    /// Sends the request once; `nil` on a 2xx answer, else why it failed.
    private func post(_ body: ByteBuffer, signature: String, client: HTTPClient) async -> String? {
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Pusher-Key", value: key)
        request.headers.add(name: "X-Pusher-Signature", value: signature)
        request.headers.add(name: "User-Agent", value: "Herald")
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: Self.timeAmount(delivery.requestTimeout))
            // Read (and discard) a bounded answer so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(response.status.code) else { return "HTTP \(response.status.code)" }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Exponential backoff with jitter: half of `min(maxBackoff, initialBackoff × 2^(n-1))`
    /// fixed, the other half random.
    func backoff(afterAttempt attempt: Int) -> Duration {
        let initial = max(Self.nanoseconds(delivery.initialBackoff), 1)
        let cap = max(Self.nanoseconds(delivery.maxBackoff), initial)
        let exponent = min(attempt - 1, 40)
        let base = initial > cap >> exponent ? cap : min(cap, initial << exponent)
        let half = base / 2
        return .nanoseconds(half + Int64.random(in: 0...max(0, base - half)))
    }

    /// Logs the events dropped for a full queue since the last time, at most every 10 s
    /// (`force`: whatever is left, when delivery stops).
    private func logDrops(force: Bool) {
        guard droppedUnlogged.load(ordering: .relaxed) > 0 else { return }
        let now = NIODeadline.now()
        let due: Bool = lastDropLog.withLock { last in
            guard force || now - last >= .seconds(10) else { return false }
            last = now
            return true
        }
        guard due else { return }
        let dropped = droppedUnlogged.exchange(0, ordering: .relaxed)
        guard dropped > 0 else { return }
        logger.warning("webhook queue full: events dropped", metadata: logMetadata.merging([
            "herald.dropped": "\(dropped)",
            "herald.limit": "\(delivery.maxQueuedEvents)",
        ]) { $1 })
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(nanoseconds(duration))
    }
}
