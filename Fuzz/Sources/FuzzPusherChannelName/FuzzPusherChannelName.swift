import FuzzSupport
import HeraldProtocols

// Pusher channel names: validation against a plain reading of `^#?[-a-zA-Z0-9_=@,.;]+$` (at
// most 164 bytes), and the classification's accessors agreeing with each other.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPusherChannelName(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let name = String(decoding: input.bytes, as: UTF8.self)
    let valid = PusherChannelName.isValid(name)
    fuzzCheck(valid == referenceIsValid(Array(name.utf8)), "validation disagrees with the reference for \(name.debugDescription)")
    fuzzCheck(PusherChannelName.isValid(name, maxLength: Int.max) == referenceIsValid(Array(name.utf8), maxLength: Int.max), "maxLength")

    // Classification works on any string (no validation), and agrees with itself.
    let kind = PusherChannelName.kind(of: name)
    let isCache = PusherChannelName.isCacheChannel(name)
    guard let channel = try? PusherChannelName(name) else { return 0 }
    fuzzCheck(channel.kind == kind && channel.isCache == isCache, "kind/isCache disagree")
    if let userID = channel.serverToUserID {
        fuzzCheck(!userID.isEmpty && PusherChannelName.serverToUserPrefix + userID == name, "server-to-user id")
    } else {
        fuzzCheck(kind != .serverToUser, "server-to-user channel without an id")
    }
    fuzzCheck(channel.allowsClientEvents == (kind == .private || kind == .presence), "client events")
    return 0
}

private func referenceIsValid(_ utf8: [UInt8], maxLength: Int = PusherChannelName.defaultMaxLength) -> Bool {
    guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
    let body = utf8.first == UInt8(ascii: "#") ? utf8.dropFirst() : utf8[...]
    let allowed = Set("-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=@,.;".utf8)
    return !body.isEmpty && body.allSatisfy { allowed.contains($0) }
}
