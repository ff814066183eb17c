import HeraldCore

/// Which channel a registry entry is: a channel *name* within a *namespace*.
///
/// Herald serves several Pusher apps. The first one (`pusherApps[0]` of ``HeraldConfiguration``)
/// shares Herald's channels with Socket.IO clients, Redis-ingested Laravel events,
/// laravel-echo-server's API and in-process publishing — the shared namespace, `nil`. Every
/// further app has a namespace of its own, its app id, so its clients, HTTP API, presence
/// members, cache channels, subscription counts and webhooks see only its channels, even when
/// another app uses the same names.
///
/// The key is a pair, not one string with a separator: no channel name, whatever characters
/// it holds, can equal another namespace's key, so isolation does not depend on validating
/// names. The ``ChannelRegistry``, presence, the cache channels, the subscription-count
/// notifier, the router's plugin lanes and webhook events are keyed by it; clients and API
/// callers only ever see ``name``.
///
/// A string literal is a shared channel's name (`"orders"` is `ChannelKey(shared: "orders")`).
struct ChannelKey: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The owning app's id for a namespaced channel; `nil` for the shared channels.
    let namespace: String?
    /// The channel's name as clients, publishers and API callers know it (`private-orders.1`).
    let name: String

    /// The channel `name` in `namespace` (`nil`: shared).
    init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// The shared channel `name` (Socket.IO clients, Redis, laravel-echo-server's API, the
    /// first Pusher app).
    init(shared name: String) {
        self.init(namespace: nil, name: name)
    }

    /// The channel an event is published to: its ``Event/namespace`` and ``Event/channel``.
    init(_ event: Event) {
        self.init(namespace: event.namespace, name: event.channel)
    }

    /// A literal is a shared channel's name.
    init(stringLiteral name: String) {
        self.init(shared: name)
    }

    /// An interpolated literal is a shared channel's name.
    init(stringInterpolation: DefaultStringInterpolation) {
        self.init(shared: String(stringInterpolation: stringInterpolation))
    }

    /// Whether this is one of the shared channels.
    var isShared: Bool { namespace == nil }

    /// Two keys are one channel only when their names (and namespaces) are the same UTF-8
    /// bytes. Swift's `String ==` is canonical equivalence — precomposed "café" equals
    /// "cafe" + U+0301, the Kelvin sign U+212A equals "K" — but Redis, Laravel, Pusher and
    /// laravel-echo-server name channels by their bytes, and the app authorizes exactly the
    /// bytes it was asked about. Comparing Strings let a client authorized for
    /// `private-user.\u{212A}ate` receive `private-user.Kate`'s events.
    static func == (lhs: ChannelKey, rhs: ChannelKey) -> Bool {
        Self.sameBytes(lhs.name, rhs.name) && Self.sameBytes(lhs.namespace, rhs.namespace)
    }

    /// Hashes the UTF-8 bytes, consistently with ``==(_:_:)``.
    func hash(into hasher: inout Hasher) {
        Self.hashBytes(name, into: &hasher)
        if let namespace {
            hasher.combine(UInt8(1))
            Self.hashBytes(namespace, into: &hasher)
        } else {
            hasher.combine(UInt8(0))
        }
    }

    /// Whether `lhs` and `rhs` are the same UTF-8 bytes (both `nil` counts as the same).
    static func sameBytes(_ lhs: String?, _ rhs: String?) -> Bool {
        switch (lhs, rhs) {
        case (nil, nil): true
        case (let l?, let r?): l.utf8.count == r.utf8.count && l.utf8.elementsEqual(r.utf8)
        default: false
        }
    }

    /// Feeds `text`'s UTF-8 bytes (and their count) to `hasher`.
    static func hashBytes(_ text: String, into hasher: inout Hasher) {
        hasher.combine(text.utf8.count)
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil {
            for byte in text.utf8 { hasher.combine(byte) }
        }
    }

    /// For people (status page, logs): the name of a shared channel, `app <id>: <name>` for a
    /// namespaced one.
    var description: String {
        guard let namespace else { return name }
        return "app \(namespace): \(name)"
    }

    /// The channel namespace of `app`, one of `apps` (``HeraldConfiguration/pusherApps``):
    /// `nil` (shared) for the first app — and for any app with the first one's id — else the
    /// app's id.
    static func namespace(of app: PusherApp, among apps: [PusherApp]) -> String? {
        guard let first = apps.first, first.id != app.id else { return nil }
        return app.id
    }
}
