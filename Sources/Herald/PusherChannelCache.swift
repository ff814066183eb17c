import HeraldProtocols
import NIOCore
import Synchronization

/// The last event of every Pusher cache channel (`cache-`, `private-cache-`,
/// `private-encrypted-cache-`, `presence-cache-`; PROTOCOLS.md D.6), in memory.
///
/// ``Router`` writes it once per event on a cache channel — whatever the event's source (Redis,
/// either HTTP API, a client event) — before fan-out, so the write is one dictionary store
/// under a short lock and never on the per-recipient path. ``PusherSession`` reads it right
/// after `pusher_internal:subscription_succeeded`.
///
/// Expiry is checked when reading, against the subscriber's app's
/// ``PusherApp/cacheTTL`` (Soketi: 3600 s). The number of cached channels is bounded: past
/// ``capacity`` the channel cached first is evicted (first-in, first-out by the time a channel
/// entered the cache; rewriting a channel does not move it).
///
/// A subscriber whose subscription races with a new event on the channel may get that event
/// twice (as the cached event and live), as with Soketi; it never misses it.
///
/// Channels are keyed by ``ChannelKey``: each Pusher app after the first caches its own
/// channels apart from the shared ones.
final class PusherChannelCache: Sendable {
    /// One cached event.
    struct Entry: Sendable {
        /// The event name.
        let name: String
        /// The event's data, raw JSON as the router received it.
        let data: ByteBuffer
        /// How the data goes into the Pusher frame (client events verbatim, others as a string).
        let dataForm: PusherMessage.DataForm
        /// When it was stored.
        let stored: NIODeadline
    }

    private struct State {
        var entries: [ChannelKey: Entry] = [:]
        /// Cached channels in the order they entered the cache, from `head` on.
        var order: [ChannelKey] = []
        var head = 0
    }

    /// Most channels cached at once.
    let capacity: Int
    private let state = Mutex(State())

    /// - Parameter capacity: most channels cached at once (at least 1).
    init(capacity: Int = 10_000) {
        self.capacity = max(1, capacity)
    }

    /// Number of cached channels (expired entries included until evicted).
    var count: Int { state.withLock { $0.entries.count } }

    /// Remembers `name`/`data` as the last event of `channel`.
    func store(channel: ChannelKey, name: String, data: ByteBuffer, dataForm: PusherMessage.DataForm, now: NIODeadline = .now()) {
        let entry = Entry(name: name, data: data, dataForm: dataForm, stored: now)
        let capacity = self.capacity
        state.withLock { state in
            guard state.entries.updateValue(entry, forKey: channel) == nil else { return }
            state.order.append(channel)
            // Every key in `order[head...]` is in `entries` exactly once, so this evicts exactly one.
            while state.entries.count > capacity, state.head < state.order.count {
                state.entries.removeValue(forKey: state.order[state.head])
                state.head += 1
            }
            if state.head >= capacity {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    /// The last event of `channel` if it is younger than `ttl`.
    func lastEvent(channel: ChannelKey, ttl: TimeAmount, now: NIODeadline = .now()) -> Entry? {
        guard ttl > .zero, let entry = state.withLock({ $0.entries[channel] }) else { return nil }
        return now - entry.stored < ttl ? entry : nil
    }

    /// What a new subscriber of cache channel `channel` gets right after its subscription
    /// succeeded: the last event as `{"event","channel","data"}`, or
    /// `{"event":"pusher:cache_miss","channel":…}` when there is none younger than `ttl`.
    func subscriberMessage(channel: ChannelKey, ttl: TimeAmount, now: NIODeadline = .now()) -> ByteBuffer {
        subscriberReply(channel: channel, ttl: ttl, now: now).message
    }

    /// ``subscriberMessage(channel:ttl:now:)``, and whether it is `pusher:cache_miss` (the
    /// `cache_miss` webhook).
    func subscriberReply(channel: ChannelKey, ttl: TimeAmount, now: NIODeadline = .now()) -> (message: ByteBuffer, miss: Bool) {
        guard let entry = lastEvent(channel: channel, ttl: ttl, now: now) else {
            return (PusherMessage.cacheMiss(channel: channel.name), true)
        }
        return (PusherMessage.event(entry.name, channel: channel.name, data: entry.data, dataForm: entry.dataForm), false)
    }
}
