import HeraldProtocols
import NIOCore
import Testing

@Suite("Laravel broadcast payloads")
struct LaravelBroadcastTests {
    static let wechat = #"{"event":"App\\Events\\WechatLoginedEvent","data":{"token":"t","channel":"c","socket":null},"socket":null}"#

    @Test("the exact payload RedisBroadcaster publishes")
    func parseLaravelPayload() throws {
        let broadcast = try LaravelBroadcast(payload: buffer(Self.wechat))
        #expect(broadcast.event == #"App\Events\WechatLoginedEvent"#)
        #expect(text(broadcast.data) == #"{"token":"t","channel":"c","socket":null}"#)
        #expect(broadcast.socket == nil)
    }

    @Test("data is kept byte for byte, json_encode escapes included")
    func dataVerbatim() throws {
        let payload = #"{"event":"OrderShipped","data":{"name":"Ren\u00e9e","url":"https:\/\/shop.test\/o\/1","price":10.50,"tags":[]},"socket":null}"#
        let broadcast = try LaravelBroadcast(payload: buffer(payload))
        #expect(text(broadcast.data) == #"{"name":"Ren\u00e9e","url":"https:\/\/shop.test\/o\/1","price":10.50,"tags":[]}"#)
        #expect(broadcast.event == "OrderShipped")
    }

    @Test("the payload is parsed relative to the buffer's reader index")
    func slicedPayload() throws {
        var input = buffer("garbage" + Self.wechat)
        input.moveReaderIndex(forwardBy: 7)
        let broadcast = try LaravelBroadcast(payload: input)
        #expect(text(broadcast.data) == #"{"token":"t","channel":"c","socket":null}"#)
    }

    @Test("socket is picked up when it is a non-empty string")
    func socketField() throws {
        let withSocket = try LaravelBroadcast(payload: buffer(#"{"event":"e","data":[],"socket":"123.456"}"#))
        #expect(withSocket.socket == "123.456")
        #expect(text(withSocket.data) == "[]")
        let empty = try LaravelBroadcast(payload: buffer(#"{"event":"e","data":{},"socket":""}"#))
        #expect(empty.socket == nil)
        let number = try LaravelBroadcast(payload: buffer(#"{"event":"e","data":{},"socket":5}"#))
        #expect(number.socket == nil)
    }

    @Test("missing data becomes null; unknown members are ignored")
    func missingData() throws {
        let broadcast = try LaravelBroadcast(payload: buffer(#"{"extra":[1,2],"event":"e"}"#))
        #expect(text(broadcast.data) == "null")
        #expect(broadcast.event == "e")
    }

    @Test("payloads that are not broadcasts are refused")
    func errors() {
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"{"data":{"a":1},"socket":null}"#)) } == "missing 'event'")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"{"event":"","data":{}}"#)) } == "missing 'event'")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"{"event":1,"data":{}}"#)) } == "'event' is not a string")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"{"event":null,"data":{}}"#)) } == "'event' is not a string")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"["event","data"]"#)) } == "payload is not a JSON object (invalid JSON at byte 0: expected an object)")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer("hello world")) } == "payload is not a JSON object (invalid JSON at byte 0: expected an object)")
        #expect(parseFailure { try LaravelBroadcast(payload: buffer(#"{"event":"e"} x"#)) } == "payload is not a JSON object (invalid JSON at byte 14: trailing characters)")
        #expect(throws: LaravelBroadcast.ParseError.self) {
            try LaravelBroadcast(payload: buffer(#"{"event":"e","data":{"#))
        }
    }

    @Test("encoded() reproduces RedisBroadcaster's bytes")
    func roundTrip() throws {
        let broadcast = try LaravelBroadcast(payload: buffer(Self.wechat))
        #expect(text(broadcast.encoded()) == Self.wechat)

        let made = LaravelBroadcast(event: #"App\Events\OrderShipped"#, data: buffer(#"{"id":1}"#), socket: "1.2")
        #expect(text(made.encoded()) == #"{"event":"App\\Events\\OrderShipped","data":{"id":1},"socket":"1.2"}"#)
        let again = try LaravelBroadcast(payload: made.encoded())
        #expect(again.event == made.event)
        #expect(again.data == made.data)
        #expect(again.socket == "1.2")
    }
}

/// The reason `body` fails with, or `nil` when it does not throw a `ParseError`.
func parseFailure(_ body: () throws -> LaravelBroadcast) -> String? {
    do {
        _ = try body()
        return nil
    } catch let error as LaravelBroadcast.ParseError {
        return error.reason
    } catch {
        return "unexpected \(error)"
    }
}
