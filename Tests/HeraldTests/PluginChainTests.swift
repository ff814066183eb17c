import Herald
import HeraldCore
import Logging
import NIOCore
import Synchronization
import Testing

let quietLogger = Logger(label: "herald.tests", factory: { _ in SwiftLogNoOpLogHandler() })


/// Counts calls through a shared box (Atomic is not copyable into plugin values).
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

struct Tag: EventPlugin {
    let tag: String
    let counter: Counter
    var name: String { tag }
    init(_ tag: String, counter: Counter = Counter()) {
        self.tag = tag
        self.counter = counter
    }
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        counter.increment()
        var next = event
        next.name += "|\(tag)"
        return .pass(next)
    }
}

struct DropPrivate: EventPlugin {
    var name: String { "drop-private" }
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        event.channelKind == .public ? .pass(event) : .drop(reason: "not public")
    }
}

struct FanOut: EventPlugin {
    let channels: [String]
    var name: String { "fan-out" }
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        .replace(channels.map { channel in
            var copy = event
            copy.channel = channel
            return copy
        })
    }
}

struct Failing: EventPlugin {
    struct Boom: Error {}
    let failurePolicy: PluginFailurePolicy
    var name: String { "failing" }
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision { throw Boom() }
}

struct DefaultPolicy: EventPlugin {
    var name: String { "default" }
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision { .pass(event) }
}

func event(_ channel: String = "orders", _ name: String = "e") -> Event {
    Event(channel: channel, name: name, data: ByteBuffer(string: #"{"id":1}"#), excludedSocketID: "s.1", source: .redis)
}

@Suite("PluginChain")
struct PluginChainTests {
    @Test("an empty chain passes the event through")
    func empty() async {
        let chain = PluginChain()
        #expect(chain.isEmpty)
        let out = await chain.run(event(), logger: quietLogger)
        #expect(out.count == 1)
        #expect(out[0].name == "e")
        #expect(String(buffer: out[0].data) == #"{"id":1}"#)
        #expect(out[0].excludedSocketID == "s.1")
    }

    @Test("plugins run in declared order, each seeing the previous rewrite")
    func order() async {
        let chain = PluginChain([Tag("a"), Tag("b"), Tag("c")])
        #expect(chain.isEmpty == false)
        let out = await chain.run(event(), logger: quietLogger)
        #expect(out.map(\.name) == ["e|a|b|c"])
        #expect(out.map(\.channel) == ["orders"])
    }

    @Test("drop stops the chain; later plugins are not called")
    func drop() async {
        let after = Counter()
        let chain = PluginChain([DropPrivate(), Tag("after", counter: after)])
        #expect(await chain.run(event("private-orders.1"), logger: quietLogger).isEmpty)
        #expect(after.count == 0)
        #expect(await chain.run(event("orders"), logger: quietLogger).map(\.name) == ["e|after"])
        #expect(after.count == 1)
    }

    @Test("replace fans out; each replacement runs through the rest of the chain only")
    func replace() async {
        let before = Counter()
        let after = Counter()
        let chain = PluginChain([Tag("before", counter: before), FanOut(channels: ["x", "private-y", "z"]), DropPrivate(), Tag("after", counter: after)])
        let out = await chain.run(event(), logger: quietLogger)
        #expect(out.map(\.channel) == ["x", "z"])
        #expect(out.map(\.name) == ["e|before|after", "e|before|after"])
        #expect(before.count == 1)
        #expect(after.count == 2)
        #expect(await PluginChain([FanOut(channels: [])]).run(event(), logger: quietLogger).isEmpty)
    }

    @Test("a throwing plugin with .drop loses the event")
    func throwingDrop() async {
        let after = Counter()
        let chain = PluginChain([Failing(failurePolicy: .drop), Tag("after", counter: after)])
        #expect(await chain.run(event(), logger: quietLogger).isEmpty)
        #expect(after.count == 0)
    }

    @Test("a throwing plugin with .pass lets the unchanged event continue")
    func throwingPass() async {
        let chain = PluginChain([Tag("a"), Failing(failurePolicy: .pass), Tag("b")])
        let out = await chain.run(event(), logger: quietLogger)
        #expect(out.map(\.name) == ["e|a|b"])
    }

    @Test("the default failure policy is .drop")
    func defaultPolicy() {
        #expect(DefaultPolicy().failurePolicy == .drop)
    }
}

@Suite("Channel kinds and configuration")
struct ChannelKindTests {
    @Test("kinds are decided by an anchored prefix", arguments: [
        ("orders", ChannelKind.public), ("private-a", .private), ("private-encrypted-a", .privateEncrypted),
        ("presence-chat.1", .presence), ("xprivate-a", .public), ("xpresence-a", .public), ("private", .public),
        ("presence", .public), ("Private-a", .public), ("orders.private-a", .public), ("private-encrypted", .private),
    ])
    func kinds(_ pair: (String, ChannelKind)) {
        #expect(ChannelKind(pair.0) == pair.1)
        #expect(pair.1.requiresAuthorization == (pair.1 != .public))
        #expect(event(pair.0).channelKind == pair.1)
    }

    @Test("redisPattern escapes glob metacharacters in the prefix")
    func redisPattern() {
        #expect(HeraldConfiguration(keyPrefix: "a*b").redisPattern == #"a\*b*"#)
        #expect(HeraldConfiguration(keyPrefix: "").redisPattern == "*")
        #expect(HeraldConfiguration(keyPrefix: "laravel_database_").redisPattern == "laravel_database_*")
        #expect(HeraldConfiguration(keyPrefix: #"x?[y]\"#).redisPattern == #"x\?\[y\]\\*"#)
    }

    @Test("Event(json:) serializes the value")
    func eventFromJSON() {
        let e = Event(channel: "c", name: "n", json: .object([JSONMember(key: "a", value: .array([.number("1"), .string("é\"")]))]), source: .inProcess)
        #expect(String(buffer: e.data) == #"{"a":[1,"é\""]}"#)
        #expect(e.excludedSocketID == nil)
        #expect(e.source == .inProcess)
    }
}
