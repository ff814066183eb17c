@testable import Herald
@testable import HeraldCore
import HeraldTestSupport
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

// Plugin hooks, time budgets and the router's per-channel lanes. Nothing here asserts a
// duration: slow plugins wait on gates the test opens, or sleep far past a short budget, and
// the tests assert what was delivered, decided and reported.

// MARK: Test doubles

/// A gate plugins wait on until the test opens it. Waiting ignores cancellation on purpose: it
/// stands for a plugin stuck in something that does not cooperate.
final class HookGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var waiting: Int { state.withLock { $0.waiters.count } }
}

/// What `onError` was told.
final class ErrorLog: Sendable {
    private let entries = Mutex<[(plugin: String, error: any Error)]>([])
    var onError: @Sendable (String, any Error) -> Void { { plugin, error in self.entries.withLock { $0.append((plugin, error)) } } }
    var plugins: [String] { entries.withLock { $0.map(\.plugin) } }
    var timeouts: [PluginTimeout] { entries.withLock { $0.compactMap { $0.error as? PluginTimeout } } }
    var count: Int { entries.withLock { $0.count } }
}

/// Log records, for checking what a failure is logged with.
final class LogRecords: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])
    func append(_ record: Record) { records.withLock { $0.append(record) } }
    var all: [Record] { records.withLock { $0 } }

    var logger: Logger {
        Logger(label: "herald.tests.records", factory: { _ in RecordingLogHandler(records: self) })
    }
}

struct RecordingLogHandler: LogHandler {
    let records: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        for (key, value) in event.metadata ?? [:] { merged[key] = value }
        records.append(.init(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
    }
}

/// Sleeps far past any budget in these tests (cooperatively: `Task.sleep` ends at cancellation);
/// records whether it saw the cancellation.
struct Sleeper: EventPlugin {
    let name = "sleeper"
    let failurePolicy: PluginFailurePolicy
    let timeBudget: Duration?
    let cancelled: Counter
    /// Only events on this channel sleep; others pass at once.
    var channel: String? = nil

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard channel == nil || channel == event.channel else { return .pass(event) }
        do {
            try await Task.sleep(for: .seconds(600))
        } catch {
            if Task.isCancelled { cancelled.increment() }
            throw error
        }
        return .pass(event)
    }
}

/// Waits on a gate (ignoring cancellation) for events on `channel`, then renames them.
struct Stuck: EventPlugin {
    let name = "stuck"
    let gate: HookGate
    let channel: String
    var failurePolicy: PluginFailurePolicy = .drop
    var timeBudget: Duration? = nil

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard event.channel == channel else { return .pass(event) }
        await gate.wait()
        var late = event
        late.name += "|late"
        return .pass(late)
    }
}

struct Renamer: EventPlugin {
    let name: String
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        var next = event
        next.name += "|\(name)"
        return .pass(next)
    }
}

struct Thrower: EventPlugin {
    struct Failure: Error {}
    let name = "thrower"
    let failurePolicy: PluginFailurePolicy
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision { throw Failure() }
}

struct Copier: EventPlugin {
    let name = "copier"
    let to: [String]
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        .replace(to.map { channel in
            var copy = event
            copy.channel = channel
            return copy
        })
    }
}

struct DropChannel: EventPlugin {
    let name = "drop-channel"
    let channel: String
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        event.channel == channel ? .drop(reason: "test") : .pass(event)
    }
}

/// A subscription authorizer answering from a table; records what it was asked.
struct TableAuthorizer: SubscriptionAuthorizingPlugin {
    let name: String
    let answers: [String: SubscriptionDecision]
    let asked: Counter

    func authorize(_ request: SubscriptionRequest, context: PluginContext) async throws -> SubscriptionDecision {
        asked.increment()
        return answers[request.channel] ?? .deferToApp
    }
}

struct ThrowingAuthorizer: SubscriptionAuthorizingPlugin {
    let name = "throwing-authorizer"
    let failurePolicy: PluginFailurePolicy
    func authorize(_ request: SubscriptionRequest, context: PluginContext) async throws -> SubscriptionDecision {
        throw Thrower.Failure()
    }
}

struct SlowAuthorizer: SubscriptionAuthorizingPlugin {
    let name = "slow-authorizer"
    let failurePolicy: PluginFailurePolicy
    let timeBudget: Duration? = .milliseconds(30)
    let gate: HookGate
    func authorize(_ request: SubscriptionRequest, context: PluginContext) async throws -> SubscriptionDecision {
        await gate.wait()
        return .allow()
    }
}

/// Records connection notices in order.
final class Notices: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ notice: String) { list.withLock { $0.append(notice) } }
    var all: [String] { list.withLock { $0 } }
}

struct Observer: ConnectionObservingPlugin {
    let name: String
    let notices: Notices
    var failing = false
    var gate: HookGate? = nil
    var timeBudget: Duration? = nil

    func connectionOpened(_ connection: ConnectionInfo, context: PluginContext) async throws {
        if let gate { await gate.wait() }
        notices.append("\(name) opened \(connection.socketID)")
        if failing { throw Thrower.Failure() }
    }

    func connectionClosed(_ connection: ConnectionInfo, context: PluginContext) async throws {
        notices.append("\(name) closed \(connection.socketID) user=\(connection.userID ?? "-")")
    }
}

/// Records what the router delivers to it, as `name@channel`.
final class RecordingRecipient: Recipient, Sendable {
    let eventLoop: any EventLoop
    private let received = Mutex<[String]>([])

    init(loop: any EventLoop) { self.eventLoop = loop }

    func deliver(_ broadcast: EncodedBroadcast) -> Bool {
        // 42["name","channel",data]
        let packet = String(buffer: broadcast.packet)
        let entry: String
        if case .array(let items)? = try? JSONReader.parse(String(packet.dropFirst(2))),
           items.count >= 2, case .string(let name) = items[0], case .string(let channel) = items[1] {
            entry = "\(name)@\(channel)"
        } else {
            entry = packet
        }
        received.withLock { $0.append(entry) }
        return false
    }

    func flushDeliveries() {}

    var deliveries: [String] { received.withLock { $0 } }
    func deliveries(on channel: String) -> [String] { deliveries.filter { $0.hasSuffix("@\(channel)") } }
}

func hookEvent(_ channel: String, _ name: String = "e") -> Event {
    Event(channel: channel, name: name, data: ByteBuffer(string: #"{"id":1}"#), source: .redis)
}

/// Runs a router with `chain` and one recipient subscribed to `channels`.
func withRouter(
    _ chain: PluginChain, subscribedTo channels: [String],
    _ body: (Router, RecordingRecipient) async throws -> Void
) async rethrows {
    let registry = ChannelRegistry()
    let router = Router(registry: registry, plugins: chain, emitToAll: false, pluginConcurrency: 8, logger: quietLogger)
    let running = Task { await router.run() }
    let recipient = RecordingRecipient(loop: MultiThreadedEventLoopGroup.singleton.next())
    for channel in channels { registry.subscribe(recipient, to: ChannelKey(shared: channel)) }
    try await body(router, recipient)
    router.finish()
    await running.value
}

// MARK: Tests

@Suite("Plugin hooks and time budgets", .timeLimit(.minutes(1)))
struct PluginHookTests {
    // MARK: Events through the router's lanes

    @Test("through the router: order, rewrite, drop and fan-out reach subscribers once per event")
    func routerAppliesDecisions() async {
        let chain = PluginChain([Renamer(name: "a"), DropChannel(channel: "hidden"), Copier(to: ["x", "hidden", "y"]), Renamer(name: "b")])
        await withRouter(chain, subscribedTo: ["orders", "x", "y", "hidden"]) { router, recipient in
            router.publish(hookEvent("orders"))
            router.publish(hookEvent("hidden", "secret"))
            router.publish(hookEvent("orders", "second"))
            #expect(await eventually { recipient.deliveries.count == 6 })
            // Each event published to "orders" is renamed, fanned out to x, hidden and y, and
            // renamed again; the copy to "hidden" is made after the filter, so it goes out,
            // while the event published to "hidden" is dropped before the fan-out.
            #expect(recipient.deliveries(on: "x") == ["e|a|b@x", "second|a|b@x"])
            #expect(recipient.deliveries(on: "y") == ["e|a|b@y", "second|a|b@y"])
            #expect(recipient.deliveries(on: "hidden") == ["e|a|b@hidden", "second|a|b@hidden"])
            #expect(recipient.deliveries(on: "orders").isEmpty)
            #expect(!recipient.deliveries.contains { $0.hasPrefix("secret") })
        }
    }

    @Test("a plugin stuck on channel A does not hold up channel B, and A keeps its order")
    func slowChannelDoesNotHoldUpOthers() async {
        let gate = HookGate()
        let chain = PluginChain([Stuck(gate: gate, channel: "A", timeBudget: .seconds(600)), Renamer(name: "ok")])
        await withRouter(chain, subscribedTo: ["A", "B"]) { router, recipient in
            router.publish(hookEvent("A", "a1"))
            #expect(await eventually { gate.waiting == 1 })
            router.publish(hookEvent("A", "a2"))
            router.publish(hookEvent("B", "b1"))
            router.publish(hookEvent("B", "b2"))
            // B is delivered while a1 is still in the plugin; a2 waits behind a1.
            #expect(await eventually { recipient.deliveries(on: "B").count == 2 })
            #expect(recipient.deliveries(on: "B") == ["b1|ok@B", "b2|ok@B"])
            #expect(gate.waiting == 1)
            #expect(recipient.deliveries(on: "A").isEmpty)

            gate.open()
            #expect(await eventually { recipient.deliveries(on: "A").count == 2 })
            #expect(recipient.deliveries(on: "A") == ["a1|late|ok@A", "a2|late|ok@A"])
        }
    }

    @Test("a call past its budget is abandoned: the policy applies, later events flow, the late result is ignored", arguments: [PluginFailurePolicy.drop, .pass])
    func routerAbandonsAStuckCall(policy: PluginFailurePolicy) async {
        let gate = HookGate()
        let errors = ErrorLog()
        let chain = PluginChain([Stuck(gate: gate, channel: "A", failurePolicy: policy, timeBudget: .milliseconds(40)), Renamer(name: "ok")], onError: errors.onError)
        await withRouter(chain, subscribedTo: ["A"]) { router, recipient in
            router.publish(hookEvent("A", "a1"))
            router.publish(hookEvent("A", "a2"))
            // a1 times out (its call never returns while the gate is shut); a2 goes the same
            // way; then the gate opens and a3 goes through normally.
            #expect(await eventually { errors.count == 2 })
            #expect(errors.timeouts == [
                PluginTimeout(plugin: "stuck", hook: .process, budget: .milliseconds(40)),
                PluginTimeout(plugin: "stuck", hook: .process, budget: .milliseconds(40)),
            ])
            if policy == .pass {
                #expect(await eventually { recipient.deliveries.count == 2 })
                #expect(recipient.deliveries == ["a1|ok@A", "a2|ok@A"])
            }
            gate.open()
            router.publish(hookEvent("A", "a3"))
            let expected = policy == .pass ? ["a1|ok@A", "a2|ok@A", "a3|late|ok@A"] : ["a3|late|ok@A"]
            #expect(await eventually { recipient.deliveries.count == expected.count })
            // The abandoned calls returned `a1|late`/`a2|late` once the gate opened: ignored.
            router.publish(hookEvent("A", "marker"))
            #expect(await eventually { recipient.deliveries.last == "marker|late|ok@A" })
            #expect(recipient.deliveries == expected + ["marker|late|ok@A"])
        }
    }

    @Test("only plugins that process events make the router run a chain")
    func hookOnlyChainsSkipTheEventPath() async {
        let asked = Counter()
        let chain = PluginChain([TableAuthorizer(name: "auth", answers: [:], asked: asked)])
        #expect(!chain.isEmpty)
        #expect(!chain.processesEvents)
        #expect(chain.authorizesSubscriptions)
        #expect(!chain.observesConnections)
        #expect(chain.watchdog.watchedCount == 0)
        await withRouter(chain, subscribedTo: ["orders"]) { router, recipient in
            router.publish(hookEvent("orders"))
            #expect(await eventually { recipient.deliveries == ["e@orders"] })
        }
        #expect(asked.count == 0)
    }

    // MARK: Time budgets on the chain

    @Test("a plugin sleeping past its budget is cancelled; .drop loses the event, .pass passes it unchanged", arguments: [PluginFailurePolicy.drop, .pass])
    func sleeperTimesOut(policy: PluginFailurePolicy) async {
        let cancelled = Counter()
        let after = Counter()
        let errors = ErrorLog()
        let chain = PluginChain([
            Renamer(name: "before"),
            Sleeper(failurePolicy: policy, timeBudget: .milliseconds(20), cancelled: cancelled),
            Tag("after", counter: after),
        ], onError: errors.onError)
        let out = await chain.run(hookEvent("orders"), logger: quietLogger)
        if policy == .drop {
            #expect(out.isEmpty)
            #expect(after.count == 0)
        } else {
            // As it entered the plugin that ran out of time.
            #expect(out.map(\.name) == ["e|before|after"])
            #expect(after.count == 1)
        }
        #expect(errors.plugins == ["sleeper"])
        #expect(errors.timeouts == [PluginTimeout(plugin: "sleeper", hook: .process, budget: .milliseconds(20))])
        // The abandoned call's task was cancelled (Task.sleep saw it).
        #expect(await eventually { cancelled.count == 1 })
        #expect(await eventually { chain.watchdog.watchedCount == 0 })
    }

    @Test("the chain's budget applies to plugins without one; a plugin's own budget wins")
    func budgetOverrides() async {
        let errors = ErrorLog()
        // The chain's budget is short; the plugin sets none.
        let short = PluginChain([Sleeper(failurePolicy: .pass, timeBudget: nil, cancelled: Counter())], timeBudget: .milliseconds(15), onError: errors.onError)
        #expect(await short.run(hookEvent("c"), logger: quietLogger).map(\.name) == ["e"])
        #expect(errors.timeouts.last?.budget == .milliseconds(15))
        // The chain's budget is long (a test time limit guards against it); the plugin's is short.
        let own = PluginChain([Sleeper(failurePolicy: .pass, timeBudget: .milliseconds(25), cancelled: Counter())], timeBudget: .seconds(600), onError: errors.onError)
        #expect(await own.run(hookEvent("c"), logger: quietLogger).map(\.name) == ["e"])
        #expect(errors.timeouts.last?.budget == .milliseconds(25))
        #expect(PluginChain().timeBudget == PluginChain.defaultTimeBudget)
        #expect(PluginChain.defaultTimeBudget == .milliseconds(250))
        #expect(Renamer(name: "x").timeBudget == nil)
    }

    @Test("a timeout in one fan-out branch leaves the other branches and their order intact", arguments: [PluginFailurePolicy.drop, .pass])
    func timeoutInsideReplace(policy: PluginFailurePolicy) async {
        let gate = HookGate()
        let chain = PluginChain([
            Copier(to: ["a", "b", "c"]),
            Stuck(gate: gate, channel: "b", failurePolicy: policy, timeBudget: .milliseconds(20)),
            Renamer(name: "end"),
        ])
        let out = await chain.run(hookEvent("orders"), logger: quietLogger)
        gate.open()
        let expected = policy == .drop ? ["a", "c"] : ["a", "b", "c"]
        #expect(out.map(\.channel) == expected)
        #expect(out.allSatisfy { $0.name == "e|end" })
    }

    @Test("a plugin that throws: .drop holds the event back, .pass passes it on; both are reported")
    func throwingPolicies() async {
        let errors = ErrorLog()
        let drop = PluginChain([Thrower(failurePolicy: .drop), Renamer(name: "after")], onError: errors.onError)
        #expect(await drop.run(hookEvent("orders"), logger: quietLogger).isEmpty)
        let pass = PluginChain([Thrower(failurePolicy: .pass), Renamer(name: "after")], onError: errors.onError)
        #expect(await pass.run(hookEvent("orders"), logger: quietLogger).map(\.name) == ["e|after"])
        #expect(errors.plugins == ["thrower", "thrower"])
        #expect(errors.timeouts.isEmpty)
    }

    @Test("a timeout is logged with the plugin, the channel and the event")
    func timeoutIsLogged() async {
        let records = LogRecords()
        let chain = PluginChain([Sleeper(failurePolicy: .drop, timeBudget: .milliseconds(10), cancelled: Counter())])
        _ = await chain.run(hookEvent("orders.7", "App\\Events\\OrderShipped"), logger: records.logger)
        let logged = records.all.filter { $0.level == .error }
        #expect(logged.count == 1)
        #expect(logged.first?.message == "plugin ran past its time budget; call abandoned")
        #expect(logged.first?.metadata["herald.plugin"] == "sleeper")
        #expect(logged.first?.metadata["herald.channel"] == "orders.7")
        #expect(logged.first?.metadata["herald.event"] == "App\\Events\\OrderShipped")
        #expect(logged.first?.metadata["herald.policy"] == "drop")
        #expect(logged.first?.metadata["herald.budget_ms"] == "10")
    }

    // MARK: Subscription authorization

    func request(_ channel: String) -> SubscriptionRequest {
        SubscriptionRequest(channel: channel, connection: ConnectionInfo(clientProtocol: .socketIO, socketID: "s1"), headers: [("Authorization", "Bearer x")])
    }

    @Test("authorizers are asked in order; the first decision other than defer wins")
    func authorizationOrder() async {
        let firstAsked = Counter(), secondAsked = Counter()
        let chain = PluginChain([
            Renamer(name: "not-an-authorizer"),
            TableAuthorizer(name: "first", answers: ["internal": .deny(status: 403)], asked: firstAsked),
            TableAuthorizer(name: "second", answers: ["internal": .allow(), "lobby": .allow(channelData: .object([JSONMember(key: "user_id", value: .string("guest"))]))], asked: secondAsked),
        ])
        #expect(await chain.authorize(request("internal"), logger: quietLogger) == .deny(status: 403))
        #expect(secondAsked.count == 0)
        #expect(await chain.authorize(request("lobby"), logger: quietLogger) == .allow(channelData: .object([JSONMember(key: "user_id", value: .string("guest"))])))
        #expect(await chain.authorize(request("orders"), logger: quietLogger) == .deferToApp)
        #expect(firstAsked.count == 3)
        #expect(secondAsked.count == 2)
        #expect(await PluginChain().authorize(request("orders"), logger: quietLogger) == .deferToApp)
        #expect(request("presence-x").channelKind == .presence)
        #expect(request("x").header("authorization") == "Bearer x")
    }

    @Test("a throwing authorizer denies with 500 under .drop and defers under .pass")
    func authorizationFailures() async {
        let errors = ErrorLog()
        let next = TableAuthorizer(name: "next", answers: ["c": .allow()], asked: Counter())
        let drop = PluginChain([ThrowingAuthorizer(failurePolicy: .drop), next], onError: errors.onError)
        #expect(await drop.authorize(request("c"), logger: quietLogger) == .deny(status: 500))
        let pass = PluginChain([ThrowingAuthorizer(failurePolicy: .pass), next], onError: errors.onError)
        #expect(await pass.authorize(request("c"), logger: quietLogger) == .allow())
        #expect(errors.plugins == ["throwing-authorizer", "throwing-authorizer"])
    }

    @Test("an authorizer past its budget denies under .drop and defers under .pass", arguments: [PluginFailurePolicy.drop, .pass])
    func authorizationTimeout(policy: PluginFailurePolicy) async {
        let gate = HookGate()
        let errors = ErrorLog()
        let chain = PluginChain([SlowAuthorizer(failurePolicy: policy, gate: gate)], onError: errors.onError)
        let decision = await chain.authorize(request("c"), logger: quietLogger)
        gate.open()
        #expect(decision == (policy == .drop ? .deny(status: 500) : .deferToApp))
        #expect(errors.timeouts == [PluginTimeout(plugin: "slow-authorizer", hook: .authorize, budget: .milliseconds(30))])
        #expect(await eventually { chain.watchdog.watchedCount == 0 })
    }

    // MARK: Connection observers

    @Test("observers hear of a connection's open before its close, in chain order; failures are isolated")
    func connectionObservers() async {
        let notices = Notices()
        let errors = ErrorLog()
        let gate = HookGate()
        let chain = PluginChain([
            Observer(name: "slow", notices: notices, gate: gate),
            Observer(name: "failing", notices: notices, failing: true),
            Observer(name: "last", notices: notices),
        ], timeBudget: .seconds(600), onError: errors.onError)
        #expect(chain.observesConnections)
        let connection = ConnectionInfo(clientProtocol: .pusher, socketID: "1.2", remoteAddress: "[IPv4]127.0.0.1/127.0.0.1:1", userID: "7")
        // Neither call waits for the observers.
        let opened = chain.connectionOpened(connection, logger: quietLogger)
        chain.connectionClosed(connection, after: opened, logger: quietLogger)
        #expect(await eventually { gate.waiting == 1 })
        #expect(notices.all.isEmpty)
        gate.open()
        #expect(await eventually { notices.all.count == 6 })
        #expect(notices.all == [
            "slow opened 1.2", "failing opened 1.2", "last opened 1.2",
            "slow closed 1.2 user=7", "failing closed 1.2 user=7", "last closed 1.2 user=7",
        ])
        #expect(errors.plugins == ["failing"])
        #expect(PluginChain([Renamer(name: "x")]).connectionOpened(connection, logger: quietLogger) == nil)
    }

    @Test("an observer past its budget is abandoned and the next one still runs")
    func observerTimeout() async {
        let notices = Notices()
        let errors = ErrorLog()
        let gate = HookGate()
        let chain = PluginChain([
            Observer(name: "stuck", notices: notices, gate: gate, timeBudget: .milliseconds(20)),
            Observer(name: "next", notices: notices),
        ], onError: errors.onError)
        let connection = ConnectionInfo(clientProtocol: .socketIO, socketID: "abc")
        chain.connectionOpened(connection, logger: quietLogger)
        #expect(await eventually { notices.all == ["next opened abc"] })
        #expect(errors.timeouts == [PluginTimeout(plugin: "stuck", hook: .connectionOpened, budget: .milliseconds(20))])
        gate.open()
    }
}
