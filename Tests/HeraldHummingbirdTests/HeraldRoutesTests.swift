import HTTPTypes
import Herald
import HeraldHummingbird
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// A logger that stays quiet unless something is badly wrong.
let quietLogger: Logger = {
    var logger = Logger(label: "herald-hummingbird-tests")
    logger.logLevel = .critical
    return logger
}()

/// Waits (up to 10 s) until `condition` holds; false if it never did.
func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// A relay on a free loopback port, standalone (no Redis).
func makeRelay() -> Relay {
    Relay(configuration: HeraldConfiguration(host: "127.0.0.1", port: 0), logger: quietLogger)
}

/// An application with `addHeraldRoutes` under `/herald` and the relay as a service.
func makeApp(relay: Relay, limits: HeraldRouteLimits = HeraldRouteLimits()) -> some ApplicationProtocol {
    let router = Router()
    router.group("herald").addHeraldRoutes(relay, limits: limits)
    router.get("socket-id") { request, _ in request.socketID ?? "none" }
    return Application(router: router, services: [relay], logger: quietLogger)
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]

/// A Socket.IO 5 client over Engine.IO 4 long-polling, on one keep-alive connection to the relay.
struct PollingClient {
    let client: TestClient
    let session: String
    /// The Socket.IO socket id (what Laravel Echo sends as `X-Socket-ID`).
    let socketID: String

    static func connect(_ client: TestClient) async throws -> PollingClient {
        let open = try await client.get("/socket.io/?EIO=4&transport=polling")
        let handshake = try JSONReader.parse(String(String(buffer: try #require(open.body)).dropFirst()))
        let sid = try #require(handshake["sid"]?.stringValue)
        let session = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"
        let connect = try await client.post(session, body: ByteBuffer(string: "40"))
        #expect(connect.body.map { String(buffer: $0) } == "ok")
        let connected = String(buffer: try #require(try await client.get(session).body))
        #expect(connected.hasPrefix("40"))
        let socketID = try #require(try JSONReader.parse(String(connected.dropFirst(2)))["sid"]?.stringValue)
        return PollingClient(client: client, session: session, socketID: socketID)
    }

    /// Laravel Echo's subscribe message.
    func subscribe(_ channel: String) async throws {
        let reply = try await client.post(session, body: ByteBuffer(string: #"42["subscribe",{"channel":"\#(channel)","auth":{"headers":{}}}]"#))
        #expect(reply.body.map { String(buffer: $0) } == "ok")
    }

    /// The next polling response (held by the relay until it has something to send).
    func poll() async throws -> String {
        String(buffer: try #require(try await client.get(session).body))
    }
}

@Suite("addHeraldRoutes")
struct HeraldRoutesTests {
    @Test("POST events answers 400, 413 and 422 with a JSON error naming the problem")
    func publishValidation() async throws {
        let relay = makeRelay()
        try await makeApp(relay: relay, limits: HeraldRouteLimits(maxBodyBytes: 256, maxChannelsPerEvent: 2)).test(.router) { client in
            func publish(_ body: String) async throws -> (HTTPResponse.Status, String) {
                try await client.execute(uri: "/herald/events", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) {
                    #expect($0.headers[.contentType] == "application/json; charset=utf-8")
                    let json = try JSONReader.parse($0.body)
                    return ($0.status, json["error"]?.stringValue ?? json.serialized)
                }
            }
            let cases: [(body: String, status: HTTPResponse.Status, message: String)] = [
                ("not json", .badRequest, "the body must be a JSON object"),
                (#"["orders"]"#, .badRequest, "the body must be a JSON object"),
                (#"{"channel":"orders","name":"E","data":1"#, .badRequest, "the body must be a JSON object"),
                (#"{"name":"E","data":1}"#, .unprocessableContent, "give the channel"),
                (#"{"channel":"a","channels":["b"],"name":"E","data":1}"#, .unprocessableContent, "either \"channel\" or \"channels\""),
                (#"{"channel":7,"name":"E","data":1}"#, .unprocessableContent, "\"channel\" must be a string"),
                (#"{"channels":[],"name":"E","data":1}"#, .unprocessableContent, "non-empty list"),
                (#"{"channels":"orders","name":"E","data":1}"#, .unprocessableContent, "non-empty list"),
                (#"{"channels":["a","b","c"],"name":"E","data":1}"#, .unprocessableContent, "at most 2 channels"),
                (#"{"channel":"","name":"E","data":1}"#, .unprocessableContent, "channel names must be"),
                (#"{"channel":"a\nb","name":"E","data":1}"#, .unprocessableContent, "channel names must be"),
                (#"{"channel":"orders","data":1}"#, .unprocessableContent, "give the event name"),
                (#"{"channel":"orders","name":"E","event":"F","data":1}"#, .unprocessableContent, "either \"name\" or \"event\""),
                (#"{"channel":"orders","name":5,"data":1}"#, .unprocessableContent, "the event name must be"),
                (#"{"channel":"orders","name":"","data":1}"#, .unprocessableContent, "the event name must be"),
                (#"{"channel":"orders","name":"E"}"#, .unprocessableContent, "\"data\" is required"),
                (#"{"channel":"orders","name":"E","data":1,"socket_id":{}}"#, .unprocessableContent, "\"socket_id\" must be"),
                (#"{"channel":"orders","name":"E","data":1,"socket_id":""}"#, .unprocessableContent, "\"socket_id\" must be"),
                ("{\"channel\":\"orders\",\"name\":\"E\",\"data\":\"\(String(repeating: "x", count: 300))\"}", .contentTooLarge, "larger than 256 bytes"),
            ]
            for item in cases {
                let (status, message) = try await publish(item.body)
                #expect(status == item.status, "\(item.body)")
                #expect(message.contains(item.message), "\(item.body) → \(message)")
            }
            let (status, body) = try await publish(#"{"channels":["a","b","a"],"event":"E","data":null,"socket_id":null}"#)
            #expect(status == .ok)
            #expect(body == #"{"message":"ok","channels":2}"#)
        }
    }

    @Test("a published event reaches a Socket.IO subscriber verbatim; socket_id excludes that socket; channel routes count it")
    func publishReachesSubscriber() async throws {
        let relay = makeRelay()
        try await makeApp(relay: relay).test(.router) { app in
            #expect(await eventually { relay.boundAddress != nil })
            let port = try #require(relay.boundAddress?.port)
            try await TestClient.withClient(host: "127.0.0.1", port: port) { socket in
                let subscriber = try await PollingClient.connect(socket)
                try await subscriber.subscribe("orders")
                #expect(await eventually { relay.registry.subscriberCount("orders") == 1 })

                // Channel routes see the subscription.
                try await app.execute(uri: "/herald/channels", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == #"{"channels":{"orders":{"occupied":true,"subscription_count":1}}}"#)
                }
                try await app.execute(uri: "/herald/channels?filter_by_prefix=private-", method: .get) { response in
                    #expect(String(buffer: response.body) == #"{"channels":{}}"#)
                }
                try await app.execute(uri: "/herald/channels/orders", method: .get) { response in
                    #expect(String(buffer: response.body) == #"{"occupied":true,"subscription_count":1}"#)
                }

                // The sender's own socket is skipped (toOthers), then the next event arrives
                // with its data byte for byte (spacing, number literal and escapes kept).
                let skipped = #"{"channel":"orders","name":"Skipped","data":{},"socket_id":"\#(subscriber.socketID)"}"#
                let sent = #"{"channels":["orders","elsewhere"],"event":"OrderShipped","data":{"id": 7, "total": 1.50, "note":"caf\u00e9"}}"#
                for body in [skipped, sent] {
                    try await app.execute(uri: "/herald/events", method: .post, headers: jsonHeaders, body: ByteBuffer(string: body)) { response in
                        #expect(response.status == .ok)
                    }
                }
                let delivered = try await subscriber.poll()
                #expect(delivered == #"42["OrderShipped","orders",{"id": 7, "total": 1.50, "note":"caf\u00e9"}]"#)
                _ = try await socket.post(subscriber.session, body: ByteBuffer(string: "1"))  // Engine.IO close
            }
        }
    }

    @Test("channel routes: unoccupied channels, percent-decoded names, presence-only user lists")
    func channelQueries() async throws {
        let relay = makeRelay()
        try await makeApp(relay: relay).test(.router) { app in
            try await app.execute(uri: "/herald/channels/presence-chat.1", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"occupied":false,"subscription_count":0,"user_count":0}"#)
            }
            try await app.execute(uri: "/herald/channels/presence-chat.1/users", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"users":[]}"#)
            }
            try await app.execute(uri: "/herald/channels/%23server-to-user-1", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"occupied":false,"subscription_count":0}"#)
            }
            try await app.execute(uri: "/herald/channels/orders/users", method: .get) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body) == #"{"error":"users can only be listed for presence channels"}"#)
            }
            try await app.execute(uri: "/herald/channels/a%0Ab", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test("Request.socketID reads X-Socket-ID, ignoring empty and oversized values")
    func socketIDHeader() async throws {
        let relay = makeRelay()
        try await makeApp(relay: relay).test(.router) { app in
            let cases: [(String?, String)] = [("abc-123", "abc-123"), (nil, "none"), ("", "none"), (String(repeating: "x", count: 129), "none")]
            for (header, expected) in cases {
                var headers: HTTPFields = [:]
                if let header, let name = HTTPField.Name("X-Socket-ID") { headers[name] = header }
                try await app.execute(uri: "/socket-id", method: .get, headers: headers) { response in
                    #expect(String(buffer: response.body) == expected)
                }
            }
        }
    }
}
