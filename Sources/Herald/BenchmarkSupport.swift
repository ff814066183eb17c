import Logging
import NIOCore
import NIOHTTP1

// Entry points for Herald's micro-benchmarks (`Benchmarks/Micro`, a package of its own) into
// the internal hot path: the channel registry's membership operations, the broadcast encoded
// once per event, and the router's fan-out to real Socket.IO and Pusher sessions.
//
// Everything here is `@_spi(Benchmarks)`: not part of Herald's public API, not source-stable,
// visible only to code that writes `@_spi(Benchmarks) import Herald`. Each entry is a thin
// forward to the internal member it names, so a benchmark measures that member's own code.

/// A real connection as a benchmark holds it: an ``EngineSession`` (Socket.IO) or a
/// `PusherSession`, opened by ``BenchmarkEndpoint``.
@_spi(Benchmarks) public struct BenchmarkConnection: Sendable {
    let session: any Recipient & WebSocketSession

    /// The event loop the connection is confined to (its channel's).
    public var eventLoop: any EventLoop { session.eventLoop }

    /// Hands the session a client's text frame, as the connection's WebSocket handler does
    /// (`EngineWebSocketHandler`). Call on ``eventLoop``.
    public func receive(_ text: ByteBuffer, on channel: any Channel) {
        session.webSocketReceivedText(text, on: channel)
    }
}

/// The connection side of a relay without its listener or Redis: a registry, a router with no
/// plugins, and the Engine.IO/Pusher endpoint that opens sessions on channels the caller made
/// (for instance `NIOAsyncTestingChannel`s), as the HTTP server does after a WebSocket upgrade.
@_spi(Benchmarks) public final class BenchmarkEndpoint: Sendable {
    /// Who is subscribed to what (metrics disabled, no webhooks).
    public let registry: ChannelRegistry
    let server: EngineIOServer

    /// - Parameter configuration: `pusherApps[0]` is the app ``openPusher(on:start:)`` uses.
    public init(configuration: HeraldConfiguration, logger: Logger) {
        let registry = ChannelRegistry()
        self.registry = registry
        let router = Router(registry: registry, emitToAll: configuration.emitToAll, logger: logger)
        server = EngineIOServer(configuration: configuration, registry: registry, router: router, authorizer: nil, logger: logger)
    }

    /// Opens an Engine.IO 4 session over WebSocket on `channel` (`attachWebSocket`): it writes
    /// the `open` packet and joins the registry. The client still has to send `40` to join `/`.
    /// Call on the channel's event loop.
    public func openSocketIO(on channel: any Channel) -> BenchmarkConnection {
        let target = EngineIOServer.UpgradeTarget.new(.v4, HandshakeInfo(HTTPHeaders()))
        guard let session = server.attachWebSocket(channel, target: target) as? EngineSession else {
            preconditionFailure("BenchmarkEndpoint: a new Engine.IO upgrade did not open an EngineSession")
        }
        return BenchmarkConnection(session: session)
    }

    /// Opens a Pusher protocol 7 connection of `configuration.pusherApps[0]` on `channel`
    /// (`attachWebSocket`) and, when `start` is true, starts it as its WebSocket handler does:
    /// it joins the registry and writes `pusher:connection_established`. Call on the
    /// channel's event loop.
    public func openPusher(on channel: any Channel, start: Bool = true) -> BenchmarkConnection {
        precondition(!server.configuration.pusherApps.isEmpty, "BenchmarkEndpoint: openPusher needs a Pusher app in the configuration")
        let app = server.configuration.pusherApps[0]
        guard let session = server.attachWebSocket(channel, target: .pusher(app: app, key: app.key, protocolVersion: "7")) as? PusherSession else {
            preconditionFailure("BenchmarkEndpoint: a Pusher upgrade did not open a PusherSession")
        }
        if start { session.assumeIsolated { $0.start() } }
        return BenchmarkConnection(session: session)
    }
}

/// One event encoded once per protocol (the router's `EncodedBroadcast`): the Socket.IO
/// packet, the same framed for WebSocket, and the Pusher frame, shared by every recipient.
@_spi(Benchmarks) public struct BenchmarkBroadcast: Sendable {
    let encoded: EncodedBroadcast

    /// `EncodedBroadcast(channelEvent:channel:data:excludedSocketID:)`, as the router builds it
    /// for an event from Redis.
    public init(event: String, channel: String, data: ByteBuffer, excludedSocketID: String? = nil) {
        encoded = EncodedBroadcast(channelEvent: event, channel: channel, data: data, excludedSocketID: excludedSocketID)
    }

    /// Bytes of the WebSocket frame a Socket.IO recipient gets.
    public var socketIOFrameBytes: Int { encoded.webSocketFrame.readableBytes }
    /// Bytes of the WebSocket frame a Pusher recipient gets.
    public var pusherFrameBytes: Int { encoded.pusherFrame?.readableBytes ?? 0 }
}

/// A channel's members grouped by event loop: the copy-on-write snapshot the router takes
/// once per event (`ChannelRegistry.Groups`).
@_spi(Benchmarks) public struct BenchmarkAudience: Sendable {
    let groups: ChannelRegistry.Groups

    /// Recipients in the snapshot.
    public var count: Int { groups.values.reduce(0) { $0 + $1.sessions.count } }
}

extension ChannelRegistry {
    /// `connect(_:)`: a new connection joins the registry.
    @_spi(Benchmarks) public func benchmarkConnect(_ connection: BenchmarkConnection) {
        connect(connection.session)
    }

    /// `disconnect(_:channels:)`: the connection leaves the registry and `channels` (shared
    /// names), as a closing session passes its own channel set.
    @_spi(Benchmarks) public func benchmarkDisconnect(_ connection: BenchmarkConnection, channels: [String]) {
        disconnect(connection.session, channels: channels.lazy.map(ChannelKey.init(shared:)))
    }

    /// `subscribe(_:to:)` on the shared channel `channel`; false if already subscribed.
    @_spi(Benchmarks) @discardableResult
    public func benchmarkSubscribe(_ connection: BenchmarkConnection, to channel: String) -> Bool {
        subscribe(connection.session, to: ChannelKey(shared: channel))
    }

    /// `unsubscribe(_:from:)` on the shared channel `channel`; false if not subscribed.
    @_spi(Benchmarks) @discardableResult
    public func benchmarkUnsubscribe(_ connection: BenchmarkConnection, from channel: String) -> Bool {
        unsubscribe(connection.session, from: ChannelKey(shared: channel))
    }

    /// `groups(for:)`: the members of the shared channel `channel`, as the router reads them
    /// once per event; `nil` when nobody is subscribed.
    @_spi(Benchmarks) public func benchmarkAudience(of channel: String) -> BenchmarkAudience? {
        groups(for: ChannelKey(shared: channel)).map(BenchmarkAudience.init(groups:))
    }
}

extension Router {
    /// `Router.deliver(_:to:)`: one task per event loop writes the shared bytes to each of the
    /// loop's recipients, whose loop's `LoopFlusher` flushes each dirty connection once per
    /// loop turn. Returns the number of recipients. Callable from any thread.
    @_spi(Benchmarks) public static func benchmarkDeliver(_ broadcast: BenchmarkBroadcast, to audience: BenchmarkAudience) -> Int {
        deliver(broadcast.encoded, to: audience.groups)
    }
}
