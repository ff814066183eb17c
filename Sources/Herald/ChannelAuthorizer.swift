import AsyncHTTPClient
import HeraldCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// What the application answered for one private or presence subscription.
enum AuthorizationResult: Sendable {
    /// 200: admitted; `channelData` is the presence member data, when the app sent it.
    case allowed(channelData: JSONValue?)
    /// Refused: the HTTP status (0 when the app could not be reached or timed out, 503 when
    /// too many auth calls were already waiting).
    case refused(status: Int, reason: String)
}

/// One subscription to authorize, with what the client sent.
struct AuthorizationRequest: Sendable {
    var channel: String
    /// Headers from the subscribe payload's `auth.headers` (Echo puts X-CSRF-TOKEN and
    /// Authorization there).
    var headers: [(name: String, value: String)]
    /// The Socket.IO handshake's `Cookie` header, forwarded unless the client sent its own.
    var handshakeCookie: String?
    /// The handshake's `Referer`, which picks among several auth hosts.
    var handshakeReferer: String?
}

/// Calls the application's `/broadcasting/auth` the way laravel-echo-server does, with the
/// protections it lacked: TLS verification by default, a timeout, and a cap on concurrent
/// calls so a reconnect storm cannot flood the application.
final class ChannelAuthorizer: Sendable {
    let configuration: AuthorizationConfiguration
    private let client: HTTPClient
    private let logger: Logger
    private let limiter = Mutex(Limiter())
    /// `herald_auth_requests_total{result}` and `herald_auth_duration_seconds`.
    private let metrics: HeraldMetrics

    private struct Limiter {
        var inFlight = 0
        var waiting: [@Sendable () -> Void] = []
        var waitingHead = 0
    }

    /// Largest auth response body read.
    static let maxResponseBytes = 64 * 1024

    init(configuration: AuthorizationConfiguration, eventLoopGroup: any EventLoopGroup, metrics: HeraldMetrics = .disabled, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        if !configuration.verifyCertificates { tls.certificateVerification = .none }
        let timeout = configuration.timeout.timeAmount
        self.client = HTTPClient(
            eventLoopGroupProvider: .shared(eventLoopGroup),
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls,
                redirectConfiguration: .disallow,
                timeout: .init(connect: min(timeout, .seconds(5)), read: timeout)
            )
        )
    }

    func shutdown() async {
        do {
            try await client.shutdown()
        } catch {
            logger.debug("auth HTTP client shutdown", metadata: ["error": "\(error)"])
        }
    }

    /// The auth URL for a client, honouring laravel-echo-server's Referer rule for host lists.
    func url(referer: String?) -> String {
        var host = configuration.hosts.first ?? "http://localhost"
        if configuration.hosts.count > 1, let referer, let origin = Self.origin(of: referer),
           let match = configuration.hosts.first(where: { Self.origin(of: $0) == origin }) {
            host = match
        }
        if host.hasSuffix("/") { host.removeLast() }
        return host + configuration.endpoint
    }

    /// `scheme://host[:port]` of a URL.
    static func origin(of url: String) -> String? {
        guard let schemeEnd = url.firstRange(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return url[..<schemeEnd.upperBound].lowercased() + authority.lowercased()
    }

    /// Authorizes one subscription; the future completes on `eventLoop`.
    func authorize(_ request: AuthorizationRequest, on eventLoop: any EventLoop) -> EventLoopFuture<AuthorizationResult> {
        let promise = eventLoop.makePromise(of: AuthorizationResult.self)
        let start: @Sendable () -> Void = { [self] in
            let started = NIODeadline.now()
            self.perform(request, on: eventLoop).whenComplete { result in
                self.release()
                let value: AuthorizationResult
                switch result {
                case .success(let result): value = result
                case .failure(let error): value = .refused(status: 0, reason: "\(error)")
                }
                self.record(value, since: started)
                promise.succeed(value)
            }
        }
        enum Admission { case now, queued, full }
        let admission: Admission = limiter.withLock { state in
            if state.inFlight < configuration.maxConcurrentRequests {
                state.inFlight += 1
                return .now
            }
            if state.waiting.count - state.waitingHead >= configuration.maxQueuedRequests { return .full }
            state.waiting.append(start)
            return .queued
        }
        switch admission {
        case .now: start()
        case .queued: break
        case .full:
            logger.warning("auth call refused: too many waiting", metadata: ["herald.channel": "\(request.channel)"])
            metrics.authOverloaded.increment()
            promise.succeed(.refused(status: 503, reason: "too many auth calls waiting"))
        }
        return promise.futureResult
    }

    /// Counts one answered auth call by result (`allowed`, `refused` by the app, `error` when
    /// it could not be reached or timed out) and records how long it took.
    private func record(_ result: AuthorizationResult, since started: NIODeadline) {
        metrics.authDuration.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
        switch result {
        case .allowed: metrics.authAllowed.increment()
        case .refused(status: 0, _): metrics.authError.increment()
        case .refused: metrics.authRefused.increment()
        }
    }

    private func release() {
        let next: (@Sendable () -> Void)? = limiter.withLock { state in
            guard state.waitingHead < state.waiting.count else {
                state.inFlight -= 1
                state.waiting.removeAll(keepingCapacity: true)
                state.waitingHead = 0
                return nil
            }
            let next = state.waiting[state.waitingHead]
            state.waitingHead += 1
            return next
        }
        next?()
    }

    private func perform(_ request: AuthorizationRequest, on eventLoop: any EventLoop) -> EventLoopFuture<AuthorizationResult> {
        let url = self.url(referer: request.handshakeReferer)
        var headers = HTTPHeaders()
        var sawCookie = false
        for (name, value) in request.headers {
            let lower = name.lowercased()
            // Framing and hop-by-hop headers are Herald's to set.
            if ["host", "content-length", "content-type", "connection", "transfer-encoding", "upgrade", "te", "keep-alive"].contains(lower) { continue }
            if lower == "cookie" { sawCookie = true }
            headers.add(name: name, value: value)
        }
        if !sawCookie, let cookie = request.handshakeCookie { headers.add(name: "Cookie", value: cookie) }
        headers.replaceOrAdd(name: "X-Requested-With", value: "XMLHttpRequest")
        headers.replaceOrAdd(name: "Content-Type", value: "application/x-www-form-urlencoded")
        headers.replaceOrAdd(name: "Accept", value: "application/json")
        let body = "channel_name=" + Self.formEncode(request.channel)
        let httpRequest: HTTPClient.Request
        do {
            httpRequest = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .string(body))
        } catch {
            return eventLoop.makeSucceededFuture(.refused(status: 0, reason: "invalid auth URL '\(url)': \(error)"))
        }
        let deadline = NIODeadline.now() + configuration.timeout.timeAmount
        return client.execute(
            request: httpRequest,
            delegate: ResponseAccumulator(request: httpRequest, maxBodySize: Self.maxResponseBytes),
            eventLoop: .delegateAndChannel(on: eventLoop),
            deadline: deadline
        ).futureResult.map { response in
            Self.interpret(status: Int(response.status.code), body: response.body)
        }
    }

    /// Reads the app's answer: only 200 admits; `channel_data` (object or JSON string) becomes
    /// the presence member. A 200 whose body is not JSON still admits, as laravel-echo-server.
    static func interpret(status: Int, body: ByteBuffer?) -> AuthorizationResult {
        guard status == 200 else {
            return .refused(status: status, reason: "the auth endpoint answered \(status)")
        }
        guard let body, let json = try? JSONReader.parse(body) else { return .allowed(channelData: nil) }
        return .allowed(channelData: json["channel_data"])
    }

    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0xF)])
            }
        }
        return out
    }
}
