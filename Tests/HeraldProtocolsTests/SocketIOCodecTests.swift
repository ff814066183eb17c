import HeraldProtocols
import NIOCore
import Testing

@Suite("Socket.IO codec")
struct SocketIOCodecTests {
    @Test("CONNECT without and with auth payload")
    func connect() throws {
        let plain = try SocketIOCodec.decode(buffer("0"))
        #expect(plain == SocketIOPacket(type: .connect, namespace: "/", ackID: nil, attachments: 0, payload: nil))

        let withAuth = try SocketIOCodec.decode(buffer(#"0{"token":"1"}"#))
        #expect(withAuth.type == .connect)
        #expect(withAuth.namespace == "/")
        #expect(text(withAuth.payload) == #"{"token":"1"}"#)

        // v4 clients put the query after the namespace; it stays attached.
        let v4 = try SocketIOCodec.decode(buffer("0/admin?token=1,"))
        #expect(v4.namespace == "/admin?token=1")
        #expect(v4.payload == nil)
    }

    @Test("decoding the text after Engine.IO's 4 (40, 42…)")
    func decodeAfterEngineIOPrefix() throws {
        // The relay strips Engine.IO's `4` before handing the rest to the Socket.IO codec;
        // here we check the packets a client sends as `40…`/`42…` messages.
        let connect = try EngineIOCodec.decodePacket(buffer("40"))
        #expect(try SocketIOCodec.decode(connect.data) == SocketIOPacket(type: .connect))

        let auth = try EngineIOCodec.decodePacket(buffer(#"40{"token":"1"}"#))
        #expect(try SocketIOCodec.decode(auth.data) == SocketIOPacket(type: .connect, payload: buffer(#"{"token":"1"}"#)))

        let subscribe = try EngineIOCodec.decodePacket(buffer(#"42["subscribe",{"channel":"a"}]"#))
        #expect(try SocketIOCodec.decode(subscribe.data) == SocketIOPacket(type: .event, payload: buffer(#"["subscribe",{"channel":"a"}]"#)))
    }

    @Test("EVENT with namespace and ack id")
    func eventWithNamespaceAndAck() throws {
        let packet = try SocketIOCodec.decode(buffer(#"2/admin,13["foo"]"#))
        #expect(packet == SocketIOPacket(type: .event, namespace: "/admin", ackID: 13, attachments: 0, payload: buffer(#"["foo"]"#)))

        let ackOnly = try SocketIOCodec.decode(buffer(#"27["bar",1]"#))
        #expect(ackOnly == SocketIOPacket(type: .event, namespace: "/", ackID: 7, payload: buffer(#"["bar",1]"#)))
    }

    @Test("BINARY_EVENT with one attachment")
    func binaryEvent() throws {
        let packet = try SocketIOCodec.decode(buffer(#"51-["baz",{"_placeholder":true,"num":0}]"#))
        #expect(packet == SocketIOPacket(type: .binaryEvent, namespace: "/", ackID: nil, attachments: 1,
                                         payload: buffer(#"["baz",{"_placeholder":true,"num":0}]"#)))
        let ten = try SocketIOCodec.decode(buffer(#"510-["x"]"#))
        #expect(ten.attachments == 10)
    }

    @Test("ACK and DISCONNECT")
    func ackAndDisconnect() throws {
        #expect(try SocketIOCodec.decode(buffer("35[]")) == SocketIOPacket(type: .ack, ackID: 5, payload: buffer("[]")))
        #expect(try SocketIOCodec.decode(buffer("1")) == SocketIOPacket(type: .disconnect))
        #expect(try SocketIOCodec.decode(buffer("1/admin,")) == SocketIOPacket(type: .disconnect, namespace: "/admin"))
    }

    @Test("reserved event names are refused", arguments: ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"])
    func reservedNames(name: String) {
        #expect(throws: SocketIOParseError("invalid event name")) {
            try SocketIOCodec.decode(buffer("2[\"\(name)\",{}]"))
        }
    }

    @Test("malformed packets are refused with a precise reason")
    func failures() {
        #expect(throws: SocketIOParseError("EVENT payload must be a non-empty array")) { try SocketIOCodec.decode(buffer(#"2{"a":1}"#)) }
        #expect(throws: SocketIOParseError("EVENT payload must be a non-empty array")) { try SocketIOCodec.decode(buffer("2[]")) }
        #expect(throws: SocketIOParseError("EVENT payload must be a non-empty array")) { try SocketIOCodec.decode(buffer("2")) }
        #expect(throws: SocketIOParseError("EVENT payload must be a non-empty array")) { try SocketIOCodec.decode(buffer(#"2"subscribe""#)) }
        #expect(throws: SocketIOParseError("invalid event name")) { try SocketIOCodec.decode(buffer(#"2[{"a":1}]"#)) }
        #expect(throws: SocketIOParseError("DISCONNECT carries no payload")) { try SocketIOCodec.decode(buffer("1{}")) }
        #expect(throws: SocketIOParseError("too many attachments")) { try SocketIOCodec.decode(buffer(#"511-["x"]"#)) }
        #expect(throws: SocketIOParseError("invalid attachment count")) { try SocketIOCodec.decode(buffer(#"5["x"]"#)) }
        #expect(throws: SocketIOParseError("invalid attachment count")) { try SocketIOCodec.decode(buffer(#"51000-["x"]"#)) }
        #expect(throws: SocketIOParseError("CONNECT payload must be an object")) { try SocketIOCodec.decode(buffer("0[1]")) }
        #expect(throws: SocketIOParseError("ACK payload must be an array")) { try SocketIOCodec.decode(buffer("3")) }
        #expect(throws: SocketIOParseError("CONNECT_ERROR needs a payload")) { try SocketIOCodec.decode(buffer("4")) }
        #expect(throws: SocketIOParseError("unknown packet type")) { try SocketIOCodec.decode(buffer("hello")) }
        #expect(throws: SocketIOParseError("unknown packet type")) { try SocketIOCodec.decode(buffer("9")) }
        #expect(throws: SocketIOParseError("unknown packet type")) { try SocketIOCodec.decode(buffer("")) }
        #expect(throws: SocketIOParseError("invalid ack id")) { try SocketIOCodec.decode(buffer(#"21234567890123456["x"]"#)) }
    }

    @Test("garbage JSON is reported as not JSON")
    func garbageJSON() {
        do {
            _ = try SocketIOCodec.decode(buffer(#"2["subscribe",{"channel":}]"#))
            Issue.record("expected a parse error")
        } catch {
            #expect(error.reason.hasPrefix("payload is not JSON (invalid JSON at byte "))
        }
        #expect(throws: SocketIOParseError.self) { try SocketIOCodec.decode(buffer(#"2["a"]x"#)) }
    }

    @Test("CONNECT replies")
    func connectReplies() {
        #expect(text(SocketIOCodec.connectReply(sid: "Xy-1")) == #"40{"sid":"Xy-1"}"#)
        #expect(text(SocketIOCodec.connectReplyV4()) == "40")
        #expect(text(SocketIOCodec.disconnect()) == "41")
    }

    @Test("connectError in v5 (object) and v4 (string) form")
    func connectErrors() {
        #expect(text(SocketIOCodec.connectError(namespace: "/", message: "Invalid namespace", legacy: false)) == #"44{"message":"Invalid namespace"}"#)
        #expect(text(SocketIOCodec.connectError(namespace: "/", message: "Invalid namespace", legacy: true)) == #"44"Invalid namespace""#)
        #expect(text(SocketIOCodec.connectError(namespace: "/admin", message: "no \"way\"", legacy: false)) == #"44/admin,{"message":"no \"way\""}"#)
        #expect(text(SocketIOCodec.connectError(namespace: "/admin", message: "x", legacy: true)) == #"44/admin,"x""#)
    }

    @Test("writeChannelEvent keeps the data bytes verbatim")
    func channelEvent() {
        var out = ByteBuffer()
        let data = buffer(#"{"name":"Ren\u00e9e","url":"http:\/\/x","n":1.50}"#)
        SocketIOCodec.writeChannelEvent(event: #"App\Events\OrderShipped"#, channel: "orders", data: data, into: &out)
        #expect(text(out) == #"42["App\\Events\\OrderShipped","orders",{"name":"Ren\u00e9e","url":"http:\/\/x","n":1.50}]"#)
    }

    @Test("writeEvent and ack write raw arguments")
    func eventAndAck() {
        var out = ByteBuffer()
        SocketIOCodec.writeEvent(name: "subscription_error", arguments: [buffer(#""private-a""#), buffer("403")], into: &out)
        #expect(text(out) == #"42["subscription_error","private-a",403]"#)
        var bare = ByteBuffer()
        SocketIOCodec.writeEvent(name: "ping", arguments: [], into: &bare)
        #expect(text(bare) == #"42["ping"]"#)
        #expect(text(SocketIOCodec.ack(id: 5, arguments: [buffer(#""a""#), buffer("1")])) == #"435["a",1]"#)
        #expect(text(SocketIOCodec.ack(id: 0, arguments: [])) == "430[]")
    }
}
