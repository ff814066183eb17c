@testable import Herald
import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import Testing

@Suite("Missed-message recovery: the bounded per-channel history")
struct ChannelHistoryTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func event(_ channel: String, _ name: String, _ json: String = "{}", socket: String? = nil, namespace: String? = nil) -> Event {
        Event(channel: channel, name: name, data: ByteBuffer(string: json), excludedSocketID: socket, source: .redis, namespace: namespace)
    }

    private func resume(_ history: ChannelHistory, _ offset: UInt64, previous: String? = nil) -> RecoveryRequest {
        RecoveryRequest(position: .resume(epoch: history.epoch, offset: offset), previousSocketID: previous)
    }

    private func names(_ recovery: ChannelHistory.Recovery) -> [String] { recovery.events.map(\.name) }

    @Test("offsets increase per channel; a resume gets exactly the later events, in order")
    func resumeFromPosition() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration())
        let a1 = history.record(event("a", "a1"), dataForm: .string, now: start)
        let b1 = history.record(event("b", "b1"), dataForm: .string, now: start)
        let a2 = history.record(event("a", "a2"), dataForm: .string, now: start)
        let a3 = history.record(event("a", "a3"), dataForm: .string, now: start)
        #expect(a1 < b1 && b1 < a2 && a2 < a3)

        let fromA1 = history.recover("a", request: resume(history, a1), socketID: "s", now: start)
        #expect(fromA1.recovered && fromA1.epoch == history.epoch)
        #expect(names(fromA1) == ["a2", "a3"])
        #expect(fromA1.events.map(\.offset) == [a2, a3])
        #expect(fromA1.offset == a3, "the new position covers every offset handed out so far")
        #expect(String(buffer: fromA1.events[0].data) == "{}")

        let upToDate = history.recover("a", request: resume(history, a3), socketID: "s", now: start)
        #expect(upToDate.recovered && upToDate.events.isEmpty)
        // The position of another channel's event is a valid position on this one too.
        #expect(names(history.recover("a", request: resume(history, b1), socketID: "s", now: start)) == ["a2", "a3"])
        // A channel never published to: nothing missed.
        let quiet = history.recover("never", request: resume(history, a1), socketID: "s", now: start)
        #expect(quiet.recovered && quiet.events.isEmpty && quiet.offset == a3)
    }

    @Test("a first subscription, another epoch, or a position from the future recover nothing")
    func notRecovered() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration(), epoch: "0123456789abcdef")
        #expect(history.epoch == "0123456789abcdef")
        let first = history.record(event("a", "a1"), dataForm: .string, now: start)
        let fresh = history.recover("a", request: RecoveryRequest(position: .none), socketID: "s", now: start)
        #expect(!fresh.recovered && fresh.events.isEmpty && fresh.offset == first)
        let otherEpoch = history.recover("a", request: RecoveryRequest(position: .resume(epoch: "ffffffffffffffff", offset: 0)), socketID: "s", now: start)
        #expect(!otherEpoch.recovered && otherEpoch.events.isEmpty)
        let future = history.recover("a", request: resume(history, first + 1), socketID: "s", now: start)
        #expect(!future.recovered && future.events.isEmpty)
        // Each process gets a random epoch.
        let epochs = Set((0..<8).map { _ in ChannelHistory.randomEpoch() })
        #expect(epochs.count == 8 && epochs.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
    }

    @Test("past max events per channel the oldest are dropped: recovery from before them fails")
    func perChannelLimit() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration(maxEventsPerChannel: 3))
        let offsets = (1...5).map { history.record(event("a", "e\($0)"), dataForm: .string, now: start) }
        #expect(history.statistics.events == 3)
        #expect(!history.recover("a", request: resume(history, offsets[0]), socketID: nil, now: start).recovered, "e2 is gone")
        let fromE2 = history.recover("a", request: resume(history, offsets[1]), socketID: nil, now: start)
        #expect(fromE2.recovered && names(fromE2) == ["e3", "e4", "e5"])
        // Many more events on one channel: the history stays bounded.
        for n in 0..<5_000 { _ = history.record(event("a", "x\(n)"), dataForm: .string, now: start) }
        #expect(history.statistics.events == 3 && history.statistics.channels == 1)
    }

    @Test("events older than max age are not replayed; a quiet channel still recovers")
    func maxAge() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration(maxAge: .seconds(120)))
        let old = history.record(event("busy", "old"), dataForm: .string, now: start)
        let quietLast = history.record(event("quiet", "last"), dataForm: .string, now: start)
        let later = start + .seconds(100)
        let new = history.record(event("busy", "new"), dataForm: .string, now: later)
        let now = start + .seconds(121)
        // `old` expired: a client that saw only what came before it missed it for good.
        #expect(!history.recover("busy", request: resume(history, old - 1), socketID: nil, now: now).recovered)
        // A client that saw `old` gets `new`.
        let fromOld = history.recover("busy", request: resume(history, old), socketID: nil, now: now)
        #expect(fromOld.recovered && fromOld.events.map(\.offset) == [new])
        // The quiet channel's only event expired, but its client saw it: nothing was missed.
        let quiet = history.recover("quiet", request: resume(history, quietLast), socketID: nil, now: now)
        #expect(quiet.recovered && quiet.events.isEmpty)
        #expect(history.statistics.events == 1)
    }

    @Test("toOthers(): events excluded for this socket or its previous one are not replayed")
    func exclusion() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration())
        let before = history.record(event("a", "before"), dataForm: .string, now: start)
        _ = history.record(event("a", "from-old-socket", socket: "old.1"), dataForm: .string, now: start)
        _ = history.record(event("a", "from-this-socket", socket: "new.2"), dataForm: .string, now: start)
        _ = history.record(event("a", "from-someone-else", socket: "other.3"), dataForm: .string, now: start)
        let recovery = history.recover("a", request: resume(history, before, previous: "old.1"), socketID: "new.2", now: start)
        #expect(recovery.recovered)
        #expect(names(recovery) == ["from-someone-else"])
        let withoutPrevious = history.recover("a", request: resume(history, before), socketID: "new.2", now: start)
        #expect(names(withoutPrevious) == ["from-old-socket", "from-someone-else"])
    }

    @Test("each app namespace has its own history")
    func namespaces() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration())
        let base = history.record(event("orders", "shared"), dataForm: .string, now: start)
        _ = history.record(event("orders", "app-b", namespace: "b"), dataForm: .string, now: start)
        #expect(names(history.recover("orders", request: resume(history, base - 1), socketID: nil, now: start)) == ["shared"])
        #expect(names(history.recover(ChannelKey(namespace: "b", name: "orders"), request: resume(history, base - 1), socketID: nil, now: start)) == ["app-b"])
    }

    @Test("the memory bound holds; the oldest entries go, then forgotten channels recover only from above their floor")
    func memoryBound() {
        let maxBytes = 64 << 10
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration(maxBytes: maxBytes))
        let payload = "{\"p\":\"" + String(repeating: "x", count: 1_000) + "\"}"
        var firsts: [UInt64] = []
        for channel in 0..<200 {
            firsts.append(history.record(event("c\(channel)", "e", payload), dataForm: .string, now: start))
            #expect(history.statistics.bytes <= maxBytes)
        }
        let stats = history.statistics
        #expect(stats.events > 10 && stats.events < 200, "\(stats)")
        // The newest channel's event is kept: a client from before it gets it.
        let newest = history.recover("c199", request: resume(history, firsts[199] - 1), socketID: nil, now: start)
        #expect(newest.recovered && newest.events.count == 1)
        // The oldest channel's event was evicted: a client from before it cannot recover...
        #expect(!history.recover("c0", request: resume(history, firsts[0] - 1), socketID: nil, now: start).recovered)
        // ...but one that had seen it missed nothing, unless its channel was forgotten entirely
        // (then only positions at or above the channel's bucket floor are safe).
        let sawIt = history.recover("c0", request: resume(history, firsts[199]), socketID: nil, now: start)
        #expect(sawIt.recovered)
    }

    @Test("forgotten channels raise their bucket's floor: never a wrong recovered:true")
    func forgottenChannels() {
        let history = ChannelHistory(configuration: ChannelHistoryConfiguration(maxBytes: 64 << 10))
        // Many quiet channels, one event each, all expired: tombstones that fill the memory bound.
        var last: [String: UInt64] = [:]
        for n in 0..<2_000 { last["t\(n)"] = history.record(event("t\(n)", "e"), dataForm: .string, now: start) }
        let now = start + .seconds(200)
        _ = history.record(event("trigger", "e"), dataForm: .string, now: now)
        #expect(history.statistics.bytes <= 64 << 10)
        #expect(history.statistics.channels < 2_000, "some tombstones were forgotten")
        // Whatever was forgotten, a client behind a channel's last event is never told it recovered.
        for n in 0..<2_000 {
            let channel = "t\(n)"
            guard let offset = last[channel] else { continue }
            #expect(!history.recover(ChannelKey(shared: channel), request: resume(history, offset - 1), socketID: nil, now: now).recovered)
        }
        // And one that saw the channel's last event is told so as long as its channel is remembered.
        let remembered = (0..<2_000).filter { n in
            history.recover(ChannelKey(shared: "t\(n)"), request: resume(history, last["t\(n)"] ?? 0), socketID: nil, now: now).recovered
        }
        #expect(!remembered.isEmpty)
    }

    @Test("herald_recovery requests: true, a position, or nothing")
    func requests() throws {
        func parse(_ json: String) throws -> RecoveryRequest? {
            RecoveryRequest(try JSONReader.parse(json)[RecoveryRequest.field])
        }
        #expect(try parse(#"{"channel":"a"}"#) == nil)
        #expect(try parse(#"{"herald_recovery":false}"#) == nil)
        #expect(try parse(#"{"herald_recovery":null}"#) == nil)
        #expect(try parse(#"{"herald_recovery":"yes"}"#) == nil)
        #expect(try parse(#"{"herald_recovery":true}"#) == RecoveryRequest(position: .none))
        #expect(try parse(#"{"herald_recovery":{"epoch":"e1","offset":41}}"#) == RecoveryRequest(position: .resume(epoch: "e1", offset: 41)))
        #expect(try parse(#"{"herald_recovery":{"epoch":"e1","offset":41,"socket_id":"12.34"}}"#)
            == RecoveryRequest(position: .resume(epoch: "e1", offset: 41), previousSocketID: "12.34"))
        // Unusable positions still opt in, without a position (the answer is recovered:false).
        #expect(try parse(#"{"herald_recovery":{"epoch":"e1","offset":-1}}"#) == RecoveryRequest(position: .none))
        #expect(try parse(#"{"herald_recovery":{"epoch":"e1","offset":1.5}}"#) == RecoveryRequest(position: .none))
        #expect(try parse(#"{"herald_recovery":{"offset":3}}"#) == RecoveryRequest(position: .none))
        #expect(try parse(#"{"herald_recovery":{}}"#) == RecoveryRequest(position: .none))
    }

    @Test("wire forms: the offset rides as a fourth Socket.IO argument and a top-level Pusher key")
    func wire() {
        let data = ByteBuffer(string: #"{"token":"abc"}"#)
        #expect(String(buffer: RecoveryWire.socketIOEvent(name: "App\\Events\\Paid", channel: "orders", data: data, offset: 42))
            == #"42["App\\Events\\Paid","orders",{"token":"abc"},{"herald_offset":42}]"#)
        #expect(String(buffer: RecoveryWire.pusherEvent(name: "paid", channel: "orders", data: data, userID: nil, dataForm: .string, offset: 42))
            == #"{"event":"paid","channel":"orders","data":"{\"token\":\"abc\"}","herald_offset":42}"#)
        #expect(String(buffer: RecoveryWire.pusherEvent(name: "client-typing", channel: "presence-room", data: data, userID: "7", dataForm: .verbatim, offset: 9))
            == #"{"event":"client-typing","channel":"presence-room","data":{"token":"abc"},"user_id":"7","herald_offset":9}"#)
        let recovery = ChannelHistory.Recovery(epoch: "00ab", offset: 17, recovered: true, events: [])
        #expect(String(buffer: RecoveryWire.socketIONotice(channel: "orders", recovery))
            == #"42["herald:recovery","orders",{"channel":"orders","epoch":"00ab","offset":17,"recovered":true}]"#)
        #expect(String(buffer: RecoveryWire.pusherNotice(channel: "orders", recovery))
            == #"{"event":"herald:recovery","channel":"orders","data":"{\"channel\":\"orders\",\"epoch\":\"00ab\",\"offset\":17,\"recovered\":true}"}"#)
    }

    @Test("the router records every routed event and hands opted-in recipients one shared offset form")
    func routerRecordsAndEncodesOnce() async {
        let registry = ChannelRegistry()
        let router = Router(registry: registry, emitToAll: false, history: ChannelHistoryConfiguration(), logger: .init(label: "test"))
        let off = Router(registry: registry, emitToAll: false, logger: .init(label: "test"))
        #expect(off.history == nil)
        guard let history = router.history else {
            Issue.record("history is on")
            return
        }
        router.publish(event("orders", "first", #"{"n":1}"#))
        router.publish(event("orders", "second", #"{"n":2}"#))
        router.finish()
        await router.run()
        let recovery = history.recover("orders", request: resume(history, 0), socketID: nil)
        #expect(recovery.recovered && names(recovery) == ["first", "second"])

        let recoverable = RecoverableEvent(event("orders", "paid", #"{"n":3}"#), dataForm: .string, offset: 5)
        let frame = recoverable.socketIOFrame
        #expect(frame == recoverable.socketIOFrame, "encoded once, then shared")
        #expect(String(buffer: recoverable.socketIOPacket) == #"42["paid","orders",{"n":3},{"herald_offset":5}]"#)
        #expect(frame == WebSocketFraming.frame(opcode: .text, payload: recoverable.socketIOPacket))
        #expect(recoverable.pusherFrame == WebSocketFraming.frame(
            opcode: .text, payload: ByteBuffer(string: #"{"event":"paid","channel":"orders","data":"{\"n\":3}","herald_offset":5}"#)))
    }
}
