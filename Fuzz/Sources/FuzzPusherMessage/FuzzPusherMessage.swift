import FuzzSupport
import HeraldCore
import HeraldProtocols
import NIOCore

// Pusher protocol 7 client frames: `PusherMessage(frame:)` and everything a session reads from
// one (data, subscribe/unsubscribe/signin, presence channel_data, user_data, the channel name,
// the signature check), plus round trips through the server-side encoders.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPusherMessage(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let message = try? PusherMessage(frame: input.buffer)
    fuzzCheck((try? PusherMessage(frame: input.offsetBuffer)) == message, "decode depends on the reader index")

    // Presence channel_data and signin user_data arrive as strings inside a frame; feed the
    // raw input to them as well.
    let text = String(decoding: input.bytes, as: UTF8.self)
    if let member = try? PusherPresenceMember(channelData: text, maxUserInfoBytes: 2048) {
        checkPresence(member)
    }
    _ = try? PusherUserData(userData: text)

    guard let message else { return 0 }
    fuzzCheck(!message.event.isEmpty && message.event.utf8.count <= PusherMessage.defaultMaxEventNameLength, "event name limits")
    if let channel = message.channel {
        fuzzCheck(channel.utf8.count <= PusherChannelName.defaultMaxLength, "channel name limit")
    }

    // Re-encode as a client would send it and decode again.
    var encoded = ByteBuffer()
    encoded.writeStaticString("{\"event\":")
    JSONValue.writeQuoted(message.event, into: &encoded)
    if let channel = message.channel {
        encoded.writeStaticString(",\"channel\":")
        JSONValue.writeQuoted(channel, into: &encoded)
    }
    if let data = message.data {
        encoded.writeStaticString(",\"data\":")
        encoded.writeImmutableBuffer(data)
    }
    encoded.writeStaticString("}")
    fuzzCheck((try? PusherMessage(frame: encoded)) == message, "client frame round trip: \(describe(encoded))")

    _ = try? message.dataValue()
    if let request = try? message.subscribeRequest() {
        if let name = try? PusherChannelName(request.channel), name.requiresAuthorization {
            _ = PusherSignature.verifyChannelAuth(
                request.auth ?? "", key: "app-key", secret: "app-secret", socketID: "123.456",
                channel: request.channel, channelData: request.channelData)
        }
        if let channelData = request.channelData, let member = try? PusherPresenceMember(channelData: channelData) {
            checkPresence(member)
        }
    }
    _ = try? message.unsubscribeChannel()
    if let signin = try? message.signinRequest() {
        _ = PusherSignature.verifySignin(signin.auth, key: "app-key", secret: "app-secret", socketID: "123.456", userData: signin.userData)
        _ = try? PusherUserData(userData: signin.userData)
    }

    // A client event is relayed with `data` verbatim; an app event string-encodes it once.
    if let data = message.data, let channel = message.channel {
        let relayed = PusherMessage.event(message.event, channel: channel, data: data, userID: "1", dataForm: .verbatim)
        let back = try? PusherMessage(frame: relayed)
        fuzzCheck(back?.event == message.event && back?.channel == channel && back?.data == data, "verbatim event round trip")
        let app = PusherMessage.event(message.event, channel: channel, data: data)
        guard let appMessage = try? PusherMessage(frame: app), let appData = appMessage.data,
              case .string(let string)? = try? JSONReader.parse(appData) else {
            fuzzCheck(false, "string-form event is not a frame with string data: \(describe(app))")
            return 0
        }
        if !isStringLiteral(data), isValidUTF8(data.readableBytesView) {
            fuzzCheck(Array(string.utf8) == Array(data.readableBytesView), "string-encoded data does not decode to the raw data")
        }
    }
    return 0
}

private func isStringLiteral(_ raw: ByteBuffer) -> Bool {
    raw.readableBytesView.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "\"")
}

/// A member's frames must be valid JSON and carry its id back.
private func checkPresence(_ member: PusherPresenceMember) {
    fuzzCheck(!member.userID.isEmpty, "empty user id accepted")
    let added = PusherMessage.memberAdded(channel: "presence-room", member: member)
    guard let frame = try? PusherMessage(frame: added), case .object(let fields)? = try? frame.dataValue() else {
        fuzzCheck(false, "member_added is not a frame with object data: \(describe(added))")
        return
    }
    fuzzCheck(fields.first { $0.key == "user_id" }?.value == .string(member.userID), "member_added user_id")
    let succeeded = PusherMessage.presenceSubscriptionSucceeded(channel: "presence-room", members: [member])
    fuzzCheck((try? JSONReader.validate(succeeded)) != nil, "subscription_succeeded is not JSON")
    guard case .object? = try? PusherMessage(frame: succeeded).dataValue() else {
        fuzzCheck(false, "subscription_succeeded data is not an object: \(describe(succeeded))")
        return
    }
}
