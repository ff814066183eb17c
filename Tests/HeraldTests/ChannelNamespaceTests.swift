@testable import Herald
import HeraldCore
import HeraldProtocols
import HeraldTestSupport
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

/// A recipient that records each broadcast in both dialects: the Socket.IO packet's
/// `event@channel` (`seed:<channel>:<event>` for seed mode's copies) and the Pusher message's
/// `event@channel` (`nil` when the broadcast has no Pusher form).
private final class TwoDialectRecipient: Recipient, Sendable {
    let eventLoop: any EventLoop
    private let received = Mutex<[(socketIO: String, pusher: String?)]>([])

    init(loop: any EventLoop) { self.eventLoop = loop }

    func deliver(_ broadcast: EncodedBroadcast) -> Bool {
        var socketIO = String(buffer: broadcast.packet)
        if case .array(let items)? = try? JSONReader.parse(String(socketIO.dropFirst(2))), items.count >= 2, case .string(let name) = items[0] {
            if case .string(let channel) = items[1] { socketIO = "\(name)@\(channel)" } else { socketIO = "seed:\(name)" }
        }
        var pusher: String?
        if var frame = broadcast.pusherFrame, let payload = Self.payload(of: &frame),
           let message = try? JSONReader.parse(payload), case .string(let name)? = message["event"], case .string(let channel)? = message["channel"] {
            pusher = "\(name)@\(channel)"
        }
        received.withLock { $0.append((socketIO, pusher)) }
        return false
    }

    func flushDeliveries() {}

    var socketIO: [String] { received.withLock { $0.map(\.socketIO) } }
    var pusher: [String?] { received.withLock { $0.map(\.pusher) } }

    /// The payload of an unmasked server text frame.
    private static func payload(of frame: inout ByteBuffer) -> ByteBuffer? {
        guard frame.readInteger(as: UInt8.self) != nil, let second = frame.readInteger(as: UInt8.self) else { return nil }
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = frame.readInteger(as: UInt16.self) else { return nil }
            length = Int(extended)
        } else if length == 127 {
            guard let extended = frame.readInteger(as: UInt64.self) else { return nil }
            length = Int(extended)
        }
        return frame.readSlice(length: length)
    }
}

/// Each Pusher app after the first has channels of its own (issue #4): the key, the registry,
/// the router, the cache channels, presence and webhooks keep namespaces apart, and no channel
/// name can pass for another namespace's channel.
@Suite("Channel namespaces: one app's channels are not another's", .timeLimit(.minutes(1)))
struct ChannelNamespaceTests {
    static let first = PusherApp(id: "1001", key: "key-a", secret: "secret-a")
    static let second = PusherApp(id: "1002", key: "key-b", secret: "secret-b")
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    let loop = EmbeddedEventLoop()

    // MARK: ChannelKey

    @Test("a key is its namespace and name, round trip, and no name passes for another namespace's key")
    func keys() {
        let namespaced = ChannelKey(namespace: "1002", name: "private-orders.1")
        #expect(namespaced.namespace == "1002" && namespaced.name == "private-orders.1" && !namespaced.isShared)
        var event = Event(channel: "private-orders.1", name: "e", json: .null, source: .http, namespace: "1002")
        #expect(ChannelKey(event) == namespaced)
        event.namespace = nil
        #expect(ChannelKey(event) == ChannelKey(shared: "private-orders.1"))
        #expect(ChannelKey(shared: "orders").isShared)
        let literal: ChannelKey = "orders"
        #expect(literal == ChannelKey(namespace: nil, name: "orders"))

        // Whatever a shared name holds — a would-be separator, the readable form, control
        // characters — it is a different key from every namespaced one.
        let lookalikes = ["1002\u{1F}private-orders.1", "1002:private-orders.1", "app 1002: private-orders.1", "1002/private-orders.1", "\u{0}1002\u{0}private-orders.1"]
        for name in lookalikes {
            #expect(ChannelKey(shared: name) != namespaced)
            #expect(Set([ChannelKey(shared: name), namespaced]).count == 2)
        }
        // Nor can a namespace plus a name make another split of the same characters.
        #expect(ChannelKey(namespace: "10", name: "02private-orders.1") != ChannelKey(namespace: "1002", name: "private-orders.1"))
        #expect(ChannelKey(namespace: "", name: "orders") != ChannelKey(shared: "orders"))

        #expect(namespaced.description == "app 1002: private-orders.1")
        #expect(ChannelKey(shared: "orders").description == "orders")
    }

    @Test("the first app (and only it) shares the channels; the others are namespaced by their id")
    func namespaceOfApps() {
        let apps = [Self.first, Self.second, PusherApp(id: "1003", key: "key-c", secret: "secret-c")]
        #expect(ChannelKey.namespace(of: apps[0], among: apps) == nil)
        #expect(ChannelKey.namespace(of: apps[1], among: apps) == "1002")
        #expect(ChannelKey.namespace(of: apps[2], among: apps) == "1003")
        #expect(ChannelKey.namespace(of: Self.first, among: [Self.first]) == nil)
    }

    @Test("Socket.IO channel names with control characters are told apart")
    func controlCharacters() {
        for name in ["1002\u{1F}orders", "a\u{0}b", "tab\there", "line\n", "del\u{7F}", "c1\u{85}"] {
            #expect(EngineSession.hasControlCharacter(name), "\(name.debugDescription)")
        }
        for name in ["orders", "private-orders.1", "presence-chat.1", "app 1002: orders", "ünïcödé.🙂"] {
            #expect(!EngineSession.hasControlCharacter(name), "\(name)")
        }
    }

    // MARK: Registry

    @Test("the same name in two namespaces is two channels: members, presence, counts, names")
    func registryIsolation() {
        let registry = ChannelRegistry()
        let shared = FakeRecipient(loop: loop), other = FakeRecipient(loop: loop)
        let a = ChannelKey(shared: "orders"), b = ChannelKey(namespace: "1002", name: "orders")
        registry.subscribe(shared, to: a)
        registry.subscribe(other, to: b)
        #expect(registry.groups(for: a)?.values.flatMap(\.sessions.keys) == [ObjectIdentifier(shared)])
        #expect(registry.groups(for: b)?.values.flatMap(\.sessions.keys) == [ObjectIdentifier(other)])
        #expect(registry.subscriberCount("orders") == 1)
        #expect(registry.subscriberCount("orders", namespace: "1002") == 1)
        #expect(registry.subscriberCount("orders", namespace: "1003") == 0)
        // The public listing is the shared channels'; each namespace lists its own.
        #expect(registry.channelNames == ["orders"])
        #expect(registry.channelNames(namespace: "1002") == ["orders"])
        #expect(registry.channelNames(namespace: "1003").isEmpty)
        #expect(registry.channelCount == 2)
        // A shared name shaped like a namespaced key reads nothing of the namespace.
        #expect(registry.subscriberCount("1002\u{1F}orders") == 0)
        #expect(registry.subscriberCount("app 1002: orders") == 0)

        // Presence: user 1 joins both; each is the user's first connection in its channel, and
        // each list and audience is its own namespace's.
        let p = ChannelKey(shared: "presence-room"), q = ChannelKey(namespace: "1002", name: "presence-room")
        let joinShared = registry.joinPresence(shared, socketID: "s", channel: p, member: PresenceMember(userID: .string("1"), userInfo: .string("A's")))
        let joinOther = registry.joinPresence(other, socketID: "o", channel: q, member: PresenceMember(userID: .string("1"), userInfo: .string("B's")))
        #expect(joinShared.first && joinOther.first)
        #expect(joinOther.members.map(\.member.userInfo) == [.string("B's")])
        #expect(joinOther.audience == nil)
        let third = FakeRecipient(loop: loop)
        let joinThird = registry.joinPresence(third, socketID: "t", channel: q, member: PresenceMember(userID: .string("2")))
        #expect(joinThird.audience?.values.flatMap(\.sessions.keys) == [ObjectIdentifier(other)])
        #expect(registry.presenceMembers("presence-room").map(\.key) == ["1"])
        #expect(registry.presenceMembers("presence-room", namespace: "1002").map(\.key) == ["2", "1"])
        #expect(registry.presenceUserID(q, of: third) == "2" && registry.presenceUserID(p, of: third) == nil)

        // Leaving one namespace's channel leaves the other's alone.
        registry.disconnect(other, channels: [b])
        #expect(registry.subscriberCount("orders") == 1)
        #expect(registry.subscriberCount("orders", namespace: "1002") == 0)
        #expect(registry.leavePresence(shared, channel: p)?.member.key == "1")
        #expect(registry.presenceMembers("presence-room", namespace: "1002").count == 2)
    }

    // MARK: Router

    @Test("an event reaches its namespace's subscribers only, under its own name; seed mode stays shared")
    func routerIsolation() async {
        let registry = ChannelRegistry()
        let router = Router(registry: registry, emitToAll: true, logger: Self.logger)
        let running = Task { await router.run() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let shared = TwoDialectRecipient(loop: loop), other = TwoDialectRecipient(loop: loop)
        registry.connect(shared)
        registry.connect(other)
        registry.subscribe(shared, to: ChannelKey(shared: "orders"))
        registry.subscribe(other, to: ChannelKey(namespace: "1002", name: "orders"))
        registry.subscribe(shared, to: ChannelKey(shared: "done"))
        registry.subscribe(other, to: ChannelKey(namespace: "1002", name: "done"))

        router.publish(Event(channel: "orders", name: "for-b", json: .null, source: .http, namespace: "1002"))
        router.publish(Event(channel: "orders", name: "for-a", json: .null, source: .redis))
        router.publish(Event(channel: "orders", name: "for-nobody", json: .null, source: .http, namespace: "1003"))
        // Markers, last: everything before them was handed to the same loop first.
        router.publish(Event(channel: "done", name: "end", json: .null, source: .redis))
        router.publish(Event(channel: "done", name: "end", json: .null, source: .http, namespace: "1002"))
        #expect(await eventually { shared.socketIO.contains("end@done") && other.socketIO.contains("end@done") })
        router.finish()
        await running.value

        // Shared: its event and marker, and seed mode's copies of those (everyone gets them).
        // Never B's event, not even through seed mode.
        #expect(shared.socketIO.filter { !$0.hasPrefix("seed:") } == ["for-a@orders", "end@done"])
        #expect(shared.socketIO.filter { $0.hasPrefix("seed:") } == ["seed:orders:for-a", "seed:done:end"])
        #expect(!shared.socketIO.contains { $0.contains("for-b") || $0.contains("for-nobody") })
        // B: its own event and marker only, named as B's clients know the channel (seed copies
        // of shared events have no Pusher form: Pusher connections ignore them).
        #expect(other.socketIO.filter { !$0.hasPrefix("seed:") } == ["for-b@orders", "end@done"])
        #expect(other.pusher.compactMap { $0 } == ["for-b@orders", "end@done"])
    }

    @Test("cache channels keep each namespace's last event apart")
    func cacheIsolation() {
        let cache = PusherChannelCache()
        cache.store(channel: ChannelKey(namespace: "1002", name: "cache-prices"), name: "b-price", data: ByteBuffer(string: "2"), dataForm: .string)
        #expect(String(buffer: cache.subscriberMessage(channel: "cache-prices", ttl: .seconds(60)))
            == #"{"event":"pusher:cache_miss","channel":"cache-prices"}"#)
        #expect(String(buffer: cache.subscriberMessage(channel: ChannelKey(namespace: "1002", name: "cache-prices"), ttl: .seconds(60)))
            == #"{"event":"b-price","channel":"cache-prices","data":"2"}"#)
    }

    // MARK: Webhooks

    @Test("webhook events go to the app owning the channel, under its name; user channels are never occupied")
    func webhookRouting() async throws {
        let delivery = PusherWebhookDelivery(batchSize: 100, batchInterval: .seconds(60))
        var first = Self.first, second = Self.second
        first.webhooks = [PusherWebhook(url: "http://127.0.0.1:9/a")]
        first.webhookDelivery = delivery
        second.webhooks = [PusherWebhook(url: "http://127.0.0.1:9/b")]
        second.webhookDelivery = delivery
        let sender = try #require(PusherWebhookSender(apps: [first, second], eventLoopGroup: MultiThreadedEventLoopGroup.singleton, metrics: .disabled, logger: Self.logger))
        let targetA = try #require(sender.targets.first { $0.appID == "1001" })
        let targetB = try #require(sender.targets.first { $0.appID == "1002" })
        #expect(targetA.namespace == nil && targetB.namespace == "1002")

        let registry = ChannelRegistry(metrics: .disabled, webhooks: sender)
        let x = FakeRecipient(loop: loop), y = FakeRecipient(loop: loop)
        registry.subscribe(x, to: ChannelKey(shared: "orders"))
        registry.subscribe(y, to: ChannelKey(namespace: "1002", name: "orders"))
        registry.subscribe(y, to: ChannelKey(namespace: "1002", name: "#server-to-user-7"))
        registry.subscribe(x, to: ChannelKey(shared: "#server-to-user-7"))
        _ = registry.joinPresence(y, socketID: "y", channel: ChannelKey(namespace: "1002", name: "presence-room"), member: PresenceMember(userID: .string("7")))
        sender.record(.cacheMiss(channel: ChannelKey(namespace: "1002", name: "cache-x")))
        registry.disconnect(y, channels: [ChannelKey(namespace: "1002", name: "orders"), ChannelKey(namespace: "1002", name: "#server-to-user-7")])
        registry.disconnect(x, channels: [ChannelKey(shared: "orders"), ChannelKey(shared: "#server-to-user-7")])

        sender.finish()
        let a = try #require(await targetA.nextBatch())
        let b = try #require(await targetB.nextBatch())
        #expect(a == [.channelOccupied(channel: "orders"), .channelVacated(channel: "orders")])
        #expect(b == [
            .channelOccupied(channel: ChannelKey(namespace: "1002", name: "orders")),
            .channelOccupied(channel: ChannelKey(namespace: "1002", name: "presence-room")),
            .memberAdded(channel: ChannelKey(namespace: "1002", name: "presence-room"), userID: "7"),
            .cacheMiss(channel: ChannelKey(namespace: "1002", name: "cache-x")),
            .channelVacated(channel: ChannelKey(namespace: "1002", name: "orders")),
        ])
        // On the wire B's events name the channel as B knows it.
        #expect(String(buffer: PusherWebhookRequest.body(b.prefix(1), timeMilliseconds: 1))
            == #"{"time_ms":1,"events":[{"name":"channel_occupied","channel":"orders"}]}"#)
    }

    // MARK: Unicode twins

    /// Names Swift's `String ==` calls equal (canonical equivalence) but Redis, Laravel, Pusher
    /// and the app's auth endpoint tell apart by their bytes.
    static let unicodeTwins = [
        ("private-user.Kate", "private-user.\u{212A}ate"),  // U+212A KELVIN SIGN, "K" in NFC
        ("private-user.Jos\u{E9}", "private-user.Jose\u{301}"),  // precomposed é, e + U+0301
        ("presence-team;1", "presence-team\u{37E}1"),  // U+037E GREEK QUESTION MARK, ";" in NFC
    ]

    @Test("keys, sessions' channel sets and the registry compare names by their UTF-8 bytes: Unicode twins are two channels")
    func unicodeTwinsAreDifferentChannels() {
        for (plain, twin) in Self.unicodeTwins {
            #expect(plain == twin, "the premise: String == is canonical equivalence")
            #expect(!plain.utf8.elementsEqual(twin.utf8))
            // The same bytes in another String instance are the same key, with the same hash.
            let copy = String(decoding: Array(plain.utf8), as: UTF8.self)
            #expect(ChannelKey(shared: plain) == ChannelKey(shared: copy))
            #expect(ChannelKey(shared: plain).hashValue == ChannelKey(shared: copy).hashValue)
            // Twins are different keys, in the shared namespace and in an app's, and as namespaces.
            #expect(ChannelKey(shared: plain) != ChannelKey(shared: twin))
            #expect(ChannelKey(namespace: "1002", name: plain) != ChannelKey(namespace: "1002", name: twin))
            #expect(ChannelKey(namespace: plain, name: "orders") != ChannelKey(namespace: twin, name: "orders"))
            #expect(Set([ChannelKey(shared: plain), ChannelKey(shared: twin), ChannelKey(shared: copy)]).count == 2)
            var byKey: [ChannelKey: String] = [ChannelKey(shared: plain): "plain"]
            byKey[ChannelKey(shared: twin)] = "twin"
            #expect(byKey.count == 2 && byKey[ChannelKey(shared: copy)] == "plain" && byKey[ChannelKey(shared: twin)] == "twin")

            // A session's channel set holds both twins; a lookup or removal by one leaves the other.
            var channels = ChannelNameSet()
            #expect(channels.insert(plain).inserted)
            #expect(!channels.contains(twin))
            #expect(channels.insert(twin).inserted)
            #expect(!channels.insert(copy).inserted)
            #expect(channels.count == 2 && Set(channels.map { Array($0.utf8) }) == [Array(plain.utf8), Array(twin.utf8)])
            #expect(channels.remove(twin).map { Array($0.utf8) } == Array(twin.utf8))
            #expect(channels.remove(twin) == nil)
            #expect(channels.contains(plain) && !channels.contains(twin) && channels.count == 1)

            // The registry: each twin has its own members and presence.
            let registry = ChannelRegistry()
            let a = FakeRecipient(loop: loop), b = FakeRecipient(loop: loop)
            registry.subscribe(a, to: ChannelKey(shared: plain))
            registry.subscribe(b, to: ChannelKey(shared: twin))
            #expect(registry.groups(for: ChannelKey(shared: plain))?.values.flatMap(\.sessions.keys) == [ObjectIdentifier(a)])
            #expect(registry.groups(for: ChannelKey(shared: twin))?.values.flatMap(\.sessions.keys) == [ObjectIdentifier(b)])
            registry.unsubscribe(b, from: ChannelKey(shared: twin))
            #expect(registry.subscriberCount(plain) == 1 && registry.subscriberCount(twin) == 0)
            _ = registry.joinPresence(a, socketID: "a", channel: ChannelKey(shared: "presence-" + plain), member: PresenceMember(userID: .string("1")))
            #expect(registry.presenceMembers("presence-" + plain).map(\.key) == ["1"])
            #expect(registry.presenceMembers("presence-" + twin).isEmpty)
        }
    }
}
