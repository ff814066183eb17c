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
