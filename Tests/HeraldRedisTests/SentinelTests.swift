import HeraldRedis
import HeraldTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

// Redis Sentinel against real processes on loopback: a master, a replica
// (`redis-server --replicaof`), and one `redis-sentinel` (quorum 1, down-after 1 s).

/// A master, its replica and a sentinel monitoring them as `mymaster`.
struct SentinelDeployment {
    let master: RedisServerProcess
    let replica: RedisServerProcess
    let sentinel: RedisSentinelProcess
    /// The data nodes' `requirepass`, if any.
    let password: String?
    /// The sentinel's `requirepass`, if any.
    let sentinelPassword: String?

    /// A direct connection configuration for one data node.
    func direct(_ port: Int) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: port, password: password, connectTimeout: .seconds(2))
    }

    /// A configuration that finds the master through the sentinel, with short test delays
    /// unless `backoff` says otherwise.
    func throughSentinel(
        masterName: String = "mymaster", sentinels: [RedisAddress]? = nil, backoff: ClosedRange<Duration>? = nil
    ) -> RedisConfiguration {
        RedisConfiguration(
            sentinels: sentinels ?? [RedisAddress(host: "127.0.0.1", port: sentinel.port)],
            masterName: masterName, sentinelPassword: sentinelPassword, sentinelTimeout: .seconds(2),
            password: password, connectTimeout: .seconds(2),
            reconnectBaseDelay: backoff?.lowerBound ?? .milliseconds(20), reconnectMaxDelay: backoff?.upperBound ?? .milliseconds(200)
        )
    }

    /// Runs one command on a fresh connection to `port` (a data node or, with `sentinel`, the sentinel).
    func run(_ arguments: [String], on port: Int, sentinel: Bool = false, database: Int = 0) async throws -> RESPValue {
        try await runOnce(arguments, port: port, password: sentinel ? sentinelPassword : password, database: database)
    }

    /// `ROLE`'s first element (`master`, `slave`), or `nil` when the server cannot be asked.
    func role(of port: Int) async -> String? {
        guard case .array(let items)? = try? await run(["ROLE"], on: port) else { return nil }
        return items.first?.string
    }

    /// How many patterns are subscribed on `port` (`PUBSUB NUMPAT`); only the subscriber under
    /// test uses patterns (Sentinel's own `__sentinel__:hello` is a channel).
    func patternSubscriptions(on port: Int) async -> Int64? {
        try? await run(["PUBSUB", "NUMPAT"], on: port).int
    }
}

/// Runs one command on a fresh direct connection to `127.0.0.1:port`, then closes it.
func runOnce(_ arguments: [String], port: Int, password: String?, database: Int = 0) async throws -> RESPValue {
    let configuration = RedisConfiguration(host: "127.0.0.1", port: port, password: password, database: database, connectTimeout: .seconds(2))
    let connection = try await RedisConnection.connect(configuration: configuration, logger: quietLogger)
    do {
        let reply = try await connection.send(arguments)
        await connection.close()
        return reply
    } catch {
        await connection.close()
        throw error
    }
}

/// Starts a master, a replica and a sentinel, waits until the sentinel knows the replica as
/// healthy (so a failover has somewhere to go), runs `body`, and stops everything.
func withSentinelDeployment<T>(
    password: String? = nil,
    sentinelPassword: String? = nil,
    _ body: (SentinelDeployment) async throws -> T
) async throws -> T {
    let auth = password.map { ["--requirepass", $0, "--masterauth", $0] } ?? []
    let master = try RedisServerProcess(arguments: auth)
    var started: [() -> Void] = [{ master.stop() }]
    defer { for stop in started.reversed() { stop() } }
    let replica = try RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", "\(master.port)"] + auth)
    started.append { replica.stop() }
    // The replica must be attached before the sentinel's first INFO, or Sentinel learns of it
    // only at the next INFO, ten seconds later.
    let linked = await eventuallyAsync(timeout: .seconds(20)) {
        guard case .bulkString(let info)? = try? await runOnce(["INFO", "replication"], port: replica.port, password: password) else { return false }
        return String(buffer: info).contains("master_link_status:up")
    }
    try #require(linked, "the replica never linked to the master")
    let sentinel = try await RedisSentinelProcess.start(
        masterPort: master.port, masterPassword: password, requirePassword: sentinelPassword
    )
    started.append { sentinel.stop() }
    let deployment = SentinelDeployment(master: master, replica: replica, sentinel: sentinel, password: password, sentinelPassword: sentinelPassword)
    let knowsReplica = await eventuallyAsync(timeout: .seconds(20)) {
        guard case .array(let replicas)? = try? await deployment.run(["SENTINEL", "replicas", "mymaster"], on: sentinel.port, sentinel: true) else { return false }
        return replicas.contains { entry in
            let fields = fieldMap(entry)
            return fields["port"] == "\(replica.port)" && fields["flags"] == "slave" && fields["master-link-status"] == "ok"
        }
    }
    try #require(knowsReplica, "the sentinel never saw the replica as healthy: \(sentinel.log)")
    return try await body(deployment)
}

/// A flat `[key, value, key, value…]` reply (Sentinel's `SENTINEL replicas` entries) as a dictionary.
func fieldMap(_ reply: RESPValue) -> [String: String] {
    guard case .array(let items) = reply else { return [:] }
    var fields: [String: String] = [:]
    var index = 0
    while index + 1 < items.count {
        if let key = items[index].string, let value = items[index + 1].string { fields[key] = value }
        index += 2
    }
    return fields
}

/// Polls an async `condition` until it holds or `timeout` passes; returns whether it held.
func eventuallyAsync(timeout: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// Keeps every log record, to check what was logged (and that no secret was).
final class LogRecords: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
        /// The record as one line, metadata included.
        var line: String { "\(level) \(message) \(metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))" }
    }

    private let records = Mutex<[Record]>([])
    var all: [Record] { records.withLock { $0 } }
    func append(_ record: Record) { records.withLock { $0.append(record) } }

    var logger: Logger {
        var logger = Logger(label: "herald.tests.sentinel", factory: { _ in RecordingHandler(records: self) })
        logger.logLevel = .debug
        return logger
    }

    struct RecordingHandler: LogHandler {
        let records: LogRecords
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var merged = metadata.mapValues { "\($0)" }
            for (key, value) in event.metadata ?? [:] { merged[key] = "\(value)" }
            if let error = event.error { merged["error"] = "\(error)" }
            records.append(Record(level: event.level, message: "\(event.message)", metadata: merged))
        }
    }
}

@Suite("Redis Sentinel URLs")
struct SentinelConfigurationTests {
    @Test("redis+sentinel:// with several sentinels, defaults, database and passwords")
    func parse() throws {
        let full = try RedisConfiguration(url: "redis+sentinel://:data%40pw@10.0.0.1:26380,sentinel-b,[::1]:26381/my%20master/3?sentinel_password=s%26pw")
        let sentinel = try #require(full.sentinel)
        #expect(sentinel.sentinels == [
            RedisAddress(host: "10.0.0.1", port: 26380), RedisAddress(host: "sentinel-b", port: 26379), RedisAddress(host: "::1", port: 26381),
        ])
        #expect(sentinel.masterName == "my master")
        #expect(sentinel.password == "s&pw")
        #expect(sentinel.username == nil)
        #expect(sentinel.timeout == .seconds(1))
        #expect(full.password == "data@pw")
        #expect(full.username == nil)
        #expect(full.database == 3)

        let minimal = try RedisConfiguration(url: "REDIS+SENTINEL://s1/mymaster")
        #expect(minimal.sentinel == RedisSentinelConfiguration(sentinels: [RedisAddress(host: "s1", port: 26379)], masterName: "mymaster"))
        #expect(minimal.database == 0)
        #expect(minimal.password == nil)

        let acl = try RedisConfiguration(url: "redis-sentinel://app:pw@s1:1,s2:2/cache/0/?sentinel_username=watcher&sentinel_password=spw")
        #expect(acl.username == "app")
        #expect(acl.password == "pw")
        #expect(acl.sentinel?.username == "watcher")
        #expect(acl.sentinel?.password == "spw")
        #expect(acl.sentinel?.sentinels.map(\.port) == [1, 2])
        #expect(acl.sentinel?.masterName == "cache")

        // The plain form is untouched.
        #expect(try RedisConfiguration(url: "redis://h:7/1").sentinel == nil)
    }

    @Test("the Swift initializer")
    func initializer() {
        let configuration = RedisConfiguration(
            sentinels: [RedisAddress(host: "a", port: 26379), RedisAddress(host: "b", port: 26380)],
            masterName: "mymaster", sentinelPassword: "spw", password: "pw", database: 2
        )
        #expect(configuration.sentinel?.sentinels.count == 2)
        #expect(configuration.sentinel?.masterName == "mymaster")
        #expect(configuration.sentinel?.password == "spw")
        #expect(configuration.password == "pw")
        #expect(configuration.database == 2)
        #expect(configuration.reconnectMaxDelay == .seconds(5))
        #expect(configuration.description == "redis+sentinel://:***@a:26379,b:26380/mymaster/2?sentinel_password=***")
        #expect(configuration.address == "redis+sentinel://a:26379,b:26380/mymaster/2")
    }

    @Test("description and address never show a password")
    func masking() throws {
        let configuration = try RedisConfiguration(url: "redis+sentinel://u:s3cret@h1,h2:26400/m/1?sentinel_username=w&sentinel_password=t0p")
        #expect(configuration.description == "redis+sentinel://u:***@h1:26379,h2:26400/m/1?sentinel_username=w&sentinel_password=***")
        #expect(configuration.address == "redis+sentinel://h1:26379,h2:26400/m/1")
        #expect(try RedisConfiguration(url: "redis://:s3cret@h:7/2").address == "redis://h:7/2")
    }

    @Test("bad Sentinel URLs are refused with .invalidConfiguration", arguments: [
        "redis+sentinel://h1:26379",            // no master name
        "redis+sentinel://h1:26379/",           // empty master name
        "redis+sentinel:///mymaster",           // no sentinel
        "redis+sentinel://h1,,h2/mymaster",     // an empty sentinel entry
        "redis+sentinel://h1,/mymaster",
        "redis+sentinel://h1:0/mymaster",
        "redis+sentinel://h1:abc/mymaster",
        "redis+sentinel://h1:/mymaster",
        "redis+sentinel://[::1/mymaster",
        "redis+sentinel://h1/mymaster/x",       // database not a number
        "redis+sentinel://h1/mymaster/-1",
        "redis+sentinel://h1/mymaster/1/more",  // too many path segments
        "redis+sentinel://h1/mymaster?sentinel_pasword=x", // unknown parameter
        "rediss+sentinel://h1/mymaster",
        "sentinel://h1/mymaster",
    ])
    func invalid(url: String) {
        do {
            let configuration = try RedisConfiguration(url: url)
            Issue.record("'\(url)' was accepted as \(configuration)")
        } catch {
            #expect(error.kind == .invalidConfiguration)
            #expect(error.message.isEmpty == false)
        }
    }

    @Test("errors about a URL never repeat its passwords", arguments: [
        "redis+sentinel://:s3cret@h1:abc/m?sentinel_password=t0p",
        "redis+sentinel://user:s3cret@h1/m/x?sentinel_password=t0p",
        "redis+sentinel://:s3cret@h1/m?sentinel_password=t0p&bogus=1",
        "redis://:s3cret@h:abc",
        "redis://s3cret@h/x",
    ])
    func errorsMaskPasswords(url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("'\(url)' was accepted")
        } catch {
            #expect(!error.message.contains("s3cret"), "\(error.message)")
            #expect(!error.message.contains("t0p"), "\(error.message)")
            #expect(error.message.contains("***"), "\(error.message)")
        }
    }

    @Test("a Sentinel configuration with nothing to ask fails clearly")
    func nothingToAsk() async {
        for configuration in [
            RedisConfiguration(sentinels: [], masterName: "mymaster"),
            RedisConfiguration(sentinels: [RedisAddress(host: "127.0.0.1", port: 26379)], masterName: ""),
        ] {
            do {
                _ = try await RedisConnection.connect(configuration: configuration, logger: quietLogger)
                Issue.record("connected without sentinels or master name")
            } catch let error as RedisError {
                #expect(error.kind == .invalidConfiguration)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }
}

@Suite("Redis Sentinel against real redis-server and redis-sentinel", .serialized)
struct SentinelTests {
    @Test("RedisConnection finds the master through Sentinel, skips dead sentinels, refuses unknown names and replicas")
    func connectThroughSentinel() async throws {
        try await withSentinelDeployment { deployment in
            let records = LogRecords()
            let dead = try RedisServerProcess.freePort()
            let url = "redis+sentinel://127.0.0.1:\(dead),127.0.0.1:\(deployment.sentinel.port)/mymaster/4"
            let connection = try await RedisConnection.connect(configuration: try RedisConfiguration(url: url), logger: records.logger)
            #expect(connection.configuration.host == "127.0.0.1")
            #expect(connection.configuration.port == deployment.master.port)
            #expect(connection.configuration.database == 4)
            #expect(try await connection.command(["SET", "k", "v"]) == .simpleString("OK"))
            // It really is the master: the write reached the replica through replication.
            let replicated = await eventuallyAsync {
                (try? await deployment.run(["GET", "k"], on: deployment.replica.port, database: 4))?.string == "v"
            }
            #expect(replicated)
            guard case .array(let role) = try await connection.send(["ROLE"]) else {
                Issue.record("ROLE did not answer an array")
                return
            }
            #expect(role.first?.string == "master")
            await connection.close()
            // Each step was logged: the dead sentinel, then the answer.
            let lines = records.all.map(\.line)
            #expect(lines.contains { $0.contains("Sentinel did not name the master") && $0.contains("127.0.0.1:\(dead)") })
            #expect(lines.contains { $0.contains("Sentinel named the master") && $0.contains("127.0.0.1:\(deployment.master.port)") })

            // A master name the sentinel does not monitor.
            do {
                _ = try await RedisConnection.connect(configuration: deployment.throughSentinel(masterName: "nosuchmaster"), logger: quietLogger)
                Issue.record("an unknown master name connected")
            } catch let error as RedisError {
                #expect(error.kind == .masterUnavailable)
                #expect(error.message.contains("no master named 'nosuchmaster'"), "\(error.message)")
            }

            // No sentinel reachable.
            do {
                _ = try await RedisConnection.connect(
                    configuration: deployment.throughSentinel(sentinels: [RedisAddress(host: "127.0.0.1", port: dead)]), logger: quietLogger
                )
                Issue.record("connected without a reachable sentinel")
            } catch let error as RedisError {
                #expect(error.kind == .masterUnavailable)
                #expect(error.message.contains("127.0.0.1:\(dead)"), "\(error.message)")
            }

            // The sentinel's answer is stale: the server it names has become a replica (of a
            // third server). ROLE says so, and the connection is refused rather than used to
            // publish into a replica. (Sentinel itself reacts only after down-after + 20 s.)
            let other = try RedisServerProcess()
            defer { other.stop() }
            _ = try await deployment.run(["REPLICAOF", "127.0.0.1", "\(other.port)"], on: deployment.master.port)
            do {
                let stale = try await RedisConnection.connect(configuration: deployment.throughSentinel(), logger: quietLogger)
                Issue.record("connected to \(stale.configuration.port), which is a replica now")
                await stale.close()
            } catch let error as RedisError {
                #expect(error.kind == .masterUnavailable)
                #expect(error.message.contains("reports role 'slave'"), "\(error.message)")
            }
        }
    }

    @Test("passwords: the master's from the URL, the sentinel's from sentinel_password; none is logged")
    func passwords() async throws {
        try await withSentinelDeployment(password: "data-s3cret", sentinelPassword: "sentinel-t0p") { deployment in
            let records = LogRecords()
            let port = deployment.sentinel.port
            let url = "redis+sentinel://:data-s3cret@127.0.0.1:\(port)/mymaster/2?sentinel_password=sentinel-t0p"
            let connection = try await RedisConnection.connect(configuration: try RedisConfiguration(url: url), logger: records.logger)
            #expect(connection.configuration.port == deployment.master.port)
            #expect(try await connection.command(["SET", "k", "v"]) == .simpleString("OK"))
            await connection.close()

            // A subscriber through the same URL.
            let subscriber = RedisSubscriber(configuration: try RedisConfiguration(url: url), patterns: ["p.*"], logger: records.logger)
            let collector = MessageCollector(subscriber)
            let service = runInBackground(subscriber)
            #expect(await eventually { subscriber.isSubscribed })
            let publisher = try await RedisConnection.connect(configuration: deployment.direct(deployment.master.port), logger: quietLogger)
            #expect(try await publisher.publish(ByteBuffer(string: "hello"), to: "p.1") == 1)
            #expect(await eventually { collector.messages.count == 1 })
            await publisher.close()
            await cancelAndJoin(service)
            collector.cancel()

            // Without the sentinel's password the sentinel refuses the question.
            do {
                _ = try await RedisConnection.connect(
                    configuration: try RedisConfiguration(url: "redis+sentinel://:data-s3cret@127.0.0.1:\(port)/mymaster"), logger: records.logger
                )
                Issue.record("the sentinel answered without its password")
            } catch let error as RedisError {
                #expect(error.kind == .masterUnavailable)
                #expect(error.message.contains("NOAUTH"), "\(error.message)")
            }
            // A wrong master password is a configuration error, not retried as a failover.
            do {
                _ = try await RedisConnection.connect(
                    configuration: try RedisConfiguration(url: "redis+sentinel://:wrong@127.0.0.1:\(port)/mymaster?sentinel_password=sentinel-t0p"), logger: records.logger
                )
                Issue.record("a wrong master password was accepted")
            } catch let error as RedisError {
                #expect(error.kind == .server)
                #expect(error.message.contains("WRONGPASS"), "\(error.message)")
            }

            let lines = records.all.map(\.line)
            #expect(lines.contains { $0.contains("Sentinel named the master") })
            #expect(lines.contains { $0.contains("subscribed to Redis") })
            #expect(!lines.contains { $0.contains("s3cret") || $0.contains("t0p") }, "a password reached the log")
        }
    }

    @Test("SENTINEL FAILOVER: the subscriber follows +switch-master to the new master at once")
    func forcedFailover() async throws {
        try await withSentinelDeployment { deployment in
            let records = LogRecords()
            let subscriber = RedisSubscriber(configuration: deployment.throughSentinel(), patterns: ["orders.*"], logger: records.logger)
            let collector = MessageCollector(subscriber)
            let service = runInBackground(subscriber)
            defer { collector.cancel() }
            #expect(await eventually { subscriber.isSubscribed })
            #expect(subscriber.connectedAddress == RedisAddress(host: "127.0.0.1", port: deployment.master.port))

            let before = try await RedisConnection.connect(configuration: deployment.direct(deployment.master.port), logger: quietLogger)
            #expect(try await before.publish(ByteBuffer(string: "before"), to: "orders.1") == 1)
            #expect(await eventually { collector.messages.count == 1 })
            await before.close()

            let clock = ContinuousClock()
            let start = clock.now
            let failover = await eventuallyAsync {
                (try? await deployment.run(["SENTINEL", "FAILOVER", "mymaster"], on: deployment.sentinel.port, sentinel: true)) == .simpleString("OK")
            }
            try #require(failover, "SENTINEL FAILOVER was refused: \(deployment.sentinel.log)")
            let newMaster = RedisAddress(host: "127.0.0.1", port: deployment.replica.port)
            let moved = await eventually(timeout: .seconds(30)) {
                subscriber.isSubscribed && subscriber.connectedAddress == newMaster
            }
            let took = clock.now - start
            try #require(moved, "the subscriber did not move to the new master: \(deployment.sentinel.log)")
            let oldRole = await deployment.role(of: deployment.master.port) ?? "?"
            print("Sentinel forced failover: subscriber on the new master \(took) after SENTINEL FAILOVER (old master's role then: \(oldRole))")

            // Sentinel's notice moved it, not the old master dropping its clients (a forced
            // failover reconfigures the old master only seconds later, on its next INFO).
            #expect(subscriber.failoversFollowed == 1)
            #expect(subscriber.reconnects == 1, "one reconnection, straight to the new master")
            #expect(records.all.contains { $0.message.contains("Sentinel reports a failover") && $0.metadata["redis.reason"]?.contains("+switch-master") == true })
            #expect(await deployment.role(of: deployment.replica.port) == "master")
            #expect(await deployment.patternSubscriptions(on: deployment.replica.port) == 1, "the subscription is on the new master")
            #expect(await eventuallyAsync { await deployment.patternSubscriptions(on: deployment.master.port) == 0 }, "and has left the old one")
            if let outage = records.all.last(where: { $0.message == "subscribed to Redis" })?.metadata["redis.outage"] {
                print("Sentinel forced failover: the subscriber logged redis.outage=\(outage)")
            }

            let after = try await RedisConnection.connect(configuration: deployment.direct(deployment.replica.port), logger: quietLogger)
            #expect(try await after.publish(ByteBuffer(string: "after"), to: "orders.2") == 1)
            #expect(await eventually { collector.messages.count == 2 })
            #expect(collector.messages.map { String(buffer: $0.payload) } == ["before", "after"])
            #expect(collector.messages.last?.pattern == "orders.*")
            await after.close()
            await cancelAndJoin(service)
        }
    }

    @Test("SIGKILL of the master: the subscriber follows Sentinel's promotion of the replica", arguments: [false, true])
    func masterCrash(longBackoff: Bool) async throws {
        try await withSentinelDeployment { deployment in
            let records = LogRecords()
            // Short backoff: the subscriber keeps asking Sentinel, which names the dead master
            // until the failover. Long backoff (30 s): the first retry waits, and only Sentinel's
            // +switch-master can cut that wait short.
            let backoff: ClosedRange<Duration>? = longBackoff ? .seconds(30) ... .seconds(30) : nil
            let subscriber = RedisSubscriber(configuration: deployment.throughSentinel(backoff: backoff), patterns: ["orders.*"], logger: records.logger)
            let collector = MessageCollector(subscriber)
            let service = runInBackground(subscriber)
            defer { collector.cancel() }
            #expect(await eventually { subscriber.isSubscribed })
            #expect(subscriber.connectedAddress?.port == deployment.master.port)

            let clock = ContinuousClock()
            let start = clock.now
            deployment.master.kill()
            #expect(await eventually { subscriber.isSubscribed == false })
            let newMaster = RedisAddress(host: "127.0.0.1", port: deployment.replica.port)
            // The deadline stays below the long backoff: only the wake-up can meet it there.
            let moved = await eventually(timeout: .seconds(25)) {
                subscriber.isSubscribed && subscriber.connectedAddress == newMaster
            }
            let took = clock.now - start
            try #require(moved, "the subscriber did not reach the promoted replica: \(deployment.sentinel.log)")
            let mode = longBackoff ? "30 s backoff" : "20-200 ms backoff"
            print("Sentinel failover after SIGKILL (\(mode)): subscriber on the new master \(took) after the kill (down-after 1 s; \(subscriber.reconnects) reconnect attempts, \(subscriber.failoversFollowed) via +switch-master)")
            if let outage = records.all.last(where: { $0.message == "subscribed to Redis" })?.metadata["redis.outage"] {
                print("Sentinel failover after SIGKILL (\(mode)): the subscriber logged redis.outage=\(outage)")
            }
            if longBackoff {
                #expect(records.all.contains { $0.message.contains("Sentinel announced a failover; connecting to the new master now") })
                #expect(subscriber.reconnects == 1)
                #expect(subscriber.failoversFollowed == 1)
            } else {
                // While the old master was gone, Sentinel still named it: the subscriber logged
                // the refused connection and retried rather than giving up.
                #expect(records.all.contains { $0.message == "could not connect to Redis" })
            }
            #expect(subscriber.reconnects >= 1)
            #expect(await deployment.role(of: deployment.replica.port) == "master")
            #expect(await deployment.patternSubscriptions(on: deployment.replica.port) == 1)

            let publisher = try await RedisConnection.connect(configuration: deployment.throughSentinel(), logger: quietLogger)
            #expect(publisher.configuration.port == deployment.replica.port, "a publishing connection finds the new master too")
            #expect(try await publisher.publish(ByteBuffer(string: "after the crash"), to: "orders.9") == 1)
            #expect(await eventually { collector.messages.count == 1 })
            #expect(collector.messages.first.map { String(buffer: $0.payload) } == "after the crash")
            await publisher.close()
            await cancelAndJoin(service)
        }
    }
}
