import FuzzSupport
import HeraldCore
import HeraldProtocols
import NIOCore

// The Pusher HTTP API request path: the input is `METHOD\npath\nquery\nbody`. The query is
// parsed and the request's signature checked as `PusherHTTPAPIHandler` does; the body is
// parsed as `POST /events` and as `POST /batch_events`. Invariants: a request signed with
// `signedQuery` always verifies, a percent-encoded query parses back to its items, and every
// accepted event encodes to a valid Pusher frame.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPusherHTTPAPI(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let parts = input.split(separator: UInt8(ascii: "\n"), maxSplits: 3)
    let method = String(decoding: parts[0], as: UTF8.self)
    let path = PusherHTTPAPI.percentDecode(String(decoding: parts[1], as: UTF8.self))
    let query = PusherHTTPAPI.parseQuery(String(decoding: parts[2], as: UTF8.self))
    let body = ByteBuffer(bytes: parts[3])
    let key = "app-key", secret = "app-secret", now: Int64 = 1_700_000_000

    _ = try? PusherSignature.verifyRequest(method: method, path: path, query: query, body: body, key: key, secret: secret, now: now)
    _ = PusherHTTPAPI.parseInfo(query.first { $0.name == "info" }?.value)

    // Sign, then verify: must pass, for any method, path, query and body.
    let signed = PusherSignature.signedQuery(method: method, path: path, query: query, body: body, key: key, secret: secret, timestamp: now)
    do {
        try PusherSignature.verifyRequest(method: method, path: path, query: signed, body: body, key: key, secret: secret, now: now)
    } catch {
        fuzzCheck(false, "a signed request does not verify: \(error)")
    }

    // The query string form of the signed items parses back to them.
    let encodedQuery = signed.map { percentEncode($0.name) + "=" + percentEncode($0.value) }.joined(separator: "&")
    let reparsed = PusherHTTPAPI.parseQuery(encodedQuery)
    fuzzCheck(reparsed.map(\.name) == signed.map(\.name) && reparsed.map(\.value) == signed.map(\.value), "query round trip: \(encodedQuery)")

    if let event = try? PusherHTTPAPI.parseEvent(body: body) {
        check(event)
    }
    if let batch = try? PusherHTTPAPI.parseBatch(body: body) {
        fuzzCheck(batch.count <= PusherHTTPAPI.Limits().maxBatchSize, "batch limit")
        batch.forEach(check)
    }
    return 0
}

private func check(_ event: PusherTriggerRequest) {
    let limits = PusherHTTPAPI.Limits()
    fuzzCheck(!event.name.isEmpty && event.name.utf8.count <= limits.maxEventNameLength, "event name limits")
    fuzzCheck(!event.channels.isEmpty && event.channels.count <= limits.maxChannelsPerEvent, "channel count limits")
    for channel in event.channels {
        fuzzCheck(PusherChannelName.isValid(channel), "invalid channel accepted: \(channel.debugDescription)")
        let frame = PusherMessage.event(event.name, channel: channel, data: event.data)
        fuzzCheck((try? JSONReader.validate(frame)) != nil, "event frame is not JSON: \(describe(frame))")
        let message = try? PusherMessage(frame: frame)
        fuzzCheck(message?.event == event.name && message?.channel == channel, "event frame round trip")
    }
    if let socketID = event.socketID { fuzzCheck(PusherSocketID.isValid(socketID), "invalid socket_id accepted") }
}

/// RFC 3986 unreserved bytes stay, everything else is `%XX`.
private func percentEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
        }
    }
    return out
}
