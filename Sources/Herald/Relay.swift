import CoreMetrics
import HeraldCore
import HeraldProtocols
import HeraldRedis
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A Herald relay: Socket.IO (Engine.IO 3 and 4) and, for configured apps, the Pusher
/// protocol on one port, the router, the HTTP APIs, and (optionally) the Redis ingest of
/// Laravel broadcasts, run together as one `Service`.
///
/// ```swift
/// let relay = Relay(configuration: .init(port: 6001, redis: try RedisConfiguration(url: "redis://127.0.0.1:6379")), logger: logger)
/// let group = ServiceGroup(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
///
/// Publish from Swift with ``publish(_:)`` or ``broadcast(_:excludingSocketID:)``; both take the
/// same path as events from Redis.
public final class Relay: Service, Sendable {
    /// The configuration the relay was created with.
    public let configuration: HeraldConfiguration
    /// Who is subscribed to what.
    public let registry: ChannelRegistry
    /// The router every event goes through.
    public let router: Router
    /// The Redis subscription, when Redis is configured.
    public let subscriber: RedisSubscriber?
    /// The node bus, when ``HeraldConfiguration/cluster`` is set (and Redis configured).
    public let cluster: ClusterBus?

    private let engine: EngineIOServer
    private let authorizer: ChannelAuthorizer?
    /// laravel-echo-server's HTTP API (`/apps/{appId}/…`, answered while `apiClients` is not
    /// empty) and its response headers (`headers`, `apiOriginAllow`).
    private let api: EchoHTTPAPI?
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let bound = Mutex<SocketAddress?>(nil)
    private let ingestDrops = Atomic<Int>(0)
    private let serverTLS = Mutex<ServerTLS?>(nil)
    private let metrics: HeraldMetrics
    private let metricsEndpoint: MetricsEndpoint?

    /// - Parameters:
    ///   - plugins: plugins, in the order they run: event plugins, subscription authorizers
    ///     and connection observers (each takes part in the hooks it implements).
    ///   - pluginTimeBudget: how long one plugin call may take when its plugin sets no
    ///     ``HeraldPlugin/timeBudget``.
    ///   - eventLoopGroup: the loops connections run on (NIO's shared group by default).
    ///   - metrics: what `GET /metrics` serves (typically `.prometheus(registry)` for the
    ///     registry behind the application's `PrometheusMetricsFactory`); `nil` answers 404.
    ///   - metricsFactory: where Herald records its `herald_*` metrics; `nil` uses the
    ///     bootstrapped `MetricsSystem.factory`. Herald never bootstraps `MetricsSystem` itself.
    public init(
        configuration: HeraldConfiguration,
        plugins: [any HeraldPlugin] = [],
        pluginTimeBudget: Duration = PluginChain.defaultTimeBudget,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: MetricsEndpoint? = nil,
        metricsFactory: (any MetricsFactory)? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        let factory = metricsFactory ?? MetricsSystem.factory
        let recorded = HeraldMetrics(factory: factory)
        self.metrics = recorded
        self.metricsEndpoint = metrics
        let webhooks = PusherWebhookSender(apps: configuration.pusherApps, eventLoopGroup: eventLoopGroup, metrics: recorded, logger: logger)
        let cluster = Self.makeCluster(configuration: configuration, eventLoopGroup: eventLoopGroup, metricsFactory: factory, logger: logger)
        self.cluster = cluster
        let clusterPresence: ClusterPresence? = if let cluster, let redis = configuration.redis {
            ClusterPresence(
                nodeID: cluster.nodeID, base: cluster.channel, ttl: configuration.cluster?.presenceTTL ?? .seconds(30),
                redis: redis, eventLoopGroup: eventLoopGroup, logger: logger
            )
        } else {
            nil
        }
        let registry = ChannelRegistry(metrics: recorded, webhooks: webhooks, clusterPresence: clusterPresence)
        self.registry = registry
        let chain = PluginChain(plugins, timeBudget: pluginTimeBudget, onError: { _, _ in recorded.pluginErrors.increment() })
        let router = Router(registry: registry, plugins: chain, emitToAll: configuration.emitToAll, cluster: cluster, history: configuration.history, logger: logger)
        self.router = router
        self.authorizer = configuration.authorization.map {
            ChannelAuthorizer(configuration: $0, eventLoopGroup: eventLoopGroup, metrics: recorded, logger: logger)
        }
        self.engine = EngineIOServer(configuration: configuration, registry: registry, router: router, authorizer: authorizer, logger: logger)
        let hasAPI = !configuration.apiClients.isEmpty || configuration.apiCORS != nil || !configuration.extraHeaders.isEmpty
        self.api = hasAPI ? EchoHTTPAPI(configuration: configuration, registry: registry, router: router, logger: logger) : nil
        self.subscriber = configuration.redis.map {
            RedisSubscriber(configuration: $0, patterns: [configuration.redisPattern], channels: cluster.map { [$0.channel] } ?? [], eventLoopGroup: eventLoopGroup, metricsFactory: factory, logger: logger)
        }
    }

    /// Publishes an event from Swift code: it goes through the plugins and to subscribers
    /// exactly as an event from Redis does. Returns false if the router's queue is full.
    @discardableResult
    public func publish(_ event: Event) -> Bool { router.publish(event) }

    /// The address the server listens on, once ``run()`` has bound it.
    public var boundAddress: SocketAddress? { bound.withLock { $0 } }

    /// Whether the relay is ready for traffic: always in standalone mode, and only while the
    /// Redis subscription is confirmed when Redis is configured.
    public var isReady: Bool { subscriber?.isSubscribed ?? true }

    /// WebSocket connections closed because they stopped reading (see `maxOutboundBytes`).
    public var slowConsumerDisconnects: Int { engine.slowConsumerDisconnects }

    /// Redis messages dropped because they were not Laravel broadcasts.
    public var droppedRedisMessages: Int { ingestDrops.load(ordering: .relaxed) }

    /// Reads the TLS certificate and key files again (``HeraldConfiguration/tls``): connections
    /// made from now on use them; established connections are not touched. On an error the
    /// running certificate stays and the error says which file is wrong. Does nothing without TLS
    /// or before ``run()`` has started listening.
    public func reloadCertificates() throws {
        guard let tls = serverTLS.withLock({ $0 }) else { return }
        try tls.reload()
        logger.notice("TLS certificate reloaded", metadata: ["herald.tls.certificate": "\(tls.files.certificateChainPath)"])
    }

    public func run() async throws {
        let engine = self.engine
        let pusherAPI = configuration.pusherApps.isEmpty ? nil : PusherHTTPAPIHandler(apps: configuration.pusherApps, registry: registry, router: router, logger: logger, engine: engine)
        let status = configuration.statusToken.flatMap { $0.isEmpty ? nil : $0 }.map { token in
            StatusEndpoint(token: token, configuration: configuration, registry: registry, router: router, engine: engine, subscriber: subscriber,
                           notLaravel: { [self] in self.droppedRedisMessages }, loop: eventLoopGroup.any(), logger: logger)
        }
        let endpoints = HTTPEndpoints(isReady: { [self] in self.isReady }, api: api, pusherAPI: pusherAPI, metrics: metricsEndpoint, status: status)
        let tls = try configuration.tls.map { files throws(TLSSetupError) in try ServerTLS(files: files) }
        serverTLS.withLock { $0 = tls }
        let sendBuffer = min(max(0, configuration.socketSendBufferBytes), Int(Int32.max))
        let serverChannel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Client messages are small (subscribe, pings, whispers): start reads small and let
            // NIO grow the buffer for the connections that need more.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65_536))
            // Above the high mark a WebSocket connection counts as a slow consumer (see
            // `maxOutboundBytes`); the sessions check writability at every flush.
            .childChannelOption(.writeBufferWaterMark, value: .init(
                low: max(1, configuration.maxOutboundBytes / 2), high: max(2, configuration.maxOutboundBytes)
            ))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A bounded kernel send buffer (`socketSendBufferBytes`; 0 keeps autotuning):
                    // else Linux lets a client that stopped reading hold up to 4 MiB more, and
                    // NIO's buffer — the slow-consumer check — fills only after that.
                    if sendBuffer > 0 {
                        try channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBuffer))
                    }
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current))
                    }
                    try HTTPPipeline.configure(channel: channel, engine: engine, endpoints: endpoints)
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        bound.withLock { $0 = serverChannel.localAddress }
        logger.info("Herald listening", metadata: [
            "herald.address": "\(serverChannel.localAddress.map { "\($0)" } ?? "?")",
            "herald.path": "\(configuration.socketIOPath)",
            "herald.redis": "\(configuration.redis.map { "\($0)" } ?? "none (standalone)")",
            "herald.pattern": "\(configuration.redis == nil ? "" : configuration.redisPattern)",
            "herald.emit_to_all": "\(configuration.emitToAll)",
            "herald.tls": "\(tls.map { "on (\($0.files.certificateChainPath))" } ?? "off")",
        ])
        for app in configuration.pusherApps {
            logger.info("Pusher app served", metadata: ["herald.pusher.app": "\(app.id)", "herald.pusher.path": "/app/\(app.key)"])
        }
        if let auth = configuration.authorization {
            logger.info("private and presence channels are authorized by the app", metadata: [
                "herald.auth_url": "\(auth.hosts.first ?? "")\(auth.endpoint)",
                "herald.auth_hosts": "\(auth.hosts)",
            ])
            if !auth.verifyCertificates {
                logger.warning("TLS certificates of the auth endpoint are NOT verified (development only)")
            }
        } else {
            logger.notice("no auth host configured: Socket.IO private and presence subscriptions will be refused (403)")
        }
        if configuration.allowedOrigins.contains("*") {
            logger.notice("every Origin is allowed (allowed origins '*'); set --allowed-origins in production")
        }

        try await withThrowingDiscardingTaskGroup { group in
            let presence = self.registry.clusterPresence
            let registry = self.registry
            group.addTask {
                await self.router.run()
                // The router routed its last event; the presence writer sends its last leaves
                // through the cluster bus, so the bus finishes after it.
                if let presence { presence.finish() } else { self.cluster?.finish() }
            }
            if let cluster {
                logger.info("cluster on: events entering this node go to the other nodes", metadata: [
                    "herald.cluster.node": "\(cluster.nodeID)", "herald.cluster.channel": "\(cluster.channel)",
                ])
                group.addTask { await cluster.run() }
            }
            if let presence {
                let router = self.router
                group.addTask {
                    let subscriber = self.subscriber
                    await presence.run(registry: registry, router: router, subscriptionEpoch: { subscriber?.reconnects ?? 0 })
                    await presence.closeQueries()
                    self.cluster?.finish()
                    // The cluster's member_removed/channel_vacated of this node's last
                    // connections were recorded by the writer, which has stopped now.
                    registry.webhooks?.finish()
                }
            }
            if let status {
                logger.info("status endpoints on: GET /status, /status.json, /tail (token required)")
                group.addTask { await status.run() }
            }
            if let webhooks = registry.webhooks {
                group.addTask { await webhooks.run() }
            }
            if let subscriber {
                group.addTask { try await subscriber.run() }
                group.addTask { await self.ingest(from: subscriber) }
            }
            await withTaskCancellationOrGracefulShutdownHandler {
                try? await serverChannel.closeFuture.get()
            } onCancelOrGracefulShutdown: {
                self.logger.info("Herald shutting down: closing connections")
                serverChannel.close(promise: nil)
                engine.closeAll()
            }
            router.finish()
            // Webhooks flush what is queued, with the vacated/member_removed events of the
            // connections just closed, within their shutdown timeout (in a cluster once the
            // presence writer, which records those, has stopped).
            if presence == nil { registry.webhooks?.finish() }
            if Task.isCancelled { group.cancelAll() }
        }
        await authorizer?.shutdown()
        logger.info("Herald stopped")
    }

    /// Turns Laravel broadcasts from Redis into events.
    private func ingest(from subscriber: RedisSubscriber) async {
        let prefix = configuration.keyPrefix
        for await message in subscriber.messages {
            if let cluster, cluster.consume(message, router: router, terminate: { [engine] app, user in
                _ = engine.terminatePusherUser(appID: app, userID: user)
            }) { continue }
            var channel = message.channel
            // By bytes, as Redis compares them (String comparison would equate canonically
            // equivalent spellings and count characters, not bytes).
            if !prefix.isEmpty, channel.utf8.starts(with: prefix.utf8) {
                channel = String(decoding: channel.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
            }
            do {
                let broadcast = try LaravelBroadcast(payload: message.payload)
                router.publish(Event(channel: channel, name: broadcast.event, data: broadcast.data, excludedSocketID: broadcast.socket, source: .redis))
            } catch {
                ingestDrops.add(1, ordering: .relaxed)
                metrics.dropped(.notLaravel).increment()
                logger.warning("dropped a Redis message that is not a Laravel broadcast", metadata: [
                    "herald.channel": "\(message.channel)",
                    "herald.reason": "\(error)",
                    "herald.bytes": "\(message.payload.readableBytes)",
                ])
            }
        }
    }
}
