import HeraldCore
import HeraldProtocols
import HeraldRedis
import NIOCore

extension Relay {
    /// Broadcasts a ``BroadcastEvent`` in-process: one event per channel, through the plugins
    /// and to subscribers exactly like events from Redis. Returns false if any channel's event
    /// could not be queued (router queue full).
    @discardableResult
    public func broadcast(_ event: some BroadcastEvent, excludingSocketID: String? = nil) -> Bool {
        event.events(excludingSocketID: excludingSocketID).reduce(true) { ok, e in publish(e) && ok }
    }
}

/// Publishes ``BroadcastEvent``s to Redis in Laravel's wire format
/// (`{"event":…,"data":…,"socket":…}` on `<prefix><channel>`), so a Swift back end can feed any
/// Herald node — or laravel-echo-server — exactly as a Laravel app does.
public struct RedisBroadcaster: Sendable {
    /// The connection to publish on.
    public let connection: RedisConnection
    /// Laravel's key prefix (`laravel_database_`), put in front of every channel name.
    public let keyPrefix: String

    /// Creates a broadcaster that publishes on `connection`, prefixing every channel with
    /// `keyPrefix` (use the prefix the relays strip: ``HeraldConfiguration/keyPrefix``).
    public init(connection: RedisConnection, keyPrefix: String = "") {
        self.connection = connection
        self.keyPrefix = keyPrefix
    }

    /// Publishes `event` on each of its channels (one PUBLISH per channel, as Laravel does on
    /// Redis Cluster). Returns how many subscribers received it, summed over the channels.
    @discardableResult
    public func broadcast(_ event: some BroadcastEvent, excludingSocketID: String? = nil) async throws -> Int {
        var data = ByteBuffer()
        event.broadcastWith.write(into: &data)
        let message = LaravelBroadcast(event: event.broadcastAs, data: data, socket: excludingSocketID).encoded()
        var receivers = 0
        for channel in event.broadcastOn {
            receivers += try await connection.publish(message, to: keyPrefix + channel.name)
        }
        return receivers
    }
}
