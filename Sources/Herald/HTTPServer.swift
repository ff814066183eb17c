import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Crypto

/// Per-connection HTTP handler: collects a request (bounded by `maxPayload`) and routes it.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "herald.http"

    private let engine: EngineIOServer
    private let endpoints: HTTPEndpoints
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var rejected = false
    /// The session whose poll this connection may be holding.
    private var heldBy: EngineSession?

    init(engine: EngineIOServer, endpoints: HTTPEndpoints) {
        self.engine = engine
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
            self.rejected = false
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > engine.configuration.maxPayload {
                reject(context: context, head: head)
            }
        case .body(var chunk):
            guard !rejected, let head else { return }
            if body.readableBytes + chunk.readableBytes > engine.configuration.maxPayload {
                reject(context: context, head: head)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard !rejected, let head else { return }
            self.head = nil
            route(context: context, head: head, body: body)
            body = ByteBuffer()
        }
    }

    private func reject(context: ChannelHandlerContext, head: HTTPRequestHead) {
        rejected = true
        engine.logger.info("request body over the limit", metadata: ["herald.limit": "\(engine.configuration.maxPayload)", "herald.path": "\(EngineIOServer.path(head.uri))"])
        let responder = PollResponder(channel: context.channel, headers: engine.corsHeaders(for: head.headers), keepAlive: false)
        responder.respond(error: .payloadTooLarge)
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let path = EngineIOServer.path(head.uri)
        if engine.isEndpoint(path) {
            heldBy = engine.handle(head: head, body: body, channel: context.channel, keepAlive: head.isKeepAlive)
            return
        }
        if let pusher = endpoints.pusherAPI, pusher.handles(head) {
            pusher.handle(head: head, body: body, channel: context.channel, requestID: Self.requestID(head.headers))
            return
        }
        if let api = endpoints.api, api.handles(path) {
            api.handle(head: head, body: body, channel: context.channel, requestID: Self.requestID(head.headers))
            return
        }
        if let status = endpoints.status, status.handles(path) {
            status.handle(head: head, channel: context.channel)
            return
        }
        let responder = PollResponder(channel: context.channel, headers: endpoints.api?.responseHeaders ?? HTTPHeaders(), keepAlive: head.isKeepAlive)
        switch (head.method, path) {
        case (.GET, "/"):
            responder.respond(contentType: "text/plain", body: ByteBuffer(string: "OK"))
        case (.GET, "/health"):
            responder.respond(contentType: "application/json", body: ByteBuffer(string: "{\"status\":\"ok\"}"))
        case (.GET, "/metrics") where endpoints.metrics != nil:
            var body = ByteBuffer()
            endpoints.metrics?.render(&body)
            responder.respond(contentType: MetricsEndpoint.contentType, body: body)
        case (.GET, "/ready"):
            let ready = endpoints.isReady()
            responder.respond(
                status: ready ? .ok : .serviceUnavailable,
                contentType: "application/json",
                body: ByteBuffer(string: ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not ready\",\"reason\":\"Redis is not connected\"}")
            )
        default:
            responder.respond(status: .notFound, contentType: "application/json", body: ByteBuffer(string: "{\"error\":\"Not found\"}"))
        }
    }

    /// The request's id for logs and the `X-Request-Id` response header: the proxy's
    /// `X-Request-Id` (nginx `$request_id`) when it is a sane token, else a fresh random one.
    static func requestID(_ headers: HTTPHeaders) -> String {
        if let given = headers.first(name: "X-Request-Id"), (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            return given
        }
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session = heldBy {
            let channel = context.channel
            session.onLoop { $0.pollConnectionClosed(channel) }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        engine.logger.debug("HTTP connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// Hooks the HTTP layer asks the relay about.
struct HTTPEndpoints: Sendable {
    var isReady: @Sendable () -> Bool
    /// laravel-echo-server's HTTP API under `/apps/`, when API clients are configured.
    var api: EchoHTTPAPI? = nil
    var pusherAPI: PusherHTTPAPIHandler? = nil
    /// What `GET /metrics` serves; `nil` answers 404.
    var metrics: MetricsEndpoint? = nil
    /// `/status`, `/status.json` and `/tail`, when a status token is configured.
    var status: StatusEndpoint? = nil
}

/// What a WebSocket connection's frames are handed to (an Engine.IO session, a Pusher
/// connection). Called on the WebSocket channel's loop; implementations hop to their own.
protocol WebSocketSession: AnyObject, Sendable {
    func webSocketReceivedText(_ text: ByteBuffer, on channel: any Channel)
    func webSocketReceivedBinary(_ bytes: ByteBuffer, on channel: any Channel)
    func webSocketDidClose(_ channel: any Channel)
}

extension EngineSession: WebSocketSession {
    nonisolated func webSocketReceivedText(_ text: ByteBuffer, on channel: any Channel) {
        onLoop { $0.receiveWebSocketText(text, on: channel) }
    }

    nonisolated func webSocketReceivedBinary(_ bytes: ByteBuffer, on channel: any Channel) {
        onLoop { $0.receiveWebSocketBinary(bytes, on: channel) }
    }

    nonisolated func webSocketDidClose(_ channel: any Channel) {
        onLoop { $0.webSocketClosed(channel) }
    }
}

/// Handler for an upgraded WebSocket: frames in, pre-framed bytes out.
///
/// NIO's frame *encoder* is removed from these pipelines: server frames are unmasked, so Herald
/// frames a broadcast once and writes the same bytes to every recipient.
final class EngineWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    private let session: any WebSocketSession
    private let logger: Logger
    private var closing = false

    init(session: any WebSocketSession, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let channel = context.channel
        switch frame.opcode {
        case .text:
            let text = frame.unmaskedData
            session.webSocketReceivedText(text, on: channel)
        case .binary:
            let bytes = frame.unmaskedData
            session.webSocketReceivedBinary(bytes, on: channel)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFraming.frame(opcode: .pong, payload: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(context: context, code: 1000)
        default:
            break
        }
    }

    private func close(context: ChannelHandlerContext, code: UInt16) {
        guard !closing else { return }
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFraming.closeFrame(code: code, reason: ""))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let channel = context.channel
        session.webSocketDidClose(channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Garbage frames: 1009 for an oversized frame, 1002 for any other protocol violation.
        if let wsError = error as? NIOWebSocketError {
            let code: UInt16 = wsError == .invalidFrameLength ? 1009 : 1002
            logger.info("bad WebSocket frame; closing", metadata: ["error": "\(wsError)", "herald.close_code": "\(code)"])
            close(context: context, code: code)
        } else {
            logger.debug("WebSocket connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }
}

/// The WebSocket upgrade for the Engine.IO endpoint (RFC 6455 §4.2).
///
/// NIO's own upgrader always installs its frame encoder, which cannot be removed; Herald
/// writes pre-framed bytes instead (one encode per broadcast), so it installs only the decoder.
struct EngineWebSocketUpgrader: HTTPServerProtocolUpgrader, Sendable {
    let engine: EngineIOServer

    var supportedProtocol: String { "websocket" }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        guard upgradeRequest.method == .GET,
              let key = upgradeRequest.headers.first(name: "Sec-WebSocket-Key"),
              upgradeRequest.headers.first(name: "Sec-WebSocket-Version") == "13" else {
            return channel.eventLoop.makeFailedFuture(EngineIOError.badRequest)
        }
        if case .failure(let error) = engine.upgradeTarget(for: upgradeRequest) {
            // Declined: the request falls through to the HTTP handler, which answers with the
            // Engine.IO error.
            return channel.eventLoop.makeFailedFuture(error)
        }
        var headers = initialResponseHeaders
        for (name, value) in engine.corsHeaders(for: upgradeRequest.headers) { headers.add(name: name, value: value) }
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        // `initialResponseHeaders` already holds `Connection: upgrade` and `Upgrade: websocket`;
        // browsers refuse a handshake that repeats them.
        headers.add(name: "Sec-WebSocket-Accept", value: Base64.encode(Array(digest)))
        return channel.eventLoop.makeSucceededFuture(headers)
    }

    func upgrade(context: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        let channel = context.channel
        let engine = self.engine
        return channel.eventLoop.makeCompletedFuture {
            guard case .success(let target) = engine.upgradeTarget(for: upgradeRequest) else {
                channel.close(promise: nil)
                return
            }
            let maxPayload = max(engine.configuration.maxPayload, 1024)
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxPayload)))
            try sync.addHandler(NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0,
                maxAccumulatedFrameCount: 256,
                maxAccumulatedFrameSize: maxPayload
            ))
            let session = engine.attachWebSocket(channel, target: target)
            try sync.addHandler(EngineWebSocketHandler(session: session, logger: engine.logger))
            if case .pusher = target, let pusher = session as? PusherSession {
                pusher.assumeIsolated { $0.start() }
            }
        }
    }
}

/// Builds each accepted connection's pipeline: HTTP/1.1 with the WebSocket upgrader.
enum HTTPPipeline {
    static func configure(channel: any Channel, engine: EngineIOServer, endpoints: HTTPEndpoints) throws {
        let sync = channel.pipeline.syncOperations
        try sync.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [EngineWebSocketUpgrader(engine: engine)],
                completionHandler: { context in
                    context.pipeline.syncOperations.removeHandler(name: HTTPRequestHandler.name, promise: nil)
                }
            )
        )
        try sync.addHandler(HTTPRequestHandler(engine: engine, endpoints: endpoints), name: HTTPRequestHandler.name)
    }
}
