import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-sentinel` (Debian's `redis-sentinel` package) on a free loopback port,
/// monitoring one master, with its configuration in its own temporary directory.
///
/// Sentinel rewrites its configuration file as it learns (replicas, epochs, failovers), so the
/// file lives in the process's directory. Tests fail (never skip) when `redis-sentinel` is not
/// installed. ``stop()`` must run in teardown.
public final class RedisSentinelProcess: Sendable {
    public let port: Int
    public let directory: URL
    public let masterName: String
    private let process = Mutex<Process?>(nil)

    /// Writes `sentinel.conf` and starts `redis-sentinel`; call ``waitUntilListening(timeout:)``
    /// before use (``start(masterName:masterPort:quorum:downAfterMilliseconds:failoverTimeoutMilliseconds:masterPassword:requirePassword:)`` does).
    ///
    /// - Parameters:
    ///   - masterPort: the master to monitor, on 127.0.0.1.
    ///   - downAfterMilliseconds: how long the master may not answer before it counts as down.
    ///   - failoverTimeoutMilliseconds: Sentinel's `failover-timeout`.
    ///   - masterPassword: `sentinel auth-pass` (the master's and replicas' `requirepass`).
    ///   - requirePassword: the sentinel's own `requirepass`.
    public init(
        masterName: String = "mymaster",
        masterPort: Int,
        quorum: Int = 1,
        downAfterMilliseconds: Int = 1000,
        failoverTimeoutMilliseconds: Int = 5000,
        masterPassword: String? = nil,
        requirePassword: String? = nil
    ) throws {
        self.port = try RedisServerProcess.freePort()
        self.masterName = masterName
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var lines = [
            "port \(port)",
            "bind 127.0.0.1",
            "daemonize no",
            "protected-mode no",
            "dir \(directory.path)",
            "logfile \(logURL.path)",
            "sentinel monitor \(masterName) 127.0.0.1 \(masterPort) \(quorum)",
            "sentinel down-after-milliseconds \(masterName) \(downAfterMilliseconds)",
            "sentinel failover-timeout \(masterName) \(failoverTimeoutMilliseconds)",
            "sentinel parallel-syncs \(masterName) 1",
        ]
        if let masterPassword { lines.append("sentinel auth-pass \(masterName) \(masterPassword)") }
        if let requirePassword { lines.append("requirepass \(requirePassword)") }
        try (lines.joined(separator: "\n") + "\n").write(to: configURL, atomically: true, encoding: .utf8)

        let process = Process()
        process.executableURL = try Self.executable()
        process.arguments = [configURL.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        self.process.withLock { $0 = process }
    }

    /// Starts a sentinel (see ``init(masterName:masterPort:quorum:downAfterMilliseconds:failoverTimeoutMilliseconds:masterPassword:requirePassword:)``)
    /// and waits, without blocking a thread, until it accepts connections.
    public static func start(
        masterName: String = "mymaster",
        masterPort: Int,
        quorum: Int = 1,
        downAfterMilliseconds: Int = 1000,
        failoverTimeoutMilliseconds: Int = 5000,
        masterPassword: String? = nil,
        requirePassword: String? = nil
    ) async throws -> RedisSentinelProcess {
        let sentinel = try RedisSentinelProcess(
            masterName: masterName, masterPort: masterPort, quorum: quorum, downAfterMilliseconds: downAfterMilliseconds,
            failoverTimeoutMilliseconds: failoverTimeoutMilliseconds, masterPassword: masterPassword, requirePassword: requirePassword
        )
        do {
            try await sentinel.waitUntilListening()
        } catch {
            sentinel.stop()
            throw error
        }
        return sentinel
    }

    /// The `sentinel.conf` Sentinel reads and rewrites.
    public var configURL: URL { directory.appendingPathComponent("sentinel.conf") }
    /// Sentinel's log file (failover steps: `+switch-master`, `+convert-to-slave`, …).
    public var logURL: URL { directory.appendingPathComponent("sentinel.log") }
    /// The log so far, for failure messages.
    public var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Waits until the sentinel accepts connections; throws with its log if it exits or the
    /// deadline passes.
    public func waitUntilListening(timeout: Duration = .seconds(10)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if RedisServerProcess.canConnect(port: port) { return }
            if process.withLock({ $0?.isRunning }) != true { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RedisServerProcess.Failure(description: "redis-sentinel did not start on port \(port): \(log)")
    }

    /// The `redis-sentinel` executable.
    public static func executable() throws -> URL {
        let candidates = ["/usr/bin/redis-sentinel", "/usr/local/bin/redis-sentinel", "/usr/sbin/redis-sentinel"]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/redis-sentinel" }
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw RedisServerProcess.Failure(description: "redis-sentinel is not installed (apt-get install redis-sentinel); these tests need a real Redis Sentinel")
        }
        return URL(fileURLWithPath: path)
    }

    /// Kills the sentinel (SIGKILL) and waits for it to exit.
    public func kill() {
        guard let process = process.withLock({ p -> Process? in defer { p = nil }; return p }) else { return }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Stops the sentinel and removes its directory.
    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}
