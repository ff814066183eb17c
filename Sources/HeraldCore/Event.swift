import NIOCore

/// Where an event entered Herald.
public enum EventSource: String, Sendable, Hashable {
    /// Laravel's RedisBroadcaster (or anything publishing its format) through Redis pub/sub.
    case redis
    /// Herald's HTTP publish API.
    case http
    /// Swift code in the same process.
    case inProcess
    /// A client event (whisper) sent by a connected client.
    case client
}

/// One event on its way to subscribers.
///
/// `data` is the payload as raw JSON bytes, exactly as the publisher sent it: Herald never
/// re-encodes it, so numbers, key order and escapes reach clients untouched.
public struct Event: Sendable {
    /// The channel, without any Redis key prefix (`orders`, `private-orders.1`).
    public var channel: String
    /// The event name (`App\Events\OrderShipped`, or a `broadcastAs()` name).
    public var name: String
    /// The payload: one JSON value, verbatim.
    public var data: ByteBuffer
    /// The socket id that must not receive the event (Laravel's `toOthers()`), if any.
    public var excludedSocketID: String?
    /// Where the event came from.
    public var source: EventSource
    /// For client events on presence channels: the sender's user id (Pusher adds it as
    /// `user_id` to the relayed message).
    public var senderUserID: String? = nil
    /// Whose channels ``channel`` is one of. `nil` (the default) is Herald's shared channels:
    /// those of Socket.IO clients, Redis-ingested Laravel events, laravel-echo-server's HTTP
    /// API, in-process publishing and the first Pusher app. A Pusher app after the first has
    /// channels of its own: its HTTP API and its clients' events carry its app id here, and
    /// they reach only that app's subscribers, even where another app uses the same channel
    /// name. ``channel`` stays the name subscribers see; plugins may read this to tell apps
    /// apart, and an event a plugin makes from another should keep its namespace.
    public var namespace: String? = nil

    /// Creates an event whose payload is `data`, one JSON value that is relayed byte for byte
    /// (Herald does not validate it here), for `channel` in `namespace` (`nil`: the shared
    /// channels).
    public init(channel: String, name: String, data: ByteBuffer, excludedSocketID: String? = nil, source: EventSource, namespace: String? = nil) {
        self.channel = channel
        self.name = name
        self.data = data
        self.excludedSocketID = excludedSocketID
        self.source = source
        self.namespace = namespace
    }

    /// Convenience: builds an event whose payload is the serialization of `json`.
    public init(channel: String, name: String, json: JSONValue, excludedSocketID: String? = nil, source: EventSource, namespace: String? = nil) {
        var buffer = ByteBuffer()
        json.write(into: &buffer)
        self.init(channel: channel, name: name, data: buffer, excludedSocketID: excludedSocketID, source: source, namespace: namespace)
    }

    /// The channel's kind, from its name.
    public var channelKind: ChannelKind { ChannelKind(channel) }
}

/// The kinds of channel, told apart by name prefix (anchored: `private-…` means a name that
/// starts with `private-`, unlike laravel-echo-server's unanchored match).
public enum ChannelKind: Sendable, Hashable {
    /// Any other name: anyone may subscribe.
    case `public`
    /// `private-…`: subscribing needs the application's authorization.
    case `private`
    /// `private-encrypted-…`: authorized like private channels; payloads are end-to-end encrypted
    /// by the publisher (Pusher).
    case privateEncrypted
    /// `presence-…`: authorized, and subscribers see who else is there.
    case presence

    /// The kind of the channel called `name`, by its leading bytes as Laravel and Pusher see
    /// them (`String.hasPrefix` compares whole characters: `"private-\u{301}x"` would not have
    /// the prefix, and a channel Laravel treats as private would be open to anyone).
    public init(_ name: String) {
        let utf8 = name.utf8
        if utf8.starts(with: "private-encrypted-".utf8) {
            self = .privateEncrypted
        } else if utf8.starts(with: "private-".utf8) {
            self = .private
        } else if utf8.starts(with: "presence-".utf8) {
            self = .presence
        } else {
            self = .public
        }
    }

    /// Whether subscribing needs the application's authorization.
    public var requiresAuthorization: Bool { self != .public }
}
