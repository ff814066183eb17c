import HTTPTypes
import Herald
import HeraldProtocols
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HeraldHummingbird

/// A context carrying the user a middleware found, as an application's would.
struct UserContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var userID: Int?
    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.userID = nil
    }
}

/// `Authorization: Bearer user-<id>` → `context.userID`.
struct BearerMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: UserContext, next: (Request, UserContext) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization], header.hasPrefix("Bearer user-") {
            context.userID = Int(header.dropFirst("Bearer user-".count))
        }
        return try await next(request, context)
    }
}

let pusherApp = PusherApp(id: "1", key: "app-key", secret: "app-secret")

/// Laravel's test rules in Swift: `orders.{id}` for user `id`, `chat.{room}` for any user as a
/// presence member, `lonely` allowed without a member, `room.{a}.{b}` echoing its parameters.
func makeAuthApp(pusher: PusherApp? = nil) -> some ApplicationProtocol {
    var channels = BroadcastChannels<UserContext>()
    channels.channel("orders.{id}") { _, context, subscription in
        guard let user = context.userID, subscription.parameters["id"] == String(user) else { return .denied }
        return .allowed
    }
    channels.channel("chat.{room}") { _, context, _ in
        guard let user = context.userID else { return .denied }
        return try .member(id: user, info: ["name": "User \(user)"])
    }
    channels.channel("lonely") { _, _, _ in .allowed }
    channels.channel("room.{a}-{b}.x") { _, _, subscription in
        .member(id: "echo", info: .object(subscription.parameters.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: .string($0.value)) }))
    }
    channels.channel("fails") { _, _, _ in throw HTTPError(.unauthorized, message: "sign in") }
    let router = Router(context: UserContext.self)
    router.add(middleware: BearerMiddleware())
    router.addBroadcastAuth(pusher: pusher, channels: channels)
    return Application(router: router, logger: quietLogger)
}

let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

func bearer(_ user: Int, _ fields: HTTPFields = formHeaders) -> HTTPFields {
    var headers = fields
    headers[.authorization] = "Bearer user-\(user)"
    return headers
}

@Suite("addBroadcastAuth")
struct BroadcastAuthTests {
    @Test("Herald's (Socket.IO) auth calls get Laravel's redis-driver answers: true, channel_data, 403")
    func laravelShapes() async throws {
        try await makeAuthApp(pusher: pusherApp).test(.router) { app in
            func auth(_ body: String, headers: HTTPFields) async throws -> (HTTPResponse.Status, String) {
                try await app.execute(uri: "/broadcasting/auth", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    ($0.status, String(buffer: $0.body))
                }
            }
            // Herald posts only channel_name (form), with the client's headers.
            #expect(try await auth("channel_name=private-orders.7", headers: bearer(7)) == (.ok, "true"))
            #expect(try await auth("channel_name=private-orders.7", headers: bearer(8))
                == (.forbidden, #"{"error":"access to 'private-orders.7' denied"}"#))
            #expect(try await auth("channel_name=private-orders.7", headers: formHeaders).0 == .forbidden)
            #expect(try await auth("channel_name=presence-chat.1", headers: bearer(7))
                == (.ok, #"{"channel_data":{"user_id":7,"user_info":{"name":"User 7"}}}"#))
            // One rule serves private-chat.1 too: a member on a private channel is just admitted.
            #expect(try await auth("channel_name=private-chat.1", headers: bearer(7)) == (.ok, "true"))
            // JSON bodies and percent-encoding.
            #expect(try await auth(#"{"channel_name":"private-orders.7"}"#, headers: bearer(7, jsonHeaders)) == (.ok, "true"))
            #expect(try await auth("channel_name=presence-room.a%2Bb-c+d.x", headers: bearer(7))
                == (.ok, #"{"channel_data":{"user_id":"echo","user_info":{"a":"a+b","b":"c d"}}}"#))
            // No rule matches, public channels, missing names.
            #expect(try await auth("channel_name=private-unknown", headers: bearer(7)).0 == .forbidden)
            #expect(try await auth("channel_name=orders.7", headers: bearer(7))
                == (.forbidden, #"{"error":"'orders.7' is a public channel: it needs no authorization"}"#))
            #expect(try await auth("socket_id=1.2", headers: bearer(7))
                == (.badRequest, #"{"error":"channel_name is required (1-1024 bytes)"}"#))
            #expect(try await auth("", headers: bearer(7)).0 == .badRequest)
            // A presence channel allowed without a member is the app's bug: 500, said plainly.
            #expect(try await auth("channel_name=presence-lonely", headers: bearer(7))
                == (.internalServerError, #"{"error":"presence channel 'presence-lonely' was allowed without a member"}"#))
            #expect(try await auth("channel_name=private-lonely", headers: bearer(7)) == (.ok, "true"))
            // Errors a rule throws keep their HTTP status.
            #expect(try await auth("channel_name=private-fails", headers: bearer(7)).0 == .unauthorized)
            // Bodies are bounded.
            let huge = "channel_name=private-orders.7&pad=" + String(repeating: "x", count: 20_000)
            #expect(try await auth(huge, headers: bearer(7)).0 == .contentTooLarge)

            // GET with the query, as Laravel's route also accepts.
            try await app.execute(uri: "/broadcasting/auth?channel_name=private-orders.7", method: .get, headers: bearer(7)) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body) == "true")
                #expect($0.headers[.contentType] == "application/json; charset=utf-8")
            }
        }
    }

    @Test("Pusher clients (socket_id) get signed answers that Herald's Pusher signature check accepts")
    func pusherShapes() async throws {
        try await makeAuthApp(pusher: pusherApp).test(.router) { app in
            func auth(_ body: String, user: Int = 7) async throws -> (HTTPResponse.Status, JSONValue) {
                try await app.execute(uri: "/broadcasting/auth", method: .post, headers: bearer(user), body: ByteBuffer(string: body)) {
                    ($0.status, try JSONReader.parse($0.body))
                }
            }
            let socketID = "123456.654321"

            let (privateStatus, privateBody) = try await auth("socket_id=\(socketID)&channel_name=private-orders.7")
            #expect(privateStatus == .ok)
            let privateAuth = try #require(privateBody["auth"]?.stringValue)
            #expect(privateAuth.hasPrefix("app-key:"))
            #expect(privateBody["channel_data"] == nil)
            #expect(PusherSignature.verifyChannelAuth(privateAuth, key: "app-key", secret: "app-secret", socketID: socketID, channel: "private-orders.7"))
            #expect(!PusherSignature.verifyChannelAuth(privateAuth, key: "app-key", secret: "app-secret", socketID: socketID, channel: "private-orders.8"))

            let (presenceStatus, presenceBody) = try await auth("channel_name=presence-chat.1&socket_id=\(socketID)")
            #expect(presenceStatus == .ok)
            let channelData = try #require(presenceBody["channel_data"]?.stringValue)
            #expect(channelData == #"{"user_id":"7","user_info":{"name":"User 7"}}"#)
            let presenceAuth = try #require(presenceBody["auth"]?.stringValue)
            #expect(PusherSignature.verifyChannelAuth(presenceAuth, key: "app-key", secret: "app-secret", socketID: socketID,
                                                      channel: "presence-chat.1", channelData: channelData))
            // Herald's Pusher side reads the member back as user "7" with its info.
            let member = try #require(PresenceMember(channelData: .string(channelData)))
            #expect(member.key == "7")
            #expect(member.userInfo == .object([JSONMember(key: "name", value: .string("User 7"))]))

            // Denied, malformed socket ids, encrypted channels (no master key here).
            #expect(try await auth("socket_id=\(socketID)&channel_name=private-orders.7", user: 8).0 == .forbidden)
            let (badStatus, badBody) = try await auth("socket_id=abc&channel_name=private-orders.7")
            #expect(badStatus == .badRequest)
            #expect(badBody["error"]?.stringValue == "socket_id must be a Pusher socket id (digits.digits)")
            #expect(try await auth("socket_id=\(socketID)&channel_name=private-encrypted-orders.7").0 == .forbidden)
        }
    }

    @Test("the signature matches Pusher's published test vector")
    func pusherTestVector() async throws {
        let app = PusherApp(id: "3", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")
        let router = Router()
        router.addBroadcastAuth(pusher: app) { _, _, _ in .allowed }
        try await Application(router: router, logger: quietLogger).test(.router) { client in
            try await client.execute(uri: "/broadcasting/auth", method: .post, headers: formHeaders,
                                     body: ByteBuffer(string: "channel_name=private-foobar&socket_id=1234.1234")) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body) == #"{"auth":"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"}"#)
            }
        }
    }

    @Test("without a Pusher app, socket_id is ignored and the Laravel shape is answered")
    func noPusherApp() async throws {
        try await makeAuthApp().test(.router) { app in
            try await app.execute(uri: "/broadcasting/auth", method: .post, headers: bearer(7),
                                  body: ByteBuffer(string: "channel_name=private-orders.7&socket_id=1.2")) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body) == "true")
            }
        }
    }
}

@Suite("BroadcastChannels patterns")
struct ChannelPatternTests {
    @Test("placeholders match one or more non-dot characters; the whole name must match")
    func patterns() {
        #expect(ChannelPattern("orders.{id}").match("orders.7") == ["id": "7"])
        #expect(ChannelPattern("orders.{id}").match("orders.7.items") == nil)
        #expect(ChannelPattern("orders.{id}").match("orders.") == nil)
        #expect(ChannelPattern("orders.{id}").match("xorders.7") == nil)
        #expect(ChannelPattern("App.Models.User.{id}").match("App.Models.User.42") == ["id": "42"])
        #expect(ChannelPattern("chat.{room}.{thread}").match("chat.lobby.9") == ["room": "lobby", "thread": "9"])
        // Backtracking, as Laravel's regex: `{a}` gives back what `-{b}` needs.
        #expect(ChannelPattern("room.{a}-{b}").match("room.x-y-z") == ["a": "x-y", "b": "z"])
        #expect(ChannelPattern("store").match("store") == [:])
        #expect(ChannelPattern("store").match("stores") == nil)
        // An unclosed brace is literal text.
        #expect(ChannelPattern("odd.{id").match("odd.{id") == [:])
    }

    @Test("subscription names drop private-encrypted-, private- and presence- as Laravel does")
    func normalizedNames() {
        #expect(ChannelSubscription(channel: "private-orders.7").name == "orders.7")
        #expect(ChannelSubscription(channel: "private-encrypted-orders.7").name == "orders.7")
        #expect(ChannelSubscription(channel: "presence-chat.1").name == "chat.1")
        #expect(ChannelSubscription(channel: "orders").name == "orders")
        #expect(ChannelSubscription(channel: "presence-chat.1").kind == .presence)
    }
}
