/// What pusher-js does when a connection is closed with a code (its `getCloseAction`), or when
/// the code is only sent as a `pusher:error`.
public enum PusherClientReaction: Sendable, Hashable {
    /// 4000: reconnect at once, using TLS.
    case reconnectWithTLS
    /// 4001–4099: the connection was refused; the client does not reconnect.
    case doNotReconnect
    /// 4100–4199 (and WebSocket 1002–1004): reconnect after a backoff of at least a second.
    case reconnectWithBackoff
    /// 4200–4299: reconnect immediately.
    case reconnectNow
    /// 4300–4399: sent as `pusher:error` only; the connection stays open.
    case noClose
}

/// The Pusher protocol's error codes, 4000–4399 (PROTOCOLS.md D.4).
///
/// Fatal codes are sent as `pusher:error` and then used as the WebSocket close code
/// (``closesConnection``); 43xx codes are sent as `pusher:error` only.
public enum PusherErrorCode: Int, Sendable, Hashable, CaseIterable {
    /// 4000: the application only accepts TLS connections.
    case tlsOnly = 4000
    /// 4001: no application has this key.
    case applicationDoesNotExist = 4001
    /// 4003: the application is disabled.
    case applicationDisabled = 4003
    /// 4004: the application is over its connection quota.
    case overConnectionQuota = 4004
    /// 4005: the path is not `/app/<key>`.
    case pathNotFound = 4005
    /// 4006: the `protocol` query value is not a version number.
    case invalidVersionString = 4006
    /// 4007: the protocol version is not supported.
    case unsupportedProtocolVersion = 4007
    /// 4008: the client sent no protocol version.
    case noProtocolVersion = 4008
    /// 4009: unauthorized (bad signin, signin timeout, terminated by the app).
    case unauthorized = 4009
    /// 4100: over capacity; try again later.
    case overCapacity = 4100
    /// 4200: generic "reconnect now".
    case genericReconnect = 4200
    /// 4201: the client did not answer a ping in time.
    case pongReplyNotReceived = 4201
    /// 4202: closed after a period of inactivity.
    case closedAfterInactivity = 4202
    /// 4301: a client event was rejected (rate limit, client events disabled, not a member).
    case clientEventRejected = 4301
    /// 4302: the server failed to handle the message.
    case serverError = 4302

    /// The standard message for the `pusher:error` (and the close reason).
    public var message: String {
        switch self {
        case .tlsOnly: "Application only accepts SSL connections, reconnect using wss://"
        case .applicationDoesNotExist: "Application does not exist"
        case .applicationDisabled: "Application disabled"
        case .overConnectionQuota: "Application is over connection quota"
        case .pathNotFound: "Path not found"
        case .invalidVersionString: "Invalid version string format"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        case .noProtocolVersion: "No protocol version supplied"
        case .unauthorized: "Connection is unauthorized"
        case .overCapacity: "Over capacity"
        case .genericReconnect: "Generic reconnect immediately"
        case .pongReplyNotReceived: "Pong reply not received in time"
        case .closedAfterInactivity: "Closed after inactivity"
        case .clientEventRejected: "Client event rejected"
        case .serverError: "Server error"
        }
    }

    /// Whether the connection is closed (with this code) after the `pusher:error`.
    public var closesConnection: Bool { rawValue < 4300 }

    /// How pusher-js reacts.
    public var clientReaction: PusherClientReaction { Self.clientReaction(forCloseCode: rawValue) }

    /// How pusher-js reacts to an arbitrary WebSocket close code (codes below 4000 count as a
    /// connection loss: reconnect with backoff; 4400 and above are "refused"). For 4300–4399 this is
    /// ``PusherClientReaction/noClose``: they are meant to be sent without closing (if used as a
    /// close code pusher-js would treat them as "refused").
    public static func clientReaction(forCloseCode code: Int) -> PusherClientReaction {
        switch code {
        case 4000: .reconnectWithTLS
        case 4001..<4100: .doNotReconnect
        case 4100..<4200: .reconnectWithBackoff
        case 4200..<4300: .reconnectNow
        case 4300..<4400: .noClose
        case 4400...: .doNotReconnect
        default: .reconnectWithBackoff
        }
    }
}
