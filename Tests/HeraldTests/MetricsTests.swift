import HeraldTestSupport
import Herald
import HeraldCore
import HeraldRedis
import MetricsTestKit
import NIOCore
import Prometheus
import Synchronization
import Testing

/// The lines of a `/metrics` body that are samples (not `# TYPE`/`# HELP`).
private func samples(_ body: String) -> Set<String> {
    Set(body.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
}

@Suite("Metrics", .serialized)
struct MetricsTests {
    @Test("GET /metrics serves the relay's Prometheus registry after a handshake, a subscribe and events")
    func prometheusEndpoint() async throws {
        try await withRedisServer { server in
            let redis = RedisConfiguration(host: "127.0.0.1", port: server.port, connectTimeout: .seconds(2),
                                           reconnectBaseDelay: .milliseconds(20), reconnectMaxDelay: .milliseconds(200))
            // An auth host nothing listens on: the private subscription is refused as an error.
            let deadPort = try RedisServerProcess.freePort()
            var configuration = HeraldConfiguration(host: "127.0.0.1", port: 0, redis: redis, keyPrefix: "laravel_database_")
            configuration.authorization = AuthorizationConfiguration(hosts: ["http://127.0.0.1:\(deadPort)"], timeout: .seconds(2))
            // The registry is the test's own: nothing is bootstrapped, nothing is shared.
            let registry = PrometheusCollectorRegistry()
            let relay = Relay(
                configuration: configuration,
                metrics: .prometheus(registry),
                metricsFactory: PrometheusMetricsFactory(registry: registry),
                logger: quietLogger
            )
            let running = Task { try await relay.run() }
            let finished = Atomic<Bool>(false)
            Task {
                _ = await running.result
                finished.store(true, ordering: .relaxed)
            }
            #expect(await eventually { relay.boundAddress != nil && relay.isReady })
            let port = try #require(relay.boundAddress?.port)

            // Before any client: every series is there, at zero.
            let empty = try await HTTPClient.request(.GET, port: port, uri: "/metrics")
            #expect(empty.status == .ok)
            #expect(empty.headers.first(name: "Content-Type") == "text/plain; version=0.0.4")
            let before = samples(empty.body)
            for line in [
                #"herald_connections{protocol="socketio_v3"} 0.0"#,
                #"herald_connections{protocol="socketio_v4"} 0.0"#,
                #"herald_connections{protocol="pusher"} 0.0"#,
                "herald_subscriptions 0.0",
                #"herald_events_in_total{source="redis"} 0"#,
                "herald_deliveries_total 0",
                #"herald_events_dropped_total{reason="router_queue_full"} 0"#,
                #"herald_events_dropped_total{reason="redis_buffer_full"} 0"#,
                #"herald_events_dropped_total{reason="not_laravel"} 0"#,
                #"herald_auth_requests_total{result="allowed"} 0"#,
                "herald_auth_duration_seconds_count 0",
                "herald_redis_reconnects_total 0",
                "herald_plugin_errors_total 0",
            ] {
                #expect(before.contains(line), "missing \(line)")
            }
            #expect(empty.body.contains("# TYPE herald_events_in_total counter"))
            #expect(empty.body.contains("# TYPE herald_connections gauge"))
            #expect(empty.body.contains("# TYPE herald_auth_duration_seconds histogram"))

            // Engine.IO 4 polling handshake, Socket.IO CONNECT, subscribe.
            let open = try await HTTPClient.request(.GET, port: port, uri: "/socket.io/?EIO=4&transport=polling")
            let sid = try #require(try JSONReader.parse(String(open.body.dropFirst()))["sid"]?.stringValue)
            let session = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"
            #expect(try await HTTPClient.request(.POST, port: port, uri: session, body: "40").body == "ok")
            #expect(try await HTTPClient.request(.GET, port: port, uri: session).body.hasPrefix("40{\"sid\":\""))
            let subscribe = #"42["subscribe",{"channel":"orders","auth":{"headers":{}}}]"#
            #expect(try await HTTPClient.request(.POST, port: port, uri: session, body: subscribe).body == "ok")
            #expect(await eventually { relay.registry.subscriberCount("orders") == 1 })

            // Laravel publishes through Redis; a non-Laravel message is dropped; Swift publishes.
            let publisher = try await RedisConnection.connect(configuration: redis, logger: quietLogger)
            let laravel = #"{"event":"App\\Events\\OrderShipped","data":{"id":1},"socket":null}"#
            #expect(try await publisher.publish(ByteBuffer(string: laravel), to: "laravel_database_orders") == 1)
            #expect(try await HTTPClient.request(.GET, port: port, uri: session).body.contains(#"42["App\\Events\\OrderShipped","orders",{"id":1}]"#))
            #expect(try await publisher.publish(ByteBuffer(string: "not json"), to: "laravel_database_orders") == 1)
            #expect(await eventually { relay.droppedRedisMessages == 1 })
            #expect(relay.publish(Event(channel: "orders", name: "Local", data: ByteBuffer(string: "{}"), source: .inProcess)))
            #expect(relay.publish(Event(channel: "nobody", name: "Unheard", data: ByteBuffer(string: "{}"), source: .inProcess)))
            #expect(await eventually { relay.router.statistics.deliveries == 2 })
            // A private channel: the auth call fails (nothing listens), so it is refused.
            let privately = #"42["subscribe",{"channel":"private-orders","auth":{"headers":{}}}]"#
            #expect(try await HTTPClient.request(.POST, port: port, uri: session, body: privately).body == "ok")
            #expect(await eventually { relay.registry.subscriberCount("private-orders") == 0 })

            var after = Set<String>()
            let expected = [
                #"herald_connections{protocol="socketio_v3"} 0.0"#,
                #"herald_connections{protocol="socketio_v4"} 1.0"#,
                #"herald_connections{protocol="pusher"} 0.0"#,
                "herald_subscriptions 1.0",
                #"herald_events_in_total{source="redis"} 1"#,
                #"herald_events_in_total{source="inProcess"} 2"#,
                #"herald_events_in_total{source="http"} 0"#,
                #"herald_events_in_total{source="client"} 0"#,
                "herald_deliveries_total 2",
                #"herald_events_dropped_total{reason="router_queue_full"} 0"#,
                #"herald_events_dropped_total{reason="redis_buffer_full"} 0"#,
                #"herald_events_dropped_total{reason="not_laravel"} 1"#,
                #"herald_auth_requests_total{result="allowed"} 0"#,
                #"herald_auth_requests_total{result="refused"} 0"#,
                #"herald_auth_requests_total{result="error"} 1"#,
                #"herald_auth_requests_total{result="overloaded"} 0"#,
                "herald_auth_duration_seconds_count 1",
                "herald_redis_reconnects_total 0",
                "herald_plugin_errors_total 0",
            ]
            // The auth answer arrives on its own time; poll /metrics until it is counted.
            for _ in 0..<100 {
                after = samples(try await HTTPClient.request(.GET, port: port, uri: "/metrics").body)
                if after.isSuperset(of: expected) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            for line in expected {
                #expect(after.contains(line), "missing \(line)")
            }

            // The client leaves: its connection and subscription are gone from the gauges.
            #expect(try await HTTPClient.request(.POST, port: port, uri: session, body: "1").body == "ok")
            #expect(await eventually { relay.registry.sessionCount == 0 })
            let gone = samples(try await HTTPClient.request(.GET, port: port, uri: "/metrics").body)
            #expect(gone.contains(#"herald_connections{protocol="socketio_v4"} 0.0"#))
            #expect(gone.contains("herald_subscriptions 0.0"))

            await publisher.close()
            running.cancel()
            #expect(await eventually { finished.load(ordering: .relaxed) }, "Relay.run() did not return after cancellation")
        }
    }

    @Test("Without a metrics endpoint, /metrics is 404")
    func noEndpoint() async throws {
        let relay = Relay(configuration: HeraldConfiguration(host: "127.0.0.1", port: 0), metricsFactory: TestMetrics(), logger: quietLogger)
        let running = Task { try await relay.run() }
        #expect(await eventually { relay.boundAddress != nil })
        let port = try #require(relay.boundAddress?.port)
        #expect(try await HTTPClient.request(.GET, port: port, uri: "/metrics").status == .notFound)
        running.cancel()
        _ = await running.result
    }

    @Test("Events in, deliveries and plugin errors are recorded through the injected factory (MetricsTestKit)")
    func metricsTestKit() async throws {
        let metrics = TestMetrics()
        let relay = Relay(
            configuration: HeraldConfiguration(host: "127.0.0.1", port: 0),
            plugins: [Failing(failurePolicy: .pass)],
            metricsFactory: metrics,
            logger: quietLogger
        )
        let running = Task { try await relay.run() }
        #expect(await eventually { relay.boundAddress != nil })
        #expect(relay.publish(Event(channel: "orders", name: "A", data: ByteBuffer(string: "{}"), source: .inProcess)))
        #expect(relay.publish(Event(channel: "orders", name: "B", data: ByteBuffer(string: "{}"), source: .client)))
        let pluginErrors = try metrics.expectCounter("herald_plugin_errors_total")
        #expect(await eventually { pluginErrors.totalValue == 2 })
        #expect(try metrics.expectCounter("herald_events_in_total", [("source", "inProcess")]).totalValue == 1)
        #expect(try metrics.expectCounter("herald_events_in_total", [("source", "client")]).totalValue == 1)
        #expect(try metrics.expectCounter("herald_events_in_total", [("source", "redis")]).totalValue == 0)
        #expect(try metrics.expectCounter("herald_deliveries_total").totalValue == 0)
        running.cancel()
        _ = await running.result
    }
}
