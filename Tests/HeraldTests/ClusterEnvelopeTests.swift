@testable import Herald
import HeraldCore
import NIOCore
import Testing

@Suite("Cluster envelope: the wire form of events between nodes")
struct ClusterEnvelopeTests {
    private func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test("a full event round-trips, its data byte for byte")
    func roundTrip() throws {
        // Spacing, key order, escapes and a big number: none of it may be re-encoded.
        let data = #"{ "b":1e400, "a":"\u00e9\n", "n":[1,2.50,null] }"#
        var event = Event(
            channel: "presence-chat.1", name: "client-typing", data: ByteBuffer(string: data),
            excludedSocketID: "123.456", source: .client, namespace: "1002"
        )
        event.senderUserID = "7"
        let encoded = ClusterEnvelope.encode(event, node: "node-a")
        #expect(text(encoded) == #"{"v":1,"node":"node-a","src":"client","ch":"presence-chat.1","ns":"1002","ev":"client-typing","sock":"123.456","uid":"7","data":"# + data + "}")

        let decoded = try ClusterEnvelope.decode(encoded)
        #expect(decoded.node == "node-a")
        #expect(decoded.event.channel == "presence-chat.1")
        #expect(decoded.event.name == "client-typing")
        #expect(text(decoded.event.data) == data)
        #expect(decoded.event.excludedSocketID == "123.456")
        #expect(decoded.event.senderUserID == "7")
        #expect(decoded.event.source == .client)
        #expect(decoded.event.namespace == "1002")
    }

    @Test("optional fields are left out and come back as nil; every source survives", arguments: [EventSource.http, .inProcess, .client, .redis])
    func minimal(source: EventSource) throws {
        let event = Event(channel: "orders", name: "App\\Events\\OrderShipped", data: ByteBuffer(string: "null"), source: source)
        let encoded = ClusterEnvelope.encode(event, node: "n")
        #expect(!text(encoded).contains("\"sock\""))
        #expect(!text(encoded).contains("\"ns\""))
        #expect(!text(encoded).contains("\"uid\""))
        let decoded = try ClusterEnvelope.decode(encoded)
        #expect(decoded.event.channel == "orders")
        #expect(decoded.event.name == "App\\Events\\OrderShipped")
        #expect(text(decoded.event.data) == "null")
        #expect(decoded.event.excludedSocketID == nil)
        #expect(decoded.event.senderUserID == nil)
        #expect(decoded.event.namespace == nil)
        #expect(decoded.event.source == source)
    }

    @Test("names with quotes, backslashes, control characters and non-ASCII survive")
    func escaping() throws {
        let event = Event(channel: "a\"b\\c\u{1}é😀", name: "ev\n\t\"", data: ByteBuffer(string: #""s""#), excludedSocketID: "x\"y", source: .http)
        let decoded = try ClusterEnvelope.decode(ClusterEnvelope.encode(event, node: "nö\"de"))
        #expect(decoded.node == "nö\"de")
        #expect(decoded.event.channel == "a\"b\\c\u{1}é😀")
        #expect(decoded.event.name == "ev\n\t\"")
        #expect(decoded.event.excludedSocketID == "x\"y")
        #expect(text(decoded.event.data) == #""s""#)
    }

    @Test("unknown keys are ignored, in any order; an empty socket id means none")
    func tolerant() throws {
        let payload = #"{"data":[1],"future":{"x":1},"ev":"e","ch":"c","src":"http","node":"n","sock":"","v":1}"#
        let decoded = try ClusterEnvelope.decode(ByteBuffer(string: payload))
        #expect(decoded.event.name == "e")
        #expect(text(decoded.event.data) == "[1]")
        #expect(decoded.event.excludedSocketID == nil)
    }

    @Test("bad envelopes are refused with a reason, never a crash", arguments: [
        ("", "not a JSON object"),
        ("[1,2]", "not a JSON object"),
        ("{\"v\":1,", "not a JSON object"),
        ("{\"data\":" + String(repeating: "[", count: 10_000), "not a JSON object"),
        (#"{"v":1,"node":"n","src":"http","ch":"c","ev":"e","data":{"a":}}"#, "not a JSON object"),
        (#"{"node":"n","src":"http","ch":"c","ev":"e","data":1}"#, "missing 'v'"),
        (#"{"v":"1","node":"n","src":"http","ch":"c","ev":"e","data":1}"#, "'v' is not a number"),
        (#"{"v":2,"node":"n","src":"http","ch":"c","ev":"e","data":1}"#, "unsupported envelope version 2"),
        (#"{"v":1.0,"node":"n","src":"http","ch":"c","ev":"e","data":1}"#, "unsupported envelope version 1.0"),
        (#"{"v":1,"src":"http","ch":"c","ev":"e","data":1}"#, "missing 'node'"),
        (#"{"v":1,"node":"","src":"http","ch":"c","ev":"e","data":1}"#, "missing 'node'"),
        (#"{"v":1,"node":7,"src":"http","ch":"c","ev":"e","data":1}"#, "'node' is not a string"),
        (#"{"v":1,"node":"n","src":"smtp","ch":"c","ev":"e","data":1}"#, "unknown source 'smtp'"),
        (#"{"v":1,"node":"n","ch":"c","ev":"e","data":1}"#, "missing 'src'"),
        (#"{"v":1,"node":"n","src":"http","ev":"e","data":1}"#, "missing 'ch'"),
        (#"{"v":1,"node":"n","src":"http","ch":"c","data":1}"#, "missing 'ev'"),
        (#"{"v":1,"node":"n","src":"http","ch":"c","ev":"e"}"#, "missing 'data'"),
        (#"{"v":1,"node":"n","src":"http","ch":"c","ev":"e","sock":5,"data":1}"#, "'sock' is not a string"),
        (#"{"v":1,"node":"n","src":"http","ch":"c","ev":"e","ns":null,"data":1}"#, "'ns' is not a string"),
    ])
    func refused(payload: String, reason: String) {
        #expect {
            _ = try ClusterEnvelope.decode(ByteBuffer(string: payload))
        } throws: { error in
            guard let error = error as? ClusterEnvelope.DecodeError else { return false }
            return error.reason.hasPrefix(reason)
        }
    }

    @Test("a Laravel broadcast on the cluster channel is not an envelope")
    func laravelPayload() {
        let laravel = #"{"event":"App\\Events\\X","data":{"a":1},"socket":null}"#
        #expect(throws: ClusterEnvelope.DecodeError.self) { try ClusterEnvelope.decode(ByteBuffer(string: laravel)) }
    }

    @Test("the default channel is suffixed with the key prefix, outside the Laravel pattern")
    func defaultChannel() {
        #expect(ClusterConfiguration.defaultChannel(keyPrefix: "") == "herald:cluster")
        #expect(ClusterConfiguration.defaultChannel(keyPrefix: "laravel_database_") == "herald:cluster:laravel_database_")
        var configuration = HeraldConfiguration(keyPrefix: "shop_")
        #expect(configuration.clusterChannel == nil)
        configuration.cluster = ClusterConfiguration()
        #expect(configuration.clusterChannel == "herald:cluster:shop_")
        configuration.cluster?.channel = "mine"
        #expect(configuration.clusterChannel == "mine")
    }

    @Test("node ids: random ones differ; bad ones are named")
    func nodeIDs() {
        let ids = Set((0..<100).map { _ in ClusterConfiguration.randomNodeID() })
        #expect(ids.count == 100)
        #expect(ids.allSatisfy { ClusterConfiguration.problem(nodeID: $0) == nil && $0.count == 16 })
        #expect(ClusterConfiguration.problem(nodeID: "") != nil)
        #expect(ClusterConfiguration.problem(nodeID: "a b") != nil)
        #expect(ClusterConfiguration.problem(nodeID: String(repeating: "x", count: 65)) != nil)
        #expect(ClusterConfiguration.problem(nodeID: "relay-1") == nil)
        #expect(ClusterConfiguration.problem(channel: "") != nil)
        #expect(ClusterConfiguration.problem(channel: "herald:cluster") == nil)
    }

    @Test("a presence notice round-trips; an event decoder refuses it and bad ones are refused")
    func presenceNotice() throws {
        let member = PresenceMember(userID: .number("7"), userInfo: .object([JSONMember(key: "name", value: .string("Ann \"A\""))]))
        let notice = PresenceNotice(channel: ChannelKey(namespace: "1002", name: "presence-room"), member: member, joined: true, socketID: "1.2")
        var bytes = ByteBuffer()
        ClusterEnvelope.encode(notice, node: "node-a", into: &bytes)
        let decoded = try ClusterEnvelope.decodeMessage(bytes)
        #expect(decoded.node == "node-a")
        guard case .presence(let back) = decoded.message else {
            Issue.record("not decoded as presence")
            return
        }
        #expect(back.channel == notice.channel && back.member == member && back.joined && back.socketID == "1.2")
        #expect(throws: ClusterEnvelope.DecodeError.self) { try ClusterEnvelope.decode(bytes) }
        // A leave on a shared channel, without a socket id.
        var leave = ByteBuffer()
        ClusterEnvelope.encode(PresenceNotice(channel: "presence-x", member: PresenceMember(userID: .string("u")), joined: false), node: "n", into: &leave)
        guard case .presence(let left)? = try? ClusterEnvelope.decodeMessage(leave).message else {
            Issue.record("leave not decoded")
            return
        }
        #expect(left.channel == "presence-x" && !left.joined && left.socketID == nil && left.member.key == "u")
        for bad in [
            #"{"v":1,"node":"n","kind":"presence","op":"stay","ch":"p","member":{"user_id":1}}"#,
            #"{"v":1,"node":"n","kind":"presence","op":"join","ch":"p","member":{"name":1}}"#,
            #"{"v":1,"node":"n","kind":"gossip","op":"join","ch":"p","member":{"user_id":1}}"#,
            #"{"v":2,"node":"n","kind":"presence","op":"join","ch":"p","member":{"user_id":1}}"#,
        ] {
            #expect(throws: ClusterEnvelope.DecodeError.self) { try ClusterEnvelope.decodeMessage(ByteBuffer(string: bad)) }
        }
        // Events still decode through the general decoder.
        guard case .event(let event)? = try? ClusterEnvelope.decodeMessage(ClusterEnvelope.encode(Event(channel: "c", name: "e", data: ByteBuffer(string: "1"), source: .http), node: "n")).message else {
            Issue.record("event not decoded")
            return
        }
        #expect(event.channel == "c")
    }

    @Test("presence keys name channels unambiguously and values carry the member and socket id")
    func presenceKeys() {
        for channel in [ChannelKey(shared: "presence-a:b"), ChannelKey(namespace: "12:3", name: "presence-x"), ChannelKey(namespace: "", name: "p"), ChannelKey(shared: "-:odd")] {
            #expect(ClusterPresence.channel(fromField: ClusterPresence.channelField(channel)) == channel)
        }
        #expect(ClusterPresence.channelField(ChannelKey(namespace: "1002", name: "presence-x")) == "4:1002:presence-x")
        #expect(ClusterPresence.channel(fromField: "9:short:x") == nil)
        #expect(ClusterPresence.channel(fromField: "nonsense") == nil)
        let member = PresenceMember(userID: .number("7"), userInfo: .object([JSONMember(key: "n", value: .number("1"))]))
        let value = ClusterPresence.value(member, socketID: "1.2")
        #expect(value.hasPrefix("7\u{1F}{"))
        let parsed = ClusterPresence.member(.bulkString(ByteBuffer(string: value)))
        #expect(parsed?.member == member && parsed?.socketID == "1.2")
        #expect(ClusterPresence.member(.bulkString(ByteBuffer(string: "no separator"))) == nil)
    }

    @Test("the outbox is bounded, hands out batches in order, and refuses after finish")
    func outbox() async {
        let outbox = ClusterOutbox<Event>(capacity: 3)
        func event(_ n: Int) -> Event { Event(channel: "c", name: "e\(n)", data: ByteBuffer(string: "\(n)"), source: .http) }
        for n in 0..<3 { #expect(outbox.push(event(n)) == .queued) }
        #expect(outbox.push(event(3)) == .full)
        #expect(await outbox.next(max: 2)?.map(\.name) == ["e0", "e1"])
        #expect(outbox.push(event(4)) == .queued)
        outbox.finish()
        #expect(outbox.push(event(5)) == .finished)
        #expect(await outbox.next(max: 10)?.map(\.name) == ["e2", "e4"])
        #expect(await outbox.next(max: 10) == nil)
    }

    @Test("a publisher waiting for events wakes for the next one")
    func outboxWakes() async {
        let outbox = ClusterOutbox<Event>(capacity: 8)
        async let batch = outbox.next(max: 8)
        // Whether the push lands before or after the wait begins, the batch holds it.
        #expect(outbox.push(Event(channel: "c", name: "late", data: ByteBuffer(string: "1"), source: .client)) == .queued)
        #expect(await batch?.map(\.name) == ["late"])
    }

    @Test("a wake with nothing queued returns an empty batch once")
    func outboxWake() async {
        let outbox = ClusterOutbox<Event>(capacity: 8)
        outbox.wake()
        #expect(await outbox.next(max: 8)?.isEmpty == true)
        #expect(outbox.push(Event(channel: "c", name: "e", data: ByteBuffer(string: "1"), source: .http)) == .queued)
        outbox.wake()
        #expect(await outbox.next(max: 8)?.map(\.name) == ["e"])
        outbox.finish()
        #expect(await outbox.next(max: 8) == nil)
    }
}

@Suite("Cluster settings in herald.yaml and the environment")
struct ClusterConfigurationFileTests {
    private func parse(_ text: String, environment: [String: String] = [:]) throws -> HeraldConfiguration {
        try HeraldConfigurationFile.parse(text, file: "herald.yaml", environment: environment).configuration
    }

    @Test("a cluster section turns it on; enabled: false and no section leave it off")
    func section() throws {
        #expect(try parse("redis: { url: redis://127.0.0.1 }\n").cluster == nil)
        let defaults = try parse("redis: { url: redis://127.0.0.1, key_prefix: shop_ }\ncluster: {}\n")
        #expect(defaults.cluster != nil && defaults.clusterChannel == "herald:cluster:shop_")
        #expect(try parse("cluster:\n").cluster != nil)
        #expect(try parse("cluster: { enabled: false, node_id: a }\n").cluster == nil)
        let set = try parse("cluster: { channel: mine, node_id: relay-1, queue_size: 100 }\n")
        #expect(set.cluster == ClusterConfiguration(channel: "mine", nodeID: "relay-1", queueSize: 100))
    }

    @Test("HERALD_CLUSTER and HERALD_CLUSTER_* win over the file")
    func environment() throws {
        let on = try parse("", environment: ["HERALD_CLUSTER": "true", "HERALD_CLUSTER_NODE_ID": "env-1", "HERALD_CLUSTER_CHANNEL": "c"])
        #expect(on.cluster?.nodeID == "env-1" && on.clusterChannel == "c")
        #expect(try parse("cluster: { node_id: a }\n", environment: ["HERALD_CLUSTER": "false"]).cluster == nil)
    }

    @Test("bad values name the key", arguments: [
        ("cluster: { node_id: \"\" }\n", "cluster.node_id"),
        ("cluster: { node_id: \"a b\" }\n", "cluster.node_id"),
        ("cluster: { channel: \"\" }\n", "cluster.channel"),
        ("cluster: { queue_size: 0 }\n", "cluster.queue_size"),
        ("cluster: { enabled: maybe }\n", "cluster.enabled"),
        ("cluster: { chanel: x }\n", "cluster.chanel"),
    ])
    func refused(text: String, keyPath: String) {
        #expect {
            _ = try parse(text)
        } throws: { error in
            (error as? ConfigurationFileError)?.keyPath == keyPath
        }
    }
}
