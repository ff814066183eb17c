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
    /// The 413 of a refused request: the connection closes once it is written and the request
    /// is read to its end, or at ``lingerDeadline`` (see ``reject(context:head:)``).
    private var refusalWritten: EventLoopFuture<Void>?
    private var lingerDeadline: Scheduled<Void>?
    /// The session whose poll this connection may be holding.
    private var heldBy: EngineSession?

    /// How long the rest of a refused request (or WebSocket frame) is read and discarded
    /// before the connection is closed anyway.
    static let lingerTime = TimeAmount.seconds(2)

    init(engine: EngineIOServer, endpoints: HTTPEndpoints) {
        self.engine = engine
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard refusalWritten == nil else { return }  // closing after a 413
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
            if rejected, let written = refusalWritten {
                // The refused request is read to its end: closing now cannot reset the 413.
                let channel = context.channel
                written.whenComplete { _ in channel.close(promise: nil) }
                return
            }
            guard !rejected, let head else { return }
            self.head = nil
            route(context: context, head: head, body: body)
            body = ByteBuffer()
        }
    }

    /// Answers a request whose body is over `maxPayload` with 413 in the error form of the API
    /// it is for (routed as ``route(context:head:body:)`` would): Engine.IO's
    /// `{"code":3,"message":"Payload too large"}`, Pusher's `{"error":"…","code":413}`,
    /// laravel-echo-server's `{"error":"…"}` (also for any other path, as its 404). Then the
    /// connection closes — not at once: closing with the rest of the body unread makes the
    /// kernel send a TCP reset, which can reach the client before the 413 and destroy it. The
    /// rest is read and discarded up to the request's end, for at most ``lingerTime``.
    private func reject(context: ChannelHandlerContext, head: HTTPRequestHead) {
        rejected = true
        let path = EngineIOServer.path(head.uri)
        let limit = engine.configuration.maxPayload
        engine.logger.info("request body over the limit", metadata: ["herald.limit": "\(limit)", "herald.path": "\(path)"])
        let message = "Request body over the limit of \(limit) bytes"
        var headers: HTTPHeaders
        let contentType: String
        let body: ByteBuffer
        if engine.isEndpoint(path) {
            headers = engine.corsHeaders(for: head.headers)
            contentType = "application/json"
            body = ByteBuffer(string: EngineIOError.payloadTooLarge.jsonBody)
        } else if let pusher = endpoints.pusherAPI, pusher.handles(head) {
            headers = ["X-Request-Id": Self.requestID(head.headers)]
            contentType = "application/json"
            body = PusherHTTPAPIError.payloadTooLarge(message).body
        } else {
            headers = endpoints.api?.responseHeaders ?? HTTPHeaders()
            if let api = endpoints.api, api.handles(path) {
                headers.replaceOrAdd(name: "X-Request-Id", value: Self.requestID(head.headers))
            }
            contentType = "application/json; charset=utf-8"
            body = EchoHTTPAPI.error(.payloadTooLarge, message).1
        }
        var response = HTTPResponseHead(version: .http1_1, status: .payloadTooLarge, headers: headers)
        response.headers.replaceOrAdd(name: "Content-Type", value: contentType)
        response.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        response.headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        response.headers.replaceOrAdd(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        refusalWritten = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let channel = context.channel
        lingerDeadline = context.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
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
        lingerDeadline?.cancel()
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
    /// The largest frame (and message) taken, for the 1009 close reason.
    private let maxPayload: Int
    private var closing = false
    /// After a bad frame: closes the connection if the peer has not by then.
    private var lingerDeadline: Scheduled<Void>?

    init(session: any WebSocketSession, logger: Logger, maxPayload: Int) {
        self.session = session
        self.logger = logger
        self.maxPayload = maxPayload
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }  // a close frame is out: nothing more is taken
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

    /// Refuses the connection after a bad frame: the close frame with `code` and `reason`, then
    /// the output half-closed. The input stays open and is discarded — the rest of an oversized
    /// frame, the peer's close frame — until the peer closes or ``HTTPRequestHandler/lingerTime``
    /// passes: closing with unread input makes the kernel answer with a TCP reset, which can
    /// reach the client before the close frame and destroy it (the client saw a reset, not 1009).
    private func refuse(context: ChannelHandlerContext, code: UInt16, reason: String) {
        guard !closing else { return }
        closing = true
        let channel = context.channel
        lingerDeadline = context.eventLoop.scheduleTask(in: HTTPRequestHandler.lingerTime) { channel.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(WebSocketFraming.closeFrame(code: code, reason: reason))).whenComplete { _ in
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        lingerDeadline?.cancel()
        let channel = context.channel
        session.webSocketDidClose(channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Closing: what still arrives is the rest of a refused frame (the decoder, in its error
        // state, reports every further read as an error), read only to be discarded.
        guard !closing else { return }
        // Garbage frames: 1009 for a frame or message over the limit, 1002 for any other
        // protocol violation (the decoder's and the fragment aggregator's).
        let tooBig = "Message over \(maxPayload) bytes"
        let (code, reason): (UInt16, String)
        switch error {
        case NIOWebSocketError.invalidFrameLength as NIOWebSocketError:
            (code, reason) = (1009, tooBig)
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge as NIOWebSocketFrameAggregator.Error:
            (code, reason) = (1009, tooBig)
        case NIOWebSocketFrameAggregator.Error.tooManyFragments as NIOWebSocketFrameAggregator.Error:
            (code, reason) = (1009, "Message in too many fragments")
        case is NIOWebSocketError, is NIOWebSocketFrameAggregator.Error:
            (code, reason) = (1002, "Invalid frame")
        default:
            logger.debug("WebSocket connection error", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        logger.info("bad WebSocket frame; closing", metadata: ["error": "\(error)", "herald.close_code": "\(code)"])
        refuse(context: context, code: code, reason: reason)
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
            try sync.addHandler(EngineWebSocketHandler(session: session, logger: engine.logger, maxPayload: maxPayload))
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
