/// A validated Pusher channel name and what its prefix makes it (PROTOCOLS.md D.6, D.9).
///
/// Valid names match `^#?[-a-zA-Z0-9_=@,.;]+$` and are at most ``defaultMaxLength`` bytes
/// (hosted Pusher; Soketi allows 200 — pass `maxLength`).
public struct PusherChannelName: Sendable, Hashable, CustomStringConvertible {
    /// Hosted Pusher's limit on a channel name, in bytes.
    public static let defaultMaxLength = 164

    /// The prefix of the channel a signed-in user may subscribe to, followed by its user id.
    public static let serverToUserPrefix = "#server-to-user-"

    /// The kind of a channel, from its prefix.
    public enum Kind: Sendable, Hashable {
        /// No prefix (or `cache-`): anyone may subscribe, no client events.
        case `public`
        /// `private-` (or `private-cache-`): signed subscription, client events allowed.
        case `private`
        /// `private-encrypted-` (or `private-encrypted-cache-`): signed like private; data is
        /// end-to-end encrypted and relayed untouched; never client events.
        case privateEncrypted
        /// `presence-` (or `presence-cache-`): signed with `channel_data`, membership tracked.
        case presence
        /// `#server-to-user-<id>`: only the connection signed in as `<id>` may subscribe.
        case serverToUser
        /// Any other `#`-prefixed name: reserved by the protocol, not for clients.
        case reserved
    }

    /// Why a name was refused.
    public enum ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The name is empty.
        case empty
        /// The name is longer than `limit` bytes.
        case tooLong(limit: Int)
        /// The name has a character outside `-a-zA-Z0-9_=@,.;` (or a `#` not in first place).
        case invalidCharacter

        /// A one-line explanation, suitable for a subscription error or an HTTP 400 body.
        public var description: String {
            switch self {
            case .empty: "Channel name is empty"
            case .tooLong(let limit): "Channel name is longer than \(limit) characters"
            case .invalidCharacter: "Channel name contains invalid characters"
            }
        }
    }

    /// The name itself.
    public let name: String
    /// The kind its prefix gives it.
    public let kind: Kind
    /// Whether it is a cache channel (`cache-`, `private-cache-`, `private-encrypted-cache-`,
    /// `presence-cache-`).
    public let isCache: Bool

    /// Validates `name` and classifies it.
    public init(_ name: String, maxLength: Int = PusherChannelName.defaultMaxLength) throws(ValidationError) {
        try Self.validate(name, maxLength: maxLength)
        self.name = name
        (self.kind, self.isCache) = Self.classify(name)
    }

    /// The name.
    public var description: String { name }

    /// Checks a name against the character set and the length limit.
    public static func validate(_ name: String, maxLength: Int = PusherChannelName.defaultMaxLength) throws(ValidationError) {
        let utf8 = name.utf8
        guard !utf8.isEmpty else { throw .empty }
        guard utf8.count <= maxLength else { throw .tooLong(limit: maxLength) }
        var body = Substring(name).utf8[...]
        if body.first == UInt8(ascii: "#") { body = body.dropFirst() }
        guard !body.isEmpty, body.allSatisfy(isNameByte) else { throw .invalidCharacter }
    }

    /// Whether `name` is a valid channel name.
    public static func isValid(_ name: String, maxLength: Int = PusherChannelName.defaultMaxLength) -> Bool {
        (try? validate(name, maxLength: maxLength)) != nil
    }

    /// The kind of `name` by prefix alone (no validation).
    public static func kind(of name: String) -> Kind { classify(name).kind }

    /// Whether `name` is a cache channel (`cache-`, `private-cache-`, `private-encrypted-cache-`,
    /// `presence-cache-`), by prefix alone (no validation). Cheap enough for every event: names
    /// not starting with `c` or `p` are answered from their first byte.
    public static func isCacheChannel(_ name: String) -> Bool {
        switch name.utf8.first {
        case UInt8(ascii: "c"): name.hasPrefix("cache-")
        case UInt8(ascii: "p"):
            name.hasPrefix("private-cache-") || name.hasPrefix("presence-cache-") || name.hasPrefix("private-encrypted-cache-")
        default: false
        }
    }

    /// Whether subscribing needs a signature (`auth`).
    public var requiresAuthorization: Bool {
        switch kind {
        case .private, .privateEncrypted, .presence: true
        case .public, .serverToUser, .reserved: false
        }
    }

    /// Whether clients may send `client-*` events on it (private and presence only).
    public var allowsClientEvents: Bool { kind == .private || kind == .presence }

    /// For `#server-to-user-<id>`, the user id; otherwise `nil`.
    public var serverToUserID: String? {
        guard kind == .serverToUser else { return nil }
        return String(name.dropFirst(Self.serverToUserPrefix.count))
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: ","),
             UInt8(ascii: "."), UInt8(ascii: ";"):
            true
        default:
            false
        }
    }

    private static func classify(_ name: String) -> (kind: Kind, isCache: Bool) {
        if name.hasPrefix("#") {
            if name.hasPrefix(serverToUserPrefix), name.utf8.count > serverToUserPrefix.utf8.count {
                return (.serverToUser, false)
            }
            return (.reserved, false)
        }
        if name.hasPrefix("private-encrypted-") {
            return (.privateEncrypted, name.hasPrefix("private-encrypted-cache-"))
        }
        if name.hasPrefix("private-") { return (.private, name.hasPrefix("private-cache-")) }
        if name.hasPrefix("presence-") { return (.presence, name.hasPrefix("presence-cache-")) }
        return (.public, name.hasPrefix("cache-"))
    }
}
