import HeraldProtocols
import NIOCore
import Synchronization

/// Sends `pusher_internal:subscription_count` (PROTOCOLS.md D.3) to the Pusher subscribers of
/// channels whose subscriber count changed, for apps that opted in
/// (``PusherApp/subscriptionCountEvents``).
///
/// The ``ChannelRegistry`` reports every change of a non-presence channel's membership, by
/// Pusher and Socket.IO connections alike (presence channels have their own member events and
/// get no count). Changes are coalesced: the first change schedules one flush
/// ``interval`` later on the changing connection's event loop; every channel that changed
/// until then gets one notice with its count *at flush time*. So a channel gets at most one
/// notice per ``interval`` (100 ms), a burst of joins and leaves costs one notice, and a
/// burst that ends where it started still sends the (unchanged) count once.
///
/// Nothing is done until ``enable()`` is called (by the first connection of an opted-in app),
/// so relays without the feature pay one relaxed atomic load per subscription change.
final class SubscriptionCountNotifier: Sendable {
    /// The coalescing window.
    static let interval = TimeAmount.milliseconds(100)

    private struct Pending {
        var channels: Set<ChannelKey> = []
        var scheduled = false
    }

    private let enabled = Atomic<Bool>(false)
    private let pending = Mutex(Pending())

    init() {}

    /// Turns notices on (idempotent).
    func enable() { enabled.store(true, ordering: .relaxed) }

    /// Whether notices are on.
    var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Records that `channel`'s subscriber count changed; `loop` runs the flush if one has to
    /// be scheduled. Call outside the registry's lock.
    func changed(_ channel: ChannelKey, loop: any EventLoop, registry: ChannelRegistry) {
        guard isEnabled, PusherChannelName.kind(of: channel.name) != .presence else { return }
        let schedule = pending.withLock { pending in
            pending.channels.insert(channel)
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        guard schedule else { return }
        loop.scheduleTask(in: Self.interval) { [self] in
            flush(registry: registry)
        }
    }

    /// Takes the changed channels and sends each one's current count to its opted-in Pusher
    /// subscribers (a namespaced channel's subscribers are all of its own app): one task per
    /// event loop, flushed through the loop's ``LoopFlusher``.
    private func flush(registry: ChannelRegistry) {
        let channels = pending.withLock { pending in
            pending.scheduled = false
            defer { pending.channels.removeAll() }
            return pending.channels
        }
        for channel in channels {
            guard let groups = registry.groups(for: channel) else { continue }
            let count = groups.values.reduce(0) { $0 + $1.sessions.count }
            let broadcast = EncodedBroadcast(
                packet: ByteBuffer(), pusherMessage: PusherMessage.subscriptionCount(channel: channel.name, count: count), excludedSocketID: nil
            )
            for group in groups.values {
                let sessions = group.sessions
                let flusher = group.flusher
                group.loop.execute {
                    for recipient in sessions.values {
                        if let session = recipient as? PusherSession, session.deliverSubscriptionCount(broadcast) {
                            flusher.markDirty(session)
                        }
                    }
                }
            }
        }
    }
}
