import HeraldCore
import HeraldEnrich
import HeraldFilter
import HeraldRewrite
import Logging
import NIOCore
import Testing

@Suite struct EventEnricherTests {
    let logger = Logger(label: "test")
    static let fixedNow: @Sendable () -> Int64 = { 1_732_395_600_123 }

    func event(_ channel: String = "orders.1", data: String, source: EventSource = .redis) -> Event {
        Event(channel: channel, name: "order.shipped", data: ByteBuffer(string: data), source: source)
    }

    func run(_ enricher: EventEnricher, _ event: Event) async throws -> Event? {
        if case .pass(let out) = try await enricher.process(event, context: PluginContext(logger: logger)) { return out }
        return nil
    }

    func enriched(_ enricher: EventEnricher, _ data: String, source: EventSource = .redis) async throws -> String? {
        try await run(enricher, event(data: data, source: source)).map { String(buffer: $0.data) }
    }

    @Test func addsRelayedAtByDefault() async throws {
        let enricher = EventEnricher(now: Self.fixedNow)
        #expect(try await enriched(enricher, #"{"id":1}"#) == #"{"id":1,"relayed_at_ms":1732395600123}"#)
        #expect(try await enriched(enricher, "{}") == #"{"relayed_at_ms":1732395600123}"#)
        #expect(try await enriched(enricher, " { } ") == #" { "relayed_at_ms":1732395600123} "#)
    }

    @Test func addsSourceAndNodeKeepingEveryOriginalByte() async throws {
        let enricher = EventEnricher(node: "relay-eu-1", sourceField: "source", now: Self.fixedNow)
        let original = #"{ "id" : 1.50 , "name":"\u00e9\/x" }"#
        #expect(try await enriched(enricher, original)
            == #"{ "id" : 1.50 , "name":"\u00e9\/x","relayed_at_ms":1732395600123,"source":"redis","node":"relay-eu-1" }"#)
        #expect(try await enriched(enricher, #"{"a":[1,{"b":2}]}"#, source: .http)
            == #"{"a":[1,{"b":2}],"relayed_at_ms":1732395600123,"source":"http","node":"relay-eu-1"}"#)
    }

    @Test func configurableFieldNames() async throws {
        let enricher = EventEnricher(node: "n\"1", nodeField: "_node", relayedAtField: "_ts", sourceField: "_src", now: Self.fixedNow)
        #expect(try await enriched(enricher, #"{"id":1}"#, source: .inProcess) == #"{"id":1,"_ts":1732395600123,"_src":"inProcess","_node":"n\"1"}"#)

        let nodeOnly = EventEnricher(node: "a", relayedAtField: nil, now: Self.fixedNow)
        #expect(try await enriched(nodeOnly, #"{"id":1}"#) == #"{"id":1,"node":"a"}"#)

        // Two fields sharing a name: the later one wins, written once.
        let clash = EventEnricher(node: "a", nodeField: "meta", sourceField: "meta", now: Self.fixedNow)
        #expect(try await enriched(clash, #"{}"#) == #"{"relayed_at_ms":1732395600123,"meta":"a"}"#)
    }

    @Test func existingMembersAreReplacedInPlace() async throws {
        let enricher = EventEnricher(node: "n", now: Self.fixedNow)
        #expect(try await enriched(enricher, #"{"node":"spoofed" ,"id":1,"relayed_at_ms":"x"}"#)
            == #"{"node":"n" ,"id":1,"relayed_at_ms":1732395600123}"#)
    }

    @Test func nothingToAddPassesTheSameBuffer() async throws {
        let enricher = EventEnricher(relayedAtField: nil, now: Self.fixedNow)
        let input = event(data: #"{ "id": 1 }"#)
        #expect(try await run(enricher, input)?.data == input.data)
    }

    @Test func channelGlobFilter() async throws {
        let enricher = EventEnricher(channels: ["orders.*", "presence-?"], now: Self.fixedNow)
        let data = #"{ "id": 1 }"#
        for channel in ["invoices.1", "orders", "presence-ab"] {
            let input = event(channel, data: data)
            let output = try await run(enricher, input)
            #expect(output?.data == input.data)
            #expect(output?.channel == channel)
        }
        for channel in ["orders.1", "presence-a"] {
            let output = try await run(enricher, event(channel, data: data))
            #expect(output.map { String(buffer: $0.data) } == #"{ "id": 1,"relayed_at_ms":1732395600123 }"#)
        }
    }

    @Test func nonObjectPayloadsPassUnchanged() async throws {
        let enricher = EventEnricher(node: "n", now: Self.fixedNow)
        for text in ["[1,2]", "\"s\"", "7", "null", "{\"a\":", "{} {}"] {
            let input = event(data: text)
            #expect(try await run(enricher, input)?.data == input.data)
        }
    }

    @Test func systemClockIsWallClockMilliseconds() {
        let now = EventEnricher.systemMilliseconds()
        #expect(now > 1_700_000_000_000)  // after Nov 2023
        #expect(now < 4_102_444_800_000)  // before 2100
    }

    @Test func worksInAChainWithFilterAndRewrite() async throws {
        let chain = PluginChain([
            EventFilter(denyChannels: ["internal.*"]),
            try EventRewriter(rules: [.mapChannel(from: "legacy.*", to: "orders.*"), .removeField(path: "secret")]),
            EventEnricher(node: "n1", sourceField: "source", channels: ["orders.*"], now: Self.fixedNow),
        ])
        let out = await chain.run(event("legacy.7", data: #"{"id":7,"secret":"s"}"#), logger: logger)
        #expect(out.map(\.channel) == ["orders.7"])
        #expect(out.map { String(buffer: $0.data) } == [#"{"id":7,"relayed_at_ms":1732395600123,"source":"redis","node":"n1"}"#])

        // Not an enriched channel: the payload bytes are untouched by both plugins.
        let plain = event("news", data: #"{ "id" : 1 }"#)
        let passed = await chain.run(plain, logger: logger)
        #expect(passed.map(\.data) == [plain.data])

        #expect(await chain.run(event("internal.x", data: "{}"), logger: logger).isEmpty)
    }
}
