@testable import Herald
import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// `pusher:signin`, the user index and `terminate_connections` (PROTOCOLS.md D.9), on
/// embedded channels: the session writes unmasked WebSocket frames we decode here.
@Suite struct PusherSigninTests {
    static let app = PusherApp(id: "1", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")

    final class Harness {
        let loop = NIOAsyncTestingEventLoop()
        let server: EngineIOServer

        init(app: PusherApp = PusherSigninTests.app) {
            var configuration = HeraldConfiguration()
            configuration.pusherApps = [app]
            let registry = ChannelRegistry()
            let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            server = EngineIOServer(configuration: configuration, registry: registry,
                                    router: Router(registry: registry, emitToAll: false, logger: logger),
                                    authorizer: nil, logger: logger)
        }

        func connect() async throws -> (PusherSession, NIOAsyncTestingChannel) {
            let channel = NIOAsyncTestingChannel(loop: loop)
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
            let target = EngineIOServer.UpgradeTarget.pusher(app: server.configuration.pusherApps[0], key: server.configuration.pusherApps[0].key, protocolVersion: "7")
            let server = self.server
            let session = try await loop.submit {
                let session = server.attachWebSocket(channel, target: target) as! PusherSession
                session.assumeIsolated { $0.start() }
                return session
            }.get()
            return (session, channel)
        }

        /// Hands `text` to the session and runs the loop.
        func send(_ session: PusherSession, _ text: ByteBuffer, on channel: NIOAsyncTestingChannel) async {
            session.webSocketReceivedText(text, on: channel)
            await loop.run()
        }
    }

    /// The text payloads (and close codes) written so far.
    static func frames(_ channel: NIOAsyncTestingChannel) async throws -> [String] {
        await (channel.eventLoop as! NIOAsyncTestingEventLoop).run()
        var result: [String] = []
        while var buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes >= 2 {
                let opcode = buffer.readInteger(as: UInt8.self)! & 0x0F
                var length = Int(buffer.readInteger(as: UInt8.self)! & 0x7F)
                if length == 126 { length = Int(buffer.readInteger(as: UInt16.self)!) }
                else if length == 127 { length = Int(buffer.readInteger(as: UInt64.self)!) }
                var payload = buffer.readSlice(length: length)!
                if opcode == 0x8 {
                    result.append("close \(payload.readInteger(as: UInt16.self)!)")
                } else {
                    result.append(payload.readString(length: payload.readableBytes)!)
                }
            }
        }
        return result
    }

    static func signinFrame(_ session: PusherSession, userData: String, secret: String = app.secret) -> ByteBuffer {
        let auth = PusherSignature.signinAuth(key: app.key, secret: secret, socketID: session.socketID, userData: userData)
        let data = #"{"auth":"\#(auth)","user_data":\#(PusherSigninTests.quoted(userData))}"#
        return ByteBuffer(string: #"{"event":"pusher:signin","data":\#(data)}"#)
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    @Test func signinIndexesTheUserAndTerminateClosesOnlyTheirConnections() async throws {
        let harness = Harness()
        let (a, channelA) = try await harness.connect()
        let (b, channelB) = try await harness.connect()
        let (c, channelC) = try await harness.connect()
        _ = try await Self.frames(channelA); _ = try await Self.frames(channelB); _ = try await Self.frames(channelC)

        await harness.send(a, Self.signinFrame(a, userData: #"{"id":"7"}"#), on: channelA)
        await harness.send(b, Self.signinFrame(b, userData: #"{"id":"7","user_info":{"name":"Ann"}}"#), on: channelB)
        await harness.send(c, Self.signinFrame(c, userData: #"{"id":"8"}"#), on: channelC)
        #expect(try await Self.frames(channelA) == [#"{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"7\"}"}}"#])
        _ = try await Self.frames(channelB); _ = try await Self.frames(channelC)
        #expect(harness.server.pusherUserConnections(appID: "1", userID: "7").count == 2)
        #expect(harness.server.pusherUserConnections(appID: "1", userID: "8").count == 1)

        #expect(harness.server.terminatePusherUser(appID: "1", userID: "7") == 2)
        for channel in [channelA, channelB] {
            let frames = try await Self.frames(channel)
            #expect(frames.first == #"{"event":"pusher:error","data":{"code":4009,"message":"You got disconnected by the app."}}"#)
            #expect(frames.last == "close 4009")
        }
        #expect(try await Self.frames(channelC).isEmpty)
        // Closed connections leave the index; the other user stays.
        #expect(harness.server.pusherUserConnections(appID: "1", userID: "7").isEmpty)
        #expect(harness.server.pusherUserConnections(appID: "1", userID: "8").count == 1)
        #expect(harness.server.pusherConnectionCount(appID: "1") == 1)
    }

    @Test func badSigninIsUnauthorizedAndClosed() async throws {
        let harness = Harness()
        for (userData, secret) in [(#"{"id":"7"}"#, "wrong"), (#"{"name":"no id"}"#, Self.app.secret), (#"{"id":""}"#, Self.app.secret)] {
            let (session, channel) = try await harness.connect()
            _ = try await Self.frames(channel)
            await harness.send(session, Self.signinFrame(session, userData: userData, secret: secret), on: channel)
            let frames = try await Self.frames(channel)
            #expect(frames.first?.contains(#""code":4009"#) == true, "\(userData)")
            #expect(frames.last == "close 4009")
        }
        #expect(harness.server.pusherConnectionCount(appID: "1") == 0)
    }

    @Test func serverToUserChannelOnlyForItsUser() async throws {
        let harness = Harness()
        let (session, channel) = try await harness.connect()
        _ = try await Self.frames(channel)
        let subscribe = ByteBuffer(string: ##"{"event":"pusher:subscribe","data":{"channel":"#server-to-user-7","auth":""}}"##)
        await harness.send(session, subscribe, on: channel)
        #expect(try await Self.frames(channel) == [##"{"event":"pusher:subscription_error","channel":"#server-to-user-7","data":{"type":"AuthError","error":"The connection is unauthorized.","status":401}}"##])

        await harness.send(session, Self.signinFrame(session, userData: #"{"id":"7"}"#), on: channel)
        await harness.send(session, subscribe, on: channel)
        let frames = try await Self.frames(channel)
        #expect(frames.count == 2)
        #expect(frames.last?.contains("pusher_internal:subscription_succeeded") == true)
        #expect(harness.server.registry.subscriberCount("#server-to-user-7") == 1)
    }

    @Test func signinDeadline() async throws {
        var app = Self.app
        app.userAuthenticationTimeout = .milliseconds(500)
        let harness = Harness(app: app)
        let (lazy, lazyChannel) = try await harness.connect()
        let (prompt, promptChannel) = try await harness.connect()
        _ = lazy
        _ = try await Self.frames(lazyChannel); _ = try await Self.frames(promptChannel)
        await harness.send(prompt, Self.signinFrame(prompt, userData: #"{"id":"7"}"#), on: promptChannel)
        _ = try await Self.frames(promptChannel)
        await harness.loop.advanceTime(by: .milliseconds(499))
        #expect(try await Self.frames(lazyChannel).isEmpty)
        await harness.loop.advanceTime(by: .milliseconds(1))
        let frames = try await Self.frames(lazyChannel)
        #expect(frames.first == #"{"event":"pusher:error","data":{"code":4009,"message":"Connection not authorized within timeout"}}"#)
        #expect(frames.last == "close 4009")
        await harness.loop.advanceTime(by: .seconds(1))
        #expect(try await Self.frames(promptChannel).isEmpty)
        #expect(PusherSession.timeAmount(.milliseconds(1500)) == .milliseconds(1500))
        #expect(PusherApp(id: "1", key: "k", secret: "s").userAuthenticationTimeout == nil)
    }
}
