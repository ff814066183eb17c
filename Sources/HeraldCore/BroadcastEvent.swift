import NIOCore

/// A channel an event is broadcast on, as Laravel names them.
public enum BroadcastChannel: Sendable, Hashable {
    /// `new Channel('orders')` → `orders`.
    case `public`(String)
    /// `new PrivateChannel('orders.1')` → `private-orders.1`.
    case `private`(String)
    /// `new PresenceChannel('chat.1')` → `presence-chat.1`.
    case presence(String)

    /// The channel's wire name, with Laravel's prefix for its kind.
    public var name: String {
        switch self {
        case .public(let name): name
        case .private(let name): "private-" + name
        case .presence(let name): "presence-" + name
        }
    }
}

/// An event Swift code broadcasts, shaped like Laravel's `ShouldBroadcast`: it names its
/// channels (`broadcastOn`), its event name (`broadcastAs`) and its payload (`broadcastWith`).
///
/// ```swift
/// struct OrderShipped: BroadcastEvent {
///     let orderID: Int
///     var broadcastOn: [BroadcastChannel] { [.private("orders.\(orderID)")] }
///     var broadcastAs: String { "order.shipped" }
///     var broadcastWith: JSONValue { .object([JSONMember(key: "id", value: .number(String(orderID)))]) }
/// }
/// relay.broadcast(OrderShipped(orderID: 1))                     // in-process
/// try await RedisBroadcaster(connection: redis).broadcast(OrderShipped(orderID: 1))   // Laravel's wire format
/// ```
public protocol BroadcastEvent: Sendable {
    /// The channels to broadcast on.
    var broadcastOn: [BroadcastChannel] { get }
    /// The event name clients listen for. Defaults to the type's name, as Laravel defaults to
    /// the class name.
    var broadcastAs: String { get }
    /// The payload.
    var broadcastWith: JSONValue { get }
}

extension BroadcastEvent {
    /// The type's name (`OrderShipped`), as Laravel defaults to the event's class name.
    public var broadcastAs: String { String(describing: Self.self) }

    /// The Herald events this broadcast becomes, one per channel, sharing one encoded payload.
    /// `excludingSocketID` is Laravel's `toOthers()`.
    public func events(excludingSocketID: String? = nil, source: EventSource = .inProcess) -> [Event] {
        var payload = ByteBuffer()
        broadcastWith.write(into: &payload)
        return broadcastOn.map {
            Event(channel: $0.name, name: broadcastAs, data: payload, excludedSocketID: excludingSocketID, source: source)
        }
    }
}
