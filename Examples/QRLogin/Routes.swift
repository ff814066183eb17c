import Herald
import Hummingbird
import Logging

/// What the back end broadcasts when a phone confirms a code: `wechat.login` with the one-time
/// token, on the login page's own channel `login.<code>` (public, but unguessable: only the
/// page showing the code, and the phone that scanned it, know its name).
struct WechatLogin: BroadcastEvent {
    let code: Substring
    let token: String

    var broadcastOn: [BroadcastChannel] { [.public(Self.channel(for: code))] }
    var broadcastAs: String { "wechat.login" }
    var broadcastWith: JSONValue { .object([JSONMember(key: "token", value: .string(token))]) }

    /// The channel the login page for `code` listens on.
    static func channel(for code: Substring) -> String { "login." + code }
}

/// The demo's HTTP routes.
struct QRLoginRoutes: Sendable {
    let store: LoginStore
    let relay: Relay
    let options: Options
    let requests: RequestLog

    static let sessionCookie = "qrlogin_session"

    func add(to router: Hummingbird.Router<BasicRequestContext>) {
        router.add(middleware: RequestLogMiddleware(log: requests))
        router.get("/") { _, _ in loginPage() }
        router.get("/herald-client.js") { _, _ in
            Self.response(.ok, contentType: "text/javascript; charset=utf-8", body: Pages.heraldClientJS)
        }
        router.get("/scan/:code") { _, context in scanPage(code: Substring(context.parameters.get("code") ?? "")) }
        router.post("/confirm/:code") { request, context in
            confirm(code: Substring(context.parameters.get("code") ?? ""), wantsHTML: Self.wantsHTML(request))
        }
        router.get("/dashboard") { request, _ in dashboard(request) }
        router.get("/stats") { _, _ in Self.json(.ok, requests.json) }
    }

    /// `GET /`: a fresh code and the page that waits for its confirmation.
    func loginPage() -> Response {
        guard let code = store.newCode() else {
            return Self.html(.serviceUnavailable, Pages.message(
                result: "busy", title: "Too many logins in progress", message: "Please try again in a minute."))
        }
        let origin = options.allowedOrigins.first ?? ""
        return Self.html(.ok, Pages.login(
            code: code.secret, lifetime: code.lifetime, heraldURL: options.heraldURL, heraldPort: options.heraldPort, origin: origin))
    }

    /// `GET /scan/<code>`: the phone's page, with the Confirm button.
    func scanPage(code: Substring) -> Response {
        switch store.state(of: code) {
        case .pending:
            Self.html(.ok, Pages.scan(code: code))
        case .used:
            Self.html(.conflict, Pages.message(result: "already-used", title: "Already confirmed", message: "This login code has already been used."))
        case .unknown:
            Self.html(.notFound, Pages.message(result: "unknown", title: "Unknown code", message: "This login code does not exist or has expired."))
        }
    }

    /// `POST /confirm/<code>`: the third party's callback. Creates the one-time token and
    /// broadcasts it to the page waiting on `login.<code>`.
    func confirm(code: Substring, wantsHTML: Bool) -> Response {
        func failure(_ status: HTTPResponse.Status, _ result: String, _ title: String, _ message: String) -> Response {
            wantsHTML
                ? Self.html(status, Pages.message(result: result, title: title, message: message))
                : Self.json(status, .object([
                    JSONMember(key: "error", value: .string(result)),
                    JSONMember(key: "message", value: .string(message)),
                ]))
        }
        switch store.confirm(code) {
        case .unknown:
            return failure(.notFound, "unknown", "Unknown code", "This login code does not exist or has expired.")
        case .alreadyUsed:
            return failure(.conflict, "already-used", "Already confirmed", "This login code has already been used.")
        case .confirmed(let token):
            let event = WechatLogin(code: code, token: token)
            let channel = WechatLogin.channel(for: code)
            let listeners = relay.registry.subscriberCount(channel)
            guard relay.broadcast(event) else {
                store.revert(code, token: token)
                return failure(.serviceUnavailable, "busy", "Try again", "Herald's queue is full; please confirm again.")
            }
            if wantsHTML {
                return Self.html(.ok, Pages.message(
                    result: "confirmed", title: "Confirmed",
                    message: listeners > 0 ? "The login page has been told; it is logging you in now." : "No login page is listening for this code any more."))
            }
            return Self.json(.ok, .object([
                JSONMember(key: "status", value: .string("confirmed")),
                JSONMember(key: "channel", value: .string(channel)),
                JSONMember(key: "listeners", value: .number(String(listeners))),
            ]))
        }
    }

    /// `GET /dashboard?token=…`: redeems the one-time token for a session cookie; afterwards the
    /// cookie alone opens the dashboard. Anything else is 401.
    func dashboard(_ request: Request) -> Response {
        let lifetime = store.limits.sessionLifetime
        if let token = request.uri.queryParameters["token"], let session = store.redeem(token: token) {
            var response = Self.html(.ok, Pages.dashboard(sessionLifetime: lifetime))
            response.setCookie(Cookie(
                name: Self.sessionCookie, value: session, maxAge: Int(lifetime.components.seconds),
                path: "/", httpOnly: true, sameSite: .lax))
            return response
        }
        if let session = request.cookies[Self.sessionCookie]?.value, store.isSession(session[...]) {
            return Self.html(.ok, Pages.dashboard(sessionLifetime: lifetime))
        }
        return Self.html(.unauthorized, Pages.message(
            result: "unauthorized", title: "Not logged in", message: "This login link is invalid, expired or already used."))
    }

    // MARK: Responses

    static func wantsHTML(_ request: Request) -> Bool {
        request.headers[.accept]?.contains("text/html") ?? false
    }

    static func html(_ status: HTTPResponse.Status, _ page: String) -> Response {
        response(status, contentType: "text/html; charset=utf-8", body: page)
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var buffer = ByteBuffer()
        value.write(into: &buffer)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: buffer))
    }

    static func response(_ status: HTTPResponse.Status, contentType: String, body: String) -> Response {
        Response(status: status, headers: [.contentType: contentType, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
