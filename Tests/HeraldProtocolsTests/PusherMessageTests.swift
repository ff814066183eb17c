import HeraldCore
import HeraldProtocols
import NIOCore
import Testing

@Suite("Pusher messages")
struct PusherMessageTests {
    @Test("decoding: object data, string data, channel, raw bytes kept")
    func decode() throws {
        let subscribe = try PusherMessage(frame: buffer(#"{"event":"pusher:subscribe","data":{"auth":"","channel":"orders"}}"#))
        #expect(subscribe.event == "pusher:subscribe")
        #expect(subscribe.channel == nil)
        #expect(text(subscribe.data) == #"{"auth":"","channel":"orders"}"#)
        #expect(try subscribe.subscribeRequest() == PusherSubscribeRequest(channel: "orders", auth: "", channelData: nil))

        // Reverb also accepts the data string-encoded.
        let encoded = try PusherMessage(frame: buffer(#"{"event":"pusher:subscribe","data":"{\"auth\":\"k:1\",\"channel\":\"private-a\"}"}"#))
        #expect(try encoded.subscribeRequest() == PusherSubscribeRequest(channel: "private-a", auth: "k:1"))

        let presence = try PusherMessage(frame: buffer(
            #"{"event":"pusher:subscribe","data":{"auth":"app-key:x","channel_data":"{\"user_id\":\"1\",\"user_info\":{\"name\":\"Ann\"}}","channel":"presence-chat.1"}}"#))
        let request = try presence.subscribeRequest()
        #expect(request.channelData == #"{"user_id":"1","user_info":{"name":"Ann"}}"#)

        let whisper = try PusherMessage(frame: buffer(#"{"event":"client-typing","data":{"name":"Ann"},"channel":"private-chat.1"}"#))
        #expect(whisper.isClientEvent)
        #expect(whisper.channel == "private-chat.1")
        #expect(text(whisper.data) == #"{"name":"Ann"}"#)

        let ping = try PusherMessage(frame: buffer(#" {"event":"pusher:ping","data":{}} "#))
        #expect(ping.event == "pusher:ping")
        #expect(try ping.dataValue() == .object([]))

        let unsubscribe = try PusherMessage(frame: buffer(#"{"event":"pusher:unsubscribe","data":{"channel":"orders"}}"#))
        #expect(try unsubscribe.unsubscribeChannel() == "orders")

        let signin = try PusherMessage(frame: buffer(#"{"event":"pusher:signin","data":{"auth":"app-key:ab","user_data":"{\"id\":\"12345\",\"watchlist\":[\"7\"]}"}}"#))
        #expect(try signin.signinRequest() == PusherSigninRequest(auth: "app-key:ab", userData: #"{"id":"12345","watchlist":["7"]}"#))

        let noData = try PusherMessage(frame: buffer(#"{"event":"x","channel":null}"#))
        #expect(noData.data == nil && noData.channel == nil)
        #expect(try noData.dataValue() == nil)

        // A string that is not JSON stays a string.
        let plain = try PusherMessage(frame: buffer(#"{"event":"client-x","data":"hello"}"#))
        #expect(try plain.dataValue() == .string("hello"))
    }

    @Test("decoding errors")
    func decodeErrors() {
        func error(_ frame: String, maxChannel: Int = 164) -> PusherProtocolError? {
            do {
                _ = try PusherMessage(frame: buffer(frame), maxChannelNameLength: maxChannel)
                return nil
            } catch {
                return error
            }
        }
        if case .notJSON = error("{") {} else { Issue.record("expected notJSON") }
        if case .notJSON = error("") {} else { Issue.record("expected notJSON") }
        #expect(error("[1]") == .notAnObject)
        #expect(error(#""x""#) == .notAnObject)
        #expect(error("{}") == .missingEvent)
        #expect(error(#"{"event":""}"#) == .missingEvent)
        #expect(error(#"{"event":1}"#) == .eventNotString)
        #expect(error(#"{"event":null}"#) == .eventNotString)
        #expect(error(#"{"event":"\#(String(repeating: "e", count: 201))"}"#) == .eventNameTooLong(limit: 200))
        #expect(error(#"{"event":"\#(String(repeating: "e", count: 200))"}"#) == nil)
        #expect(error(#"{"event":"x","channel":5}"#) == .channelNotString)
        #expect(error(#"{"event":"x","channel":"\#(String(repeating: "c", count: 165))"}"#) == .channelNameTooLong(limit: 164))
        #expect(error(#"{"event":"x","channel":"abcd"}"#, maxChannel: 3) == .channelNameTooLong(limit: 3))
        #expect(error(String(repeating: "[", count: 1000)) != nil)

        #expect(throws: PusherProtocolError.self) {
            try PusherMessage(frame: buffer(#"{"event":"pusher:subscribe","data":{"auth":""}}"#)).subscribeRequest()
        }
        #expect(throws: PusherProtocolError.self) {
            try PusherMessage(frame: buffer(#"{"event":"pusher:subscribe","data":[1]}"#)).subscribeRequest()
        }
        #expect(throws: PusherProtocolError.self) {
            try PusherMessage(frame: buffer(#"{"event":"pusher:subscribe","data":{"channel":"p","channel_data":{"user_id":1}}}"#)).subscribeRequest()
        }
        #expect(throws: PusherProtocolError.self) {
            try PusherMessage(frame: buffer(#"{"event":"pusher:signin","data":{"auth":"a"}}"#)).signinRequest()
        }
        #expect(PusherProtocolError.eventNotString.description == "Event name must be a string")
    }

    @Test("presence channel_data and signin user_data")
    func presenceAndUserData() throws {
        let numeric = try PusherPresenceMember(channelData: #"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#)
        #expect(numeric.userID == "10")
        #expect(text(numeric.userInfo) == #"{"name":"Mr. Channels"}"#)
        let bare = try PusherPresenceMember(channelData: #"{"user_id":"abc"}"#)
        #expect(bare == PusherPresenceMember(userID: "abc"))
        #expect(throws: PusherProtocolError.self) { try PusherPresenceMember(channelData: #"{"user_info":{}}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherPresenceMember(channelData: #"{"user_id":""}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherPresenceMember(channelData: #"{"user_id":[1]}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherPresenceMember(channelData: "nope") }
        #expect(throws: PusherProtocolError.self) {
            try PusherPresenceMember(channelData: #"{"user_id":"1","user_info":"\#(String(repeating: "x", count: 2048))"}"#, maxUserInfoBytes: 2048)
        }

        let user = try PusherUserData(userData: #"{"id":"12345","user_info":{"n":1},"watchlist":["7","8"]}"#)
        #expect(user.id == "12345")
        #expect(user.watchlist == ["7", "8"])
        #expect(text(user.userInfo) == #"{"n":1}"#)
        #expect(throws: PusherProtocolError.self) { try PusherUserData(userData: #"{"id":12345}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherUserData(userData: #"{"id":""}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherUserData(userData: #"{"user_info":{}}"#) }
        #expect(throws: PusherProtocolError.self) { try PusherUserData(userData: #"{"id":"1","watchlist":[1]}"#) }
    }

    @Test("server frames, byte for byte")
    func encoders() throws {
        #expect(text(PusherMessage.connectionEstablished(socketID: "123456.789012", activityTimeout: 120))
                == #"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123456.789012\",\"activity_timeout\":120}"}"#)
        #expect(text(PusherMessage.error(code: 4009, message: "Connection is unauthorized"))
                == #"{"event":"pusher:error","data":{"code":4009,"message":"Connection is unauthorized"}}"#)
        #expect(text(PusherMessage.error(code: nil, message: "Invalid \"sig\""))
                == #"{"event":"pusher:error","data":{"code":null,"message":"Invalid \"sig\""}}"#)
        #expect(text(PusherMessage.error(.pongReplyNotReceived, channel: "a"))
                == #"{"event":"pusher:error","channel":"a","data":{"code":4201,"message":"Pong reply not received in time"}}"#)
        #expect(text(PusherMessage.pong()) == #"{"event":"pusher:pong","data":{}}"#)
        #expect(text(PusherMessage.ping()) == #"{"event":"pusher:ping","data":{}}"#)
        #expect(text(PusherMessage.subscriptionSucceeded(channel: "orders"))
                == #"{"event":"pusher_internal:subscription_succeeded","channel":"orders"}"#)
        #expect(text(PusherMessage.subscriptionSucceeded(channel: "orders", emptyData: true))
                == #"{"event":"pusher_internal:subscription_succeeded","channel":"orders","data":"{}"}"#)
        let members = [
            PusherPresenceMember(userID: "1", userInfo: buffer(#"{"name":"Ann"}"#)),
            PusherPresenceMember(userID: "2", userInfo: buffer(#"{"name":"Bob"}"#)),
            PusherPresenceMember(userID: "3"),
        ]
        let presence = PusherMessage.presenceSubscriptionSucceeded(channel: "presence-chat.1", members: members)
        #expect(text(presence) == #"{"event":"pusher_internal:subscription_succeeded","channel":"presence-chat.1","data":"{\"presence\":{\"ids\":[\"1\",\"2\",\"3\"],\"hash\":{\"1\":{\"name\":\"Ann\"},\"2\":{\"name\":\"Bob\"},\"3\":null},\"count\":3}}"}"#)
        // The data string holds exactly the documented JSON.
        let decoded = try PusherMessage(frame: presence)
        #expect(try decoded.dataValue()?.serialized == #"{"presence":{"ids":["1","2","3"],"hash":{"1":{"name":"Ann"},"2":{"name":"Bob"},"3":null},"count":3}}"#)
        #expect(text(PusherMessage.presenceSubscriptionSucceeded(channel: "presence-x", members: []))
                == #"{"event":"pusher_internal:subscription_succeeded","channel":"presence-x","data":"{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}"}"#)
        #expect(text(PusherMessage.subscriptionError(channel: "private-x", error: "The connection is unauthorized.", status: 401))
                == #"{"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"The connection is unauthorized.","status":401}}"#)
        #expect(text(PusherMessage.memberAdded(channel: "presence-c", member: members[0]))
                == #"{"event":"pusher_internal:member_added","channel":"presence-c","data":"{\"user_id\":\"1\",\"user_info\":{\"name\":\"Ann\"}}"}"#)
        #expect(text(PusherMessage.memberAdded(channel: "presence-c", member: members[2]))
                == #"{"event":"pusher_internal:member_added","channel":"presence-c","data":"{\"user_id\":\"3\"}"}"#)
        #expect(text(PusherMessage.memberRemoved(channel: "presence-c", userID: "1"))
                == #"{"event":"pusher_internal:member_removed","channel":"presence-c","data":"{\"user_id\":\"1\"}"}"#)
        #expect(text(PusherMessage.subscriptionCount(channel: "c", count: 3))
                == #"{"event":"pusher_internal:subscription_count","channel":"c","data":"{\"subscription_count\":3}"}"#)
        #expect(text(PusherMessage.signinSuccess(userData: #"{"id":"12345","watchlist":["7"]}"#))
                == #"{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"12345\",\"watchlist\":[\"7\"]}"}}"#)
        #expect(text(PusherMessage.cacheMiss(channel: "cache-x")) == #"{"event":"pusher:cache_miss","channel":"cache-x"}"#)
    }

    @Test("app events: raw JSON string-encoded once, strings passed through, client events verbatim")
    func appEvents() throws {
        // Laravel's Redis payload: raw object → one JSON string.
        let object = PusherMessage.event(#"App\Events\OrderShipped"#, channel: "orders", data: buffer(#"{"id":1,"note":"a \"b\" \\ c\nd"}"#))
        #expect(text(object) == #"{"event":"App\\Events\\OrderShipped","channel":"orders","data":"{\"id\":1,\"note\":\"a \\\"b\\\" \\\\ c\\nd\"}"}"#)
        // Decoding the frame gives back exactly the original bytes.
        let round = try PusherMessage(frame: object)
        guard case .string(let inner)? = try? JSONReader.parse(round.data ?? ByteBuffer()) else {
            Issue.record("data is not a string"); return
        }
        #expect(inner == #"{"id":1,"note":"a \"b\" \\ c\nd"}"#)

        // HTTP API data is already a JSON string: passed through unchanged.
        let string = PusherMessage.event("foo", channel: "project-3", data: buffer(#""{\"some\":\"data\"}""#))
        #expect(text(string) == #"{"event":"foo","channel":"project-3","data":"{\"some\":\"data\"}"}"#)

        // Scalars and raw control bytes / UTF-8.
        #expect(text(PusherMessage.event("e", channel: "c", data: buffer("null"))) == #"{"event":"e","channel":"c","data":"null"}"#)
        #expect(text(PusherMessage.event("e", channel: "c", data: buffer("[1,\t\"é\"]"))) == #"{"event":"e","channel":"c","data":"[1,\t\"é\"]"}"#)
        #expect(text(PusherMessage.event("e", channel: "c", data: buffer(bytes: [0x22, 0x01, 0x22]), dataForm: .verbatim)) == "{\"event\":\"e\",\"channel\":\"c\",\"data\":\"\u{01}\"}")
        #expect(text(PusherMessage.event("e", channel: "c", data: buffer(bytes: [0x7B, 0x01, 0x7D]))) == #"{"event":"e","channel":"c","data":"{\u0001}"}"#)

        // Client events: verbatim with the sender's user id.
        let whisper = PusherMessage.event("client-typing", channel: "private-chat.1", data: buffer(#"{"name":"Ann"}"#), userID: "1", dataForm: .verbatim)
        #expect(text(whisper) == #"{"event":"client-typing","channel":"private-chat.1","data":{"name":"Ann"},"user_id":"1"}"#)
        let whisperString = PusherMessage.event("client-typing", channel: "presence-c", data: buffer(#"{"name":"Ann"}"#), userID: "1")
        #expect(text(whisperString) == #"{"event":"client-typing","channel":"presence-c","data":"{\"name\":\"Ann\"}","user_id":"1"}"#)
    }
}
