import HeraldCore
import HeraldProtocols
import NIOCore

/// A member of a presence channel, as the application's auth endpoint described it
/// (`channel_data`: `{"user_id":…,"user_info":…}`).
public struct PresenceMember: Sendable, Hashable {
    /// The user id, as JSON (a number or a string, kept as sent).
    public var userID: JSONValue
    /// Whatever the app put in `user_info` (`null` when absent).
    public var userInfo: JSONValue

    public init(userID: JSONValue, userInfo: JSONValue = .null) {
        self.userID = userID
        self.userInfo = userInfo
    }

    /// Builds a member from `channel_data` (an object, or a JSON string holding one).
    /// Returns `nil` when there is no usable `user_id`.
    public init?(channelData: JSONValue) {
        var data = channelData
        if case .string(let text) = channelData, let parsed = try? JSONReader.parse(text) { data = parsed }
        guard let id = data["user_id"] else { return nil }
        switch id {
        case .string(let s) where !s.isEmpty: break
        case .number: break
        default: return nil
        }
        self.init(userID: id, userInfo: data["user_info"] ?? .null)
    }

    /// The key members are de-duplicated by: `1` and `"1"` are the same user.
    public var key: String {
        if case .string(let s) = userID { return s }
        if case .number(let n) = userID { return n }
        return userID.serialized
    }

    /// `{"user_id":…,"user_info":…}` plus, when given, laravel-echo-server's `socketId`.
    func json(socketID: String? = nil) -> JSONValue {
        var members = [JSONMember(key: "user_id", value: userID), JSONMember(key: "user_info", value: userInfo)]
        if let socketID { members.append(JSONMember(key: "socketId", value: .string(socketID))) }
        return .object(members)
    }
}

extension PresenceMember {
    /// The member in Pusher's form: the id as a string, `user_info` as raw JSON.
    var pusherMember: PusherPresenceMember {
        guard userInfo != .null else { return PusherPresenceMember(userID: key) }
        var info = ByteBuffer()
        userInfo.write(into: &info)
        return PusherPresenceMember(userID: key, userInfo: info)
    }

    /// A member from Pusher's `channel_data`: the id is a string, so `"7"` and Laravel's `7`
    /// are the same user across protocols.
    init(_ pusher: PusherPresenceMember) {
        var info: JSONValue = .null
        if let bytes = pusher.userInfo, let parsed = try? JSONReader.parse(bytes) { info = parsed }
        self.init(userID: .string(pusher.userID), userInfo: info)
    }
}

/// Membership of one presence channel: users, each with the connections they have in it.
///
/// Kept in the ``ChannelRegistry`` next to the channel's subscribers; designed so the
/// scale-out work can mirror it per node into Redis (user → connections is exactly what a
/// per-node hash with a TTL holds).
struct PresenceChannel: Sendable {
    struct Entry: Sendable {
        var member: PresenceMember
        /// Connections of this user in the channel: session → socket id, newest last.
        var connections: [(session: ObjectIdentifier, socketID: String)]
        /// Join order, for "newest first" listings.
        var sequence: Int
    }

    var users: [String: Entry] = [:]
    /// The user each connection joined as (so a sender's user id is found without a scan).
    private var userBySession: [ObjectIdentifier: String] = [:]
    private var nextSequence = 0

    /// The user id (``PresenceMember/key``) a connection joined as.
    func userID(of session: ObjectIdentifier) -> String? { userBySession[session] }

    /// Adds a connection; returns true when it is the user's first connection here.
    mutating func join(_ member: PresenceMember, session: ObjectIdentifier, socketID: String) -> Bool {
        nextSequence += 1
        userBySession[session] = member.key
        if var entry = users[member.key] {
            entry.connections.removeAll { $0.session == session }
            entry.connections.append((session, socketID))
            entry.member = member
            entry.sequence = nextSequence
            users[member.key] = entry
            return false
        }
        users[member.key] = Entry(member: member, connections: [(session, socketID)], sequence: nextSequence)
        return true
    }

    /// Removes a connection; returns its member, and whether that was the user's last
    /// connection here. `nil` when the connection was not a member.
    mutating func leave(session: ObjectIdentifier) -> (member: PresenceMember, last: Bool)? {
        guard let key = userBySession.removeValue(forKey: session), var entry = users[key] else { return nil }
        entry.connections.removeAll { $0.session == session }
        if entry.connections.isEmpty {
            users[key] = nil
            return (entry.member, true)
        }
        users[key] = entry
        return (entry.member, false)
    }

    /// Every connection of every member: socket id and member.
    var connections: [(socketID: String, member: PresenceMember)] {
        users.values.flatMap { entry in entry.connections.map { ($0.socketID, entry.member) } }
    }

    /// Distinct users, newest first, each with its newest connection's socket id.
    var members: [(member: PresenceMember, socketID: String)] {
        users.values.sorted { $0.sequence > $1.sequence }.map { ($0.member, $0.connections.last?.socketID ?? "") }
    }
}
