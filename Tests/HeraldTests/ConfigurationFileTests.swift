import Herald
import HeraldCore
import HeraldRedis
import Testing

@Suite("herald.yaml configuration file")
struct ConfigurationFileTests {
    let full = """
        server:
          host: 127.0.0.1
          port: 7001
          allowed_origins: [https://shop.test, https://admin.shop.test]
          max_payload: 2_000_000
          max_channels_per_connection: 20
          headers: { X-Frame-Options: DENY }
          tls: { certificate: /etc/herald/cert.pem, private_key: /etc/herald/key.pem }
        log:
          level: debug
        redis:
          url: redis://:secret@10.0.0.5:6380/2
          key_prefix: shop_database_
        socket_io:
          path: /ws
          ping_interval: 10s
          ping_timeout: 5000
          upgrade_timeout: 2.5s
          emit_to_all: yes
        auth:
          hosts: [https://shop.test]
          endpoint: /api/broadcasting/auth
          timeout: 3s
        api:
          clients:
            - { app_id: shop, key: k1 }
          publish: false
        pusher:
          apps:
            - id: "1001"
              key: key-a
              secret: secret-a
              max_connections: 500
              cache_ttl: 10m
              signin_timeout: 30s
              client_events: false
              webhooks:
                - url: https://shop.test/hooks
                  event_types: [member_added, member_removed]
                  channel_name_starts_with: presence-
              webhook_delivery: { batch_size: 10, max_attempts: 3 }
            - { id: "1002", key: key-b, secret: secret-b }
        plugins:
          - use: filter
            deny_channels: ["internal.*"]
          - use: rewrite
            rules:
              - { op: redact, path: user.email }
        """

    @Test("every section maps onto HeraldConfiguration")
    func fullFile() throws {
        let parsed = try HeraldConfigurationFile.parse(full, file: "herald.yaml")
        let c = parsed.configuration
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 7001)
        #expect(c.allowedOrigins == ["https://shop.test", "https://admin.shop.test"])
        #expect(c.maxPayload == 2_000_000)
        #expect(c.maxChannelsPerConnection == 20)
        #expect(c.extraHeaders.map(\.name) == ["X-Frame-Options"])
        #expect(c.tls == TLSFiles(certificateChainPath: "/etc/herald/cert.pem", privateKeyPath: "/etc/herald/key.pem"))
        #expect(parsed.logLevel == "debug")
        #expect(c.redis?.host == "10.0.0.5")
        #expect(c.redis?.port == 6380)
        #expect(c.redis?.database == 2)
        #expect(c.redis?.password == "secret")
        #expect(c.keyPrefix == "shop_database_")
        #expect(c.socketIOPath == "/ws/")
        #expect(c.pingInterval == .seconds(10))
        #expect(c.pingTimeout == .milliseconds(5000))
        #expect(c.upgradeTimeout == .milliseconds(2500))
        #expect(c.emitToAll)
        #expect(c.authorization?.hosts == ["https://shop.test"])
        #expect(c.authorization?.endpoint == "/api/broadcasting/auth")
        #expect(c.authorization?.timeout == .seconds(3))
        #expect(c.apiClients == [APIClient(appID: "shop", key: "k1")])
        #expect(!c.apiPublishEnabled)
        #expect(c.pusherApps.map(\.id) == ["1001", "1002"])
        #expect(c.pusherApps[0].maxConnections == 500)
        #expect(c.pusherApps[0].cacheTTL == 600)
        #expect(c.pusherApps[0].userAuthenticationTimeout == .seconds(30))
        #expect(!c.pusherApps[0].clientEventsEnabled)
        #expect(c.pusherApps[0].webhooks == [PusherWebhook(url: "https://shop.test/hooks", eventTypes: [.memberAdded, .memberRemoved], channelNameStartsWith: "presence-")])
        #expect(c.pusherApps[0].webhookDelivery.batchSize == 10)
        #expect(c.pusherApps[0].webhookDelivery.maxAttempts == 3)
        #expect(c.pusherApps[1].webhooks.isEmpty)
        #expect(c.pusherApps[1].secret == "secret-b")
        #expect(c.pusherApps[1].clientEventsEnabled)
        #expect(parsed.plugins.map(\.use) == ["filter", "rewrite"])
        #expect(parsed.plugins[0].options["deny_channels"] == .array([.string("internal.*")]))
        #expect(parsed.plugins[1].keyPath == "plugins[1]")
    }

    @Test("an empty file is the defaults")
    func empty() throws {
        let parsed = try HeraldConfigurationFile.parse("")
        #expect(parsed.configuration.port == 6001)
        #expect(parsed.configuration.redis == nil)
        #expect(parsed.configuration.authorization == nil)
        #expect(parsed.plugins.isEmpty)
    }

    @Test("environment variables override the file; the file overrides defaults")
    func precedence() throws {
        let text = "server:\n  port: 7001\n  host: 10.1.1.1\nsocket_io:\n  upgrade_timeout: 3s\n"
        let parsed = try HeraldConfigurationFile.parse(text, environment: [
            "HERALD_PORT": "7002",
            "HERALD_SOCKET_IO_UPGRADE_TIMEOUT": "4s",
            "HERALD_REDIS": "redis://127.0.0.1:6390",
            "HERALD_ALLOWED_ORIGINS": "https://a.test, https://b.test",
        ])
        #expect(parsed.configuration.port == 7002)
        #expect(parsed.configuration.host == "10.1.1.1")
        #expect(parsed.configuration.upgradeTimeout == .seconds(4))
        #expect(parsed.configuration.redis?.port == 6390)
        #expect(parsed.configuration.allowedOrigins == ["https://a.test", "https://b.test"])
    }

    @Test(
        "errors name the file, line, column and key path",
        arguments: [
            ("server:\n  port: 70000\n", "herald.yaml:2:9: server.port: 70000 is not in 0…65535"),
            ("server:\n  prot: 1\n", "herald.yaml:2:3: server.prot: unknown key (did you mean 'port'?)"),
            ("pusher:\n  apps:\n    - id: 1\n      key: k\n", "herald.yaml:3:7: pusher.apps[0].secret: is required"),
            ("socket_io:\n  ping_interval: 5x\n", "herald.yaml:2:18: socket_io.ping_interval: '5x' is not a duration (write 250ms, 25s, 5m or 1h; a bare number is milliseconds)"),
            ("server: 5\n", "herald.yaml:1:9: server: expected a mapping of keys to values"),
            ("auth:\n  hosts: [localhost]\n", "herald.yaml:2:10: auth.hosts: entry 0 'localhost' must start with http:// or https://"),
            ("redis:\n  url: http://x\n", "herald.yaml:2:8: redis.url: Redis URL scheme 'http' is not supported"),
            ("plugins:\n  - deny_channels: [a]\n", "herald.yaml:2:5: plugins[0].use: is required: the plugin's name (filter, rewrite, enrich, …)"),
            ("pusher:\n  apps:\n    - {id: a, key: k, secret: s}\n    - {id: a, key: k2, secret: s}\n", "herald.yaml:4:12: pusher.apps[1].id: app id 'a' is used twice"),
            ("server:\n  port: 1\n  port: 2\n", "herald.yaml: not valid YAML: Parser: expected all keys to be unique but found the following duplicated key(s): 'port'"),
            ("pusher:\n  apps:\n    - id: a\n      key: k\n      secret: s\n      webhooks: [{url: ftp://x}]\n", "herald.yaml:6:24: pusher.apps[0].webhooks[0].url: webhook URL 'ftp://x' must start with http:// or https://"),
            ("pusher:\n  apps:\n    - id: a\n      key: k\n      secret: s\n      webhooks: [{url: http://x, event_types: [joined]}]\n", "herald.yaml:6:47: pusher.apps[0].webhooks[0].event_types: entry 0 'joined' is not one of channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss"),
            ("server:\n  tls:\n    certificate: /c.pem\n", "herald.yaml:3:5: server.tls.private_key: is required with certificate (a PEM private key)"),
        ]
    )
    func errors(text: String, expected: String) {
        do {
            _ = try HeraldConfigurationFile.parse(text, file: "herald.yaml")
            Issue.record("expected an error for \(text)")
        } catch {
            #expect(error.description.hasPrefix(expected), "\(error.description)")
        }
    }

    @Test("history: off by default; a section, HERALD_HISTORY or enabled turn recovery on with its limits")
    func history() throws {
        #expect(try HeraldConfigurationFile.parse("").configuration.history == nil)
        let defaults = try HeraldConfigurationFile.parse("history: {}\n").configuration.history
        #expect(defaults == ChannelHistoryConfiguration())
        #expect(defaults?.maxEventsPerChannel == 100 && defaults?.maxAge == .seconds(120) && defaults?.maxBytes == 32 << 20)
        let file = try HeraldConfigurationFile.parse("history:\n  max_events: 20\n  max_age: 5m\n  max_bytes: 1_000_000\n").configuration.history
        #expect(file == ChannelHistoryConfiguration(maxEventsPerChannel: 20, maxAge: .seconds(300), maxBytes: 1_000_000))
        #expect(try HeraldConfigurationFile.parse("history:\n  enabled: false\n  max_events: 20\n").configuration.history == nil)
        let environment = try HeraldConfigurationFile.parse("", environment: [
            "HERALD_HISTORY": "true", "HERALD_HISTORY_MAX_EVENTS": "7", "HERALD_HISTORY_MAX_AGE": "30s", "HERALD_HISTORY_MAX_BYTES": "65536",
        ])
        #expect(environment.configuration.history == ChannelHistoryConfiguration(maxEventsPerChannel: 7, maxAge: .seconds(30), maxBytes: 65_536))
        let limitsOnly = try HeraldConfigurationFile.parse("", environment: ["HERALD_HISTORY_MAX_EVENTS": "7"])
        #expect(limitsOnly.configuration.history == nil)
        #expect(limitsOnly.warnings.contains { $0.contains("no effect while history is off") })
        for (text, expected) in [
            ("history:\n  max_events: 0\n", "herald.yaml:2:15: history.max_events: 0 is not in 1…100000"),
            ("history:\n  max_age: 2d\n", "herald.yaml:2:12: history.max_age: '2d' is not a duration"),
            ("history:\n  max_age: 25h\n", "herald.yaml:2:12: history.max_age: is longer than the maximum 24h"),
            ("history:\n  max_bytes: 1000\n", "herald.yaml:2:14: history.max_bytes: 1000 is not in 65536…"),
            ("history:\n  size: 3\n", "herald.yaml:2:3: history.size: unknown key"),
        ] {
            #expect(throws: ConfigurationFileError.self) { try HeraldConfigurationFile.parse(text, file: "herald.yaml") }
            do {
                _ = try HeraldConfigurationFile.parse(text, file: "herald.yaml")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
        #expect(HeraldConfigurationFile.hasHeraldSections("history: {}\n"))
    }

    @Test("a bad environment value names the variable")
    func environmentError() {
        do {
            _ = try HeraldConfigurationFile.parse("", environment: ["HERALD_PORT": "abc"])
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "HERALD_PORT: 'abc' is not a whole number (from the environment)")
        }
    }

    @Test("YAML syntax errors are reported, not crashed on")
    func syntax() {
        do {
            _ = try HeraldConfigurationFile.parse("server: [1\n", file: "x.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("x.yaml: not valid YAML"))
        }
    }

    @Test("laravel-echo-server files are told apart from Herald files")
    func detection() {
        #expect(HeraldConfigurationFile.looksLikeEchoServerFile(#"{"authHost": "http://localhost", "port": "6001"}"#))
        #expect(!HeraldConfigurationFile.looksLikeEchoServerFile("server:\n  port: 6001\n"))
        #expect(!HeraldConfigurationFile.looksLikeEchoServerFile(""))
    }
}
