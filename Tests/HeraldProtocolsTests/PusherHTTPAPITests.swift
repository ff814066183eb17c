import HeraldProtocols
import NIOCore
import Testing

@Suite("Pusher HTTP API")
struct PusherHTTPAPITests {
    func error(_ body: String, limits: PusherHTTPAPI.Limits = .init()) -> PusherHTTPAPIError? {
        do {
            _ = try PusherHTTPAPI.parseEvent(body: buffer(body), limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test("POST /events: channels, channel, socket_id, info; data kept verbatim")
    func parseEvent() throws {
        let event = try PusherHTTPAPI.parseEvent(body: buffer(#"{"name":"foo","channels":["project-3","b"],"data":"{\"some\":\"data\"}"}"#))
        #expect(event.name == "foo")
        #expect(event.channels == ["project-3", "b"])
        #expect(text(event.data) == #""{\"some\":\"data\"}""#)
        #expect(event.socketID == nil && event.info.isEmpty)
        // Encoded for clients, the string passes through unchanged.
        #expect(text(PusherMessage.event(event.name, channel: "b", data: event.data))
                == #"{"event":"foo","channel":"b","data":"{\"some\":\"data\"}"}"#)

        let single = try PusherHTTPAPI.parseEvent(body: buffer(
            #"{"name":"App\\Events\\X","channel":"private-a","data":"{}","socket_id":"123.456","info":"user_count,subscription_count"}"#))
        #expect(single.name == #"App\Events\X"#)
        #expect(single.channels == ["private-a"])
        #expect(single.socketID == "123.456")
        #expect(single.info == ["user_count", "subscription_count"])
    }

    @Test("POST /events: bad input answers 400 / 413 with Soketi's body")
    func eventErrors() {
        #expect(error("nope")?.status == 400)
        #expect(error("[]")?.status == 400)
        #expect(error(#"{"channel":"a","data":"{}"}"#) == .badRequest("Missing event name"))
        #expect(error(#"{"name":1,"channel":"a","data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"\#(String(repeating: "n", count: 201))","channel":"a","data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channel":"a"}"#) == .badRequest("Missing data"))
        #expect(error(#"{"name":"e","data":"{}"}"#) == .badRequest("Missing channel or channels"))
        #expect(error(#"{"name":"e","channels":[],"data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channels":[1],"data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channels":"a","data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channel":"a","channels":["b"],"data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channel":"a b","data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channel":"\#(String(repeating: "c", count: 165))","data":"{}"}"#)?.status == 400)
        let hundred = (0..<100).map { "\"c\($0)\"" }.joined(separator: ",")
        #expect(error(#"{"name":"e","channels":[\#(hundred)],"data":"{}"}"#) == nil)
        #expect(error(#"{"name":"e","channels":[\#(hundred),"x"],"data":"{}"}"#)?.status == 400)
        #expect(error(#"{"name":"e","channel":"a","data":"{}","socket_id":"abc"}"#) == .badRequest("Invalid socket_id"))
        #expect(error(#"{"name":"e","channel":"a","data":"{}","info":5}"#)?.status == 400)

        // 413 over the data limit, measured on the decoded string (default 10 KB).
        let big = String(repeating: "x", count: 10 * 1024)
        #expect(error(#"{"name":"e","channel":"a","data":"\#(big)"}"#) == nil)
        #expect(error(#"{"name":"e","channel":"a","data":"\#(big)x"}"#)?.status == 413)
        #expect(error(#"{"name":"e","channel":"a","data":"12345"}"#, limits: .init(maxDataBytes: 4))?.status == 413)
        // Escapes count once decoded: four \" are four bytes.
        #expect(error(#"{"name":"e","channel":"a","data":"\"\"\"\""}"#, limits: .init(maxDataBytes: 4)) == nil)

        let body = PusherHTTPAPIError.payloadTooLarge("Event data too \"large\"").body
        #expect(text(body) == #"{"error":"Event data too \"large\"","code":413}"#)
    }

    @Test("POST /batch_events: up to 10 events, errors name the entry")
    func batch() throws {
        let events = try PusherHTTPAPI.parseBatch(body: buffer(
            #"{"batch":[{"name":"a","channel":"c1","data":"1"},{"name":"b","channel":"c2","data":"{\"x\":2}","socket_id":"1.2","info":"subscription_count"}]}"#))
        #expect(events.map(\.name) == ["a", "b"])
        #expect(events[1].channels == ["c2"])
        #expect(events[1].socketID == "1.2")
        #expect(text(events[1].data) == #""{\"x\":2}""#)
        #expect(try PusherHTTPAPI.parseBatch(body: buffer(#"{"batch":[]}"#)).isEmpty)

        func batchError(_ body: String) -> PusherHTTPAPIError? {
            do { _ = try PusherHTTPAPI.parseBatch(body: buffer(body)); return nil } catch { return error }
        }
        let ten = Array(repeating: #"{"name":"a","channel":"c","data":"1"}"#, count: 10).joined(separator: ",")
        #expect(batchError(#"{"batch":[\#(ten)]}"#) == nil)
        #expect(batchError(#"{"batch":[\#(ten),{"name":"a","channel":"c","data":"1"}]}"#)?.status == 400)
        #expect(batchError(#"{}"#) == .badRequest("Missing batch"))
        #expect(batchError(#"{"batch":{}}"#)?.status == 400)
        #expect(batchError(#"{"batch":[1]}"#)?.status == 400)
        #expect(batchError(#"{"batch":[{"name":"a","channel":"c","data":"1"},{"name":"b","channel":"c"}]}"#) == .badRequest("batch[1]: Missing data"))
        let big = String(repeating: "x", count: 10 * 1024 + 1)
        #expect(batchError(#"{"batch":[{"name":"a","channel":"c","data":"\#(big)"}]}"#)?.status == 413)
    }

    @Test("responses")
    func responses() {
        #expect(text(PusherHTTPAPI.emptyResponse()) == "{}")
        #expect(text(PusherHTTPAPI.eventResponse()) == "{}")
        #expect(text(PusherHTTPAPI.eventResponse(channels: [("presence-a", .init(userCount: 2, subscriptionCount: 3)), ("b", .init(subscriptionCount: 1))]))
                == #"{"channels":{"presence-a":{"user_count":2,"subscription_count":3},"b":{"subscription_count":1}}}"#)
        #expect(text(PusherHTTPAPI.batchResponse()) == "{}")
        #expect(text(PusherHTTPAPI.batchResponse([.init(subscriptionCount: 1), .init()])) == #"{"batch":[{"subscription_count":1},{}]}"#)
        #expect(text(PusherHTTPAPI.channelsResponse([("presence-x", .init(userCount: 2))])) == #"{"channels":{"presence-x":{"user_count":2}}}"#)
        #expect(text(PusherHTTPAPI.channelsResponse([])) == #"{"channels":{}}"#)
        #expect(text(PusherHTTPAPI.channelResponse(.init(occupied: true, userCount: 2, subscriptionCount: 3)))
                == #"{"occupied":true,"user_count":2,"subscription_count":3}"#)
        #expect(text(PusherHTTPAPI.channelResponse(.init(occupied: false))) == #"{"occupied":false}"#)
        #expect(text(PusherHTTPAPI.usersResponse(userIDs: ["1", "2"])) == #"{"users":[{"id":"1"},{"id":"2"}]}"#)
        #expect(text(PusherHTTPAPIError.unauthorized("Invalid signature").body) == #"{"error":"Invalid signature","code":401}"#)
    }

    @Test("query parsing and info")
    func query() {
        let items = PusherHTTPAPI.parseQuery("a=1&b=x%20y+z&c&filter_by_prefix=presence-&bad=%zz&&e=%E2%82%AC")
        #expect(items.map(\.name) == ["a", "b", "c", "filter_by_prefix", "bad", "e"])
        #expect(items.map(\.value) == ["1", "x y z", "", "presence-", "%zz", "€"])
        #expect(PusherHTTPAPI.parseInfo("user_count, subscription_count,") == ["user_count", "subscription_count"])
        #expect(PusherHTTPAPI.parseInfo(nil).isEmpty)
    }
}
