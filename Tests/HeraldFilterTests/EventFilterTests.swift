import HeraldCore
import HeraldFilter
import Logging
import NIOCore
import Testing

@Suite struct EventFilterTests {
    func event(_ channel: String, _ name: String = "App\\Events\\OrderShipped") -> Event {
        Event(channel: channel, name: name, data: ByteBuffer(string: "{}"), source: .redis)
    }

    func passes(_ filter: EventFilter, _ event: Event) async throws -> Bool {
        if case .pass = try await filter.process(event, context: PluginContext(logger: Logger(label: "test"))) { return true }
        return false
    }

    @Test func globMatching() {
        #expect(Glob.matches("orders.1", pattern: "orders.*"))
        #expect(Glob.matches("orders.", pattern: "orders.*"))
        #expect(!Glob.matches("order", pattern: "orders.*"))
        #expect(Glob.matches("App\\Events\\OrderShipped", pattern: "App\\Events\\*"))
        #expect(Glob.matches("abc", pattern: "a?c"))
        #expect(!Glob.matches("abbc", pattern: "a?c"))
        #expect(Glob.matches("anything", pattern: "*"))
        #expect(Glob.matches("xaybzc", pattern: "*a*b*c"))
        #expect(!Glob.matches("xaybz", pattern: "*a*b*c"))
    }

    @Test func denyWinsOverAllow() async throws {
        let filter = EventFilter(allowChannels: ["orders.*"], denyChannels: ["orders.secret"])
        #expect(try await passes(filter, event("orders.1")))
        #expect(try await !passes(filter, event("orders.secret")))
        #expect(try await !passes(filter, event("invoices.1")))
    }

    @Test func eventNamePatterns() async throws {
        let filter = EventFilter(allowEvents: ["App\\Events\\*"], denyEvents: ["*Debug*"])
        #expect(try await passes(filter, event("c", "App\\Events\\OrderShipped")))
        #expect(try await !passes(filter, event("c", "App\\Events\\DebugPing")))
        #expect(try await !passes(filter, event("c", "order.shipped")))
    }

    @Test func emptyListsAllowEverything() async throws {
        #expect(try await passes(EventFilter(), event("anything", "any")))
    }

    @Test func filterDropsInsideAChain() async {
        let chain = PluginChain([EventFilter(denyChannels: ["private-*"])])
        let kept = await chain.run(event("orders"), logger: Logger(label: "test"))
        let dropped = await chain.run(event("private-orders.1"), logger: Logger(label: "test"))
        #expect(kept.map(\.channel) == ["orders"])
        #expect(dropped.isEmpty)
    }
}
