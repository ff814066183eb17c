import CoreMetrics
import HeraldCore
import NIOCore
import class Prometheus.PrometheusCollectorRegistry

/// The wire protocol of a connection, as the `protocol` label of `herald_connections`.
enum ConnectionProtocol: String, CaseIterable, Sendable {
    case socketIOv3 = "socketio_v3"
    case socketIOv4 = "socketio_v4"
    case pusher
}

/// Why an event was dropped before delivery, as the `reason` label of `herald_events_dropped_total`.
enum DropReason: String, CaseIterable, Sendable {
    /// The router's queue was full.
    case routerQueueFull = "router_queue_full"
    /// Redis messages arrived faster than the ingest took them (counted by `RedisSubscriber`).
    case redisBufferFull = "redis_buffer_full"
    /// A Redis message that is not a Laravel broadcast.
    case notLaravel = "not_laravel"
}

/// Why a webhook event was dropped, as the `reason` label of `herald_webhook_events_dropped_total`.
enum WebhookDropReason: String, CaseIterable, Sendable {
    /// The webhook's queue was full (the endpoint is slower than the events).
    case queueFull = "queue_full"
    /// Every attempt to deliver its batch failed.
    case deliveryFailed = "delivery_failed"
    /// Still queued when shutdown's time ran out, or recorded after delivery stopped.
    case shutdown
}

/// Herald's metrics, made once per relay from one `MetricsFactory`.
///
/// Every labelled series is created up front, so `/metrics` shows each one (at 0) from the
/// start and recording is an atomic add on an existing handler — never a lookup or an
/// allocation. Recording happens once per event, connection, subscription or auth call, never
/// per recipient.
struct HeraldMetrics: Sendable {
    private let connections: [Meter]
    let subscriptions: Meter
    private let eventsInRedis: Counter
    private let eventsInHTTP: Counter
    private let eventsInProcess: Counter
    private let eventsInClient: Counter
    let deliveries: Counter
    private let dropped: [Counter]
    let authAllowed: Counter
    let authRefused: Counter
    let authError: Counter
    let authOverloaded: Counter
    let authDuration: Timer
    let pluginErrors: Counter
    let slowConsumerDisconnects: Counter
    private let webhookDropped: [Counter]
    /// `herald_webhook_requests_total{result="success"}`: webhook POSTs answered 2xx.
    let webhookRequestsSucceeded: Counter
    /// `herald_webhook_requests_total{result="error"}`: non-2xx answers and transport errors.
    let webhookRequestsFailed: Counter
    /// `herald_webhook_events_sent_total`: events in batches the endpoint accepted.
    let webhookEventsSent: Counter

    /// Metric names, for the tests and the docs.
    enum Name {
        static let connections = "herald_connections"
        static let subscriptions = "herald_subscriptions"
        static let eventsIn = "herald_events_in_total"
        static let deliveries = "herald_deliveries_total"
        static let eventsDropped = "herald_events_dropped_total"
        static let authRequests = "herald_auth_requests_total"
        static let authDuration = "herald_auth_duration_seconds"
        static let redisReconnects = "herald_redis_reconnects_total"
        static let pluginErrors = "herald_plugin_errors_total"
        static let slowConsumerDisconnects = "herald_slow_consumer_disconnects_total"
        static let webhookEventsDropped = "herald_webhook_events_dropped_total"
        static let webhookRequests = "herald_webhook_requests_total"
        static let webhookEventsSent = "herald_webhook_events_sent_total"
    }

    init(factory: any MetricsFactory) {
        connections = ConnectionProtocol.allCases.map {
            Meter(label: Name.connections, dimensions: [("protocol", $0.rawValue)], factory: factory)
        }
        subscriptions = Meter(label: Name.subscriptions, factory: factory)
        func eventsIn(_ source: EventSource) -> Counter {
            Counter(label: Name.eventsIn, dimensions: [("source", source.rawValue)], factory: factory)
        }
        eventsInRedis = eventsIn(.redis)
        eventsInHTTP = eventsIn(.http)
        eventsInProcess = eventsIn(.inProcess)
        eventsInClient = eventsIn(.client)
        deliveries = Counter(label: Name.deliveries, factory: factory)
        dropped = DropReason.allCases.map {
            Counter(label: Name.eventsDropped, dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        authAllowed = Counter(label: Name.authRequests, dimensions: [("result", "allowed")], factory: factory)
        authRefused = Counter(label: Name.authRequests, dimensions: [("result", "refused")], factory: factory)
        authError = Counter(label: Name.authRequests, dimensions: [("result", "error")], factory: factory)
        authOverloaded = Counter(label: Name.authRequests, dimensions: [("result", "overloaded")], factory: factory)
        authDuration = Timer(label: Name.authDuration, factory: factory)
        pluginErrors = Counter(label: Name.pluginErrors, factory: factory)
        slowConsumerDisconnects = Counter(label: Name.slowConsumerDisconnects, factory: factory)
        webhookDropped = WebhookDropReason.allCases.map {
            Counter(label: Name.webhookEventsDropped, dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        webhookRequestsSucceeded = Counter(label: Name.webhookRequests, dimensions: [("result", "success")], factory: factory)
        webhookRequestsFailed = Counter(label: Name.webhookRequests, dimensions: [("result", "error")], factory: factory)
        webhookEventsSent = Counter(label: Name.webhookEventsSent, factory: factory)
    }

    /// Metrics that go nowhere (a registry made without a relay).
    static let disabled = HeraldMetrics(factory: NOOPMetricsHandler.instance)

    func connections(_ kind: ConnectionProtocol) -> Meter {
        connections[ConnectionProtocol.allCases.firstIndex(of: kind)!]
    }

    /// Called once per published event: a switch, no lookup.
    func eventsIn(_ source: EventSource) -> Counter {
        switch source {
        case .redis: eventsInRedis
        case .http: eventsInHTTP
        case .inProcess: eventsInProcess
        case .client: eventsInClient
        }
    }

    func dropped(_ reason: DropReason) -> Counter {
        dropped[DropReason.allCases.firstIndex(of: reason)!]
    }

    /// `herald_webhook_events_dropped_total{reason}`: a switch, no lookup.
    func webhookDropped(_ reason: WebhookDropReason) -> Counter {
        switch reason {
        case .queueFull: webhookDropped[0]
        case .deliveryFailed: webhookDropped[1]
        case .shutdown: webhookDropped[2]
        }
    }
}

/// What `GET /metrics` answers, in the Prometheus text exposition format.
///
/// Herald records its metrics through swift-metrics; this only *renders* them. The usual
/// setup is a `PrometheusCollectorRegistry` behind the `PrometheusMetricsFactory` the
/// application bootstrapped `MetricsSystem` with:
///
/// ```swift
/// let registry = PrometheusCollectorRegistry()
/// MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))   // in the application
/// let relay = Relay(configuration: configuration, metrics: .prometheus(registry), logger: logger)
/// ```
public struct MetricsEndpoint: Sendable {
    /// Writes the exposition into the buffer.
    let render: @Sendable (inout ByteBuffer) -> Void

    /// Serves a custom exposition (another registry, several registries concatenated).
    public init(render: @escaping @Sendable (inout ByteBuffer) -> Void) {
        self.render = render
    }

    /// Serves `registry`'s metrics.
    public static func prometheus(_ registry: PrometheusCollectorRegistry) -> MetricsEndpoint {
        MetricsEndpoint { buffer in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(8 * 1024)
            registry.emit(into: &bytes)
            buffer.writeBytes(bytes)
        }
    }

    /// The `Content-Type` of the text exposition format.
    static let contentType = "text/plain; version=0.0.4"
}
