// Herald inside a Hummingbird 2 application.
//
// Herald serves Socket.IO/Engine.IO and Pusher WebSockets on its own SwiftNIO listener (its hot
// path is raw NIO, see ARCHITECTURE.md), so it is not mounted inside Hummingbird's HTTP server.
// Instead the application
//
// * runs the `Relay` as one more `Service` of its `Application` (`app.addServices(relay)`):
//   one process, one lifecycle, graceful shutdown together;
// * adds Herald's app-facing routes to its own router: `addHeraldRoutes(_:)` (publish, channel
//   queries) and `addBroadcastAuth(...)` (`/broadcasting/auth` answered in Swift);
// * publishes in-process with `relay.broadcast(someBroadcastEvent)`, or to Redis in Laravel's
//   wire format with `RedisBroadcaster`.
//
// `import HeraldHummingbird` brings `Herald` (and with it HeraldCore) along.

@_exported import Herald
import HeraldProtocols
import Hummingbird

extension Request {
    /// The `X-Socket-ID` header Laravel Echo's HTTP interceptors add to every request: the id of
    /// the browser's own socket. Pass it as `excludingSocketID` to broadcast "to others"
    /// (Laravel's `toOthers()`). `nil` when absent, empty or longer than 128 bytes.
    public var socketID: String? {
        guard let value = headers.first(where: { $0.name.canonicalName == "x-socket-id" })?.value,
              !value.isEmpty, value.utf8.count <= 128 else { return nil }
        return value
    }
}

/// JSON answers and small parsing helpers shared by the routes.
enum HeraldHTTP {
    /// A JSON response with `value` serialized compactly.
    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        var buffer = ByteBuffer()
        value.write(into: &buffer)
        return json(status, buffer)
    }

    /// A JSON response with an already serialized body.
    static func json(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: body)
        )
    }

    /// `{"error":message}` with `status`.
    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(status, .object([JSONMember(key: "error", value: .string(message))]))
    }

    static func number(_ n: Int) -> JSONValue { .number(String(n)) }

    /// Parses `application/x-www-form-urlencoded` text (`+` is a space, `%XX` escapes are
    /// decoded, invalid escapes are kept as written). Later keys win.
    static func form(_ text: Substring) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = percentDecode(parts[0], plusIsSpace: true)
            let value = parts.count > 1 ? percentDecode(parts[1], plusIsSpace: true) : ""
            fields[key] = value
        }
        return fields
    }

    /// Percent-decodes `text` (HeraldProtocols' decoder); invalid escapes stay as written,
    /// invalid UTF-8 is repaired.
    static func percentDecode(_ text: Substring, plusIsSpace: Bool) -> String {
        guard text.contains("%") || (plusIsSpace && text.contains("+")) else { return String(text) }
        return PusherHTTPAPI.percentDecode(text, plusIsSpace: plusIsSpace)
    }

    /// Whether `text` has a C0 control character or DEL (never valid in a channel or event name).
    static func hasControlCharacters(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }
}

/// Hummingbird's router. Herald also has a type named `Router` (its event router, which an
/// embedding application rarely names: `relay.router`); this alias makes `Router` mean
/// Hummingbird's in files that import HeraldHummingbird, as a Hummingbird application expects.
public typealias Router<Context: RequestContext> = Hummingbird.Router<Context>
