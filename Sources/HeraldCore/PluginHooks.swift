/// The protocol a client connection speaks.
public enum ClientProtocol: String, Sendable, Hashable {
    /// Socket.IO (Engine.IO 3 or 4), as Laravel Echo's socket.io connector speaks it.
    case socketIO = "socket.io"
    /// Pusher Channels protocol 7 (pusher-js, Echo's pusher/reverb connectors).
    case pusher
}

/// A client connection, as plugin hooks see it.
public struct ConnectionInfo: Sendable, Hashable {
    /// The protocol the client speaks.
    public var clientProtocol: ClientProtocol
    /// The socket id: Socket.IO's socket id (what Laravel's `X-Socket-ID` carries) or Pusher's
    /// `socket_id`.
    public var socketID: String
    /// The peer's address (`[IPv4]127.0.0.1/127.0.0.1:50712`), when known.
    public var remoteAddress: String?
    /// The user, when Herald knows it: a Pusher connection's signed-in user (`pusher:signin`).
    /// Socket.IO connections authenticate per channel, so theirs is `nil`.
    public var userID: String?

    /// The Pusher app the connection belongs to (`nil` for Socket.IO).
    public var appID: String?

    /// - Parameters: see the properties.
    public init(clientProtocol: ClientProtocol, socketID: String, remoteAddress: String? = nil, userID: String? = nil, appID: String? = nil) {
        self.clientProtocol = clientProtocol
        self.socketID = socketID
        self.remoteAddress = remoteAddress
        self.userID = userID
        self.appID = appID
    }
}

/// A client asking to subscribe to a channel.
public struct SubscriptionRequest: Sendable {
    /// The channel's full name (`orders`, `private-orders.1`, `presence-chat.1`).
    public var channel: String
    /// The channel's kind, from its name.
    public var channelKind: ChannelKind
    /// Who asks.
    public var connection: ConnectionInfo
    /// The request headers relevant to authorization. Socket.IO: the `auth.headers` the client
    /// sent with `subscribe` (Echo puts `Authorization`/`X-CSRF-TOKEN` there) and the handshake's
    /// `Cookie`. Pusher subscriptions carry no headers (`connection.userID` is the signed-in
    /// user, if any).
    public var headers: [(name: String, value: String)]

    /// The channel's namespace: `nil` for Herald's shared channels (Socket.IO, Redis, the first
    /// Pusher app), else the id of the further Pusher app whose own channel this is, so an
    /// authorizer can tell app B's `private-x` from the shared one.
    public var namespace: String?

    /// - Parameters: see the properties.
    public init(channel: String, connection: ConnectionInfo, headers: [(name: String, value: String)] = [], namespace: String? = nil) {
        self.channel = channel
        self.channelKind = ChannelKind(channel)
        self.connection = connection
        self.headers = headers
        self.namespace = namespace
    }

    /// The first header named `name` (compared case-insensitively), if any.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// A subscription authorization plugin's answer.
public enum SubscriptionDecision: Sendable, Hashable {
    /// Admit the client without asking the app. For presence channels, `channelData` is the
    /// member, as Laravel's auth endpoint returns it: `{"user_id":…,"user_info":{…}}`. Without
    /// it a Socket.IO client joins without presence, and a Pusher client is refused (403):
    /// Pusher's presence subscriptions need a member.
    case allow(channelData: JSONValue? = nil)
    /// Refuse the subscription with this status: Socket.IO clients get `subscription_error`
    /// (channel, status), as from laravel-echo-server when the app refuses; Pusher clients get
    /// `pusher:subscription_error` with the status.
    case deny(status: Int)
    /// No opinion: ask the next plugin; after the last, Herald's own authorization applies
    /// (public channels are open, Socket.IO asks the app's auth endpoint, Pusher checks the
    /// signature).
    case deferToApp
}

/// A plugin that decides subscriptions before Herald's own authorization.
///
/// Herald asks it about every subscription of both protocols — public, private, encrypted and
/// presence channels alike; not about Pusher's reserved `#…` channels — before it asks the
/// app. The chain asks its authorizers in order and the first answer other than
/// ``SubscriptionDecision/deferToApp`` wins. A call that throws or runs past its time budget
/// denies with status 500 under the `.drop` failure policy and defers under `.pass`.
public protocol SubscriptionAuthorizingPlugin: HeraldPlugin {
    /// Decides one subscription. Runs once per subscription request, in a task of its own.
    func authorize(_ request: SubscriptionRequest, context: PluginContext) async throws -> SubscriptionDecision
}

/// A plugin told when client connections open and close (both protocols).
///
/// Observers are fire-and-forget: they run in a task of their own, after the fact, and never
/// delay the connection. A connection's close reaches an observer after its open. Errors and
/// calls past the time budget are logged and reported; the failure policy does not apply
/// (there is nothing to hold back).
public protocol ConnectionObservingPlugin: HeraldPlugin {
    /// A client connected: Socket.IO once its socket joined the default namespace (it has a
    /// socket id), Pusher once `pusher:connection_established` was sent.
    func connectionOpened(_ connection: ConnectionInfo, context: PluginContext) async throws
    /// The connection closed, for whatever reason.
    func connectionClosed(_ connection: ConnectionInfo, context: PluginContext) async throws
}

extension ConnectionObservingPlugin {
    /// Does nothing.
    public func connectionOpened(_ connection: ConnectionInfo, context: PluginContext) async throws {}
    /// Does nothing.
    public func connectionClosed(_ connection: ConnectionInfo, context: PluginContext) async throws {}
}
