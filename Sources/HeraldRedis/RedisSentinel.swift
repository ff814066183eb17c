import Logging
import NIOCore
import Synchronization

/// A `+switch-master` notice from Sentinel: `<master name> <old ip> <old port> <new ip> <new port>`.
struct SentinelSwitchNotice: Sendable, Hashable {
    var masterName: String
    var old: RedisAddress
    var new: RedisAddress

    /// Parses the payload of a `+switch-master` message; `nil` if it is not one.
    init?(payload: String) {
        let fields = payload.split(separator: " ")
        guard fields.count == 5, let oldPort = Int(fields[2]), let newPort = Int(fields[4]) else { return nil }
        self.masterName = String(fields[0])
        self.old = RedisAddress(host: String(fields[1]), port: oldPort)
        self.new = RedisAddress(host: String(fields[3]), port: newPort)
    }
}

/// Finds the current master through Redis Sentinel.
///
/// Each lookup asks the sentinels in turn, each over its own short-lived ``RedisConnection``
/// bounded by ``RedisSentinelConfiguration/timeout``; the first that names the master moves to
/// the front of the list, as Sentinel's client guidelines recommend. Nothing here blocks a
/// thread: every step is a NIO future awaited from the caller's task.
final class RedisSentinelResolver: Sendable {
    /// The data-node configuration (credentials, database, timeouts) with its Sentinel part.
    let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    /// The sentinels in the order to ask them.
    private let order: Mutex<[RedisAddress]>

    init(configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.order = Mutex(configuration.sentinel?.sentinels ?? [])
    }

    private var sentinel: RedisSentinelConfiguration {
        configuration.sentinel ?? RedisSentinelConfiguration(sentinels: [], masterName: "")
    }

    private var masterName: String { sentinel.masterName }

    /// The connection settings for one sentinel: its own credentials, database 0, its timeout.
    private func sentinelConfiguration(_ address: RedisAddress) -> RedisConfiguration {
        let sentinel = self.sentinel
        return RedisConfiguration(
            host: address.host, port: address.port, username: sentinel.username, password: sentinel.password,
            database: 0, connectTimeout: sentinel.timeout
        )
    }

    /// Asks the sentinels in turn which server is the master.
    ///
    /// - Returns: the master's address and the sentinel that named it.
    /// - Throws: `.invalidConfiguration` when there is nothing to ask, `.masterUnavailable` (with
    ///   every sentinel's failure) when none names a master.
    func lookUpMaster() async throws -> (master: RedisAddress, sentinel: RedisAddress) {
        let sentinel = self.sentinel
        guard !sentinel.masterName.isEmpty else {
            throw RedisError(.invalidConfiguration, "the Sentinel configuration has no master name")
        }
        let candidates = order.withLock { $0 }
        guard !candidates.isEmpty else {
            throw RedisError(.invalidConfiguration, "the Sentinel configuration lists no sentinels")
        }
        var failures: [String] = []
        for address in candidates {
            logger.debug("asking Sentinel for the master", metadata: ["redis.sentinel": "\(address)", "redis.master_name": "\(masterName)"])
            do {
                let master = try await askForMaster(address)
                promote(address)
                logger.info("Sentinel named the master", metadata: [
                    "redis.sentinel": "\(address)", "redis.master_name": "\(masterName)", "redis.master": "\(master)",
                ])
                return (master, address)
            } catch {
                logger.warning("Sentinel did not name the master", metadata: [
                    "redis.sentinel": "\(address)", "redis.master_name": "\(masterName)", "error": "\(error)",
                ])
                failures.append("\(address): \(Self.reason(error))")
            }
        }
        throw RedisError(.masterUnavailable, "no sentinel named a master for '\(masterName)' (\(failures.joined(separator: "; ")))")
    }

    /// One sentinel's answer to `SENTINEL get-master-addr-by-name`.
    private func askForMaster(_ address: RedisAddress) async throws -> RedisAddress {
        let connection = try await RedisConnection.connectDirect(
            configuration: sentinelConfiguration(address), eventLoopGroup: eventLoopGroup, logger: logger, pushHandler: nil
        )
        do {
            let reply = try await connection.send(["SENTINEL", "get-master-addr-by-name", masterName], timeout: sentinel.timeout)
            await connection.close()
            return try masterAddress(from: reply)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Interprets a `SENTINEL get-master-addr-by-name` reply.
    private func masterAddress(from reply: RESPValue) throws -> RedisAddress {
        switch reply {
        case .array(let items) where items.count == 2:
            guard let host = items[0].string, !host.isEmpty, let port = items[1].int, (1...65535).contains(port) else {
                throw RedisError(.protocolError, "unexpected SENTINEL get-master-addr-by-name reply \(reply)")
            }
            return RedisAddress(host: host, port: Int(port))
        case .null:
            throw RedisError(.masterUnavailable, "this sentinel monitors no master named '\(masterName)'")
        case .error(let message):
            throw RedisError(.server, "SENTINEL get-master-addr-by-name failed: \(message)")
        default:
            throw RedisError(.protocolError, "unexpected SENTINEL get-master-addr-by-name reply \(reply)")
        }
    }

    /// Moves `address` to the front of the list of sentinels to ask.
    private func promote(_ address: RedisAddress) {
        order.withLock { order in
            guard let index = order.firstIndex(of: address), index != 0 else { return }
            order.remove(at: index)
            order.insert(address, at: 0)
        }
    }

    /// Looks the master up, connects to it (`AUTH`/`SELECT` as configured) and checks with `ROLE`
    /// that it is a master. One attempt: callers retry with backoff.
    ///
    /// - Throws: `.masterUnavailable` when no sentinel names a master, the named one cannot be
    ///   reached, or it is not a master; `.server` when it refuses the credentials.
    func connectToMaster(pushHandler: (@Sendable (RESPValue) -> Void)?) async throws -> RedisConnection {
        let (master, sentinelAddress) = try await lookUpMaster()
        var data = configuration
        data.host = master.host
        data.port = master.port
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connectDirect(configuration: data, eventLoopGroup: eventLoopGroup, logger: logger, pushHandler: pushHandler)
        } catch let error as RedisError where error.kind == .server {
            throw error
        } catch {
            throw RedisError(.masterUnavailable, "sentinel \(sentinelAddress) named \(master) as master of '\(masterName)', but it cannot be reached: \(Self.reason(error))")
        }
        do {
            try await verifyRole(connection, master: master, sentinel: sentinelAddress)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// `ROLE` must say `master`. A server that refuses `ROLE` (an ACL user without `@admin`
    /// rights) is trusted, with a warning.
    private func verifyRole(_ connection: RedisConnection, master: RedisAddress, sentinel: RedisAddress) async throws {
        let reply: RESPValue
        do {
            reply = try await connection.send(["ROLE"], timeout: configuration.connectTimeout)
        } catch {
            throw RedisError(.masterUnavailable, "\(master), named master of '\(masterName)' by sentinel \(sentinel), did not answer ROLE: \(Self.reason(error))")
        }
        switch reply {
        case .array(let items) where items.first?.string == "master":
            logger.debug("the master Sentinel named confirms its role", metadata: ["redis.master": "\(master)", "redis.master_name": "\(masterName)"])
        case .array(let items):
            let role = items.first?.string ?? "?"
            logger.warning("the server Sentinel named is not a master (a failover in progress?); retrying", metadata: [
                "redis.master": "\(master)", "redis.master_name": "\(masterName)", "redis.sentinel": "\(sentinel)", "redis.role": "\(role)",
            ])
            throw RedisError(.masterUnavailable, "sentinel \(sentinel) named \(master) as master of '\(masterName)', but it reports role '\(role)' (a failover in progress?)")
        case .error(let message):
            logger.warning("cannot check the master's role; trusting Sentinel", metadata: [
                "redis.master": "\(master)", "redis.master_name": "\(masterName)", "redis.error": "\(message)",
            ])
        default:
            throw RedisError(.protocolError, "unexpected ROLE reply \(reply) from \(master)")
        }
    }

    /// Opens a connection to the first reachable sentinel, asks it for the master and subscribes
    /// it to `+switch-master`, whose notices for this master go to `onSwitch` (on the
    /// connection's event loop).
    ///
    /// The question and the `SUBSCRIBE` leave in one write, so Sentinel runs them back to back:
    /// a switch is either already in the answer or announced on the subscription.
    ///
    /// - Returns: the subscribed connection and the master that sentinel names right now.
    func watchSwitches(onSwitch: @escaping @Sendable (SentinelSwitchNotice) -> Void) async throws -> (connection: RedisConnection, master: RedisAddress, sentinel: RedisAddress) {
        let candidates = order.withLock { $0 }
        let masterName = self.masterName
        let logger = self.logger
        var failures: [String] = []
        for address in candidates {
            let connection: RedisConnection
            do {
                connection = try await RedisConnection.connectDirect(
                    configuration: sentinelConfiguration(address), eventLoopGroup: eventLoopGroup, logger: logger,
                    pushHandler: { push in
                        guard let message = RedisPubSubMessage(push: push) else { return }
                        guard message.channel == "+switch-master",
                              let notice = SentinelSwitchNotice(payload: String(buffer: message.payload)) else { return }
                        guard notice.masterName == masterName else { return }
                        onSwitch(notice)
                    }
                )
            } catch {
                failures.append("\(address): \(Self.reason(error))")
                continue
            }
            do {
                var bytes = ByteBuffer()
                RedisCommandEncoder.encode(["SENTINEL", "get-master-addr-by-name", masterName], into: &bytes)
                RedisCommandEncoder.encode(["SUBSCRIBE", "+switch-master"], into: &bytes)
                // One reply promise for two commands: the first reply (the address) completes
                // it; the subscription's confirmation and notices reach the push handler.
                let reply = try await connection.send(encoded: bytes, timeout: sentinel.timeout, name: "SENTINEL get-master-addr-by-name")
                let master = try masterAddress(from: reply)
                logger.debug("watching Sentinel for failovers", metadata: [
                    "redis.sentinel": "\(address)", "redis.master_name": "\(masterName)", "redis.master": "\(master)",
                ])
                return (connection, master, address)
            } catch {
                await connection.close()
                failures.append("\(address): \(Self.reason(error))")
            }
        }
        throw RedisError(.masterUnavailable, "no sentinel can be watched for failovers of '\(masterName)' (\(failures.joined(separator: "; ")))")
    }

    /// A short reason for a failure, without the `Redis <kind>:` prefix of ``RedisError``.
    private static func reason(_ error: any Error) -> String {
        (error as? RedisError)?.message ?? "\(error)"
    }
}
