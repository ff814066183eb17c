import HeraldCore
import HeraldProtocols
import NIOCore
import Synchronization

/// The limits of missed-message recovery (RECOVERY.md): how much of each channel's recent
/// history Herald keeps in memory so that a client which opted in and reconnects gets the events
/// it missed.
///
/// Set ``HeraldConfiguration/history`` to turn recovery on; `nil` (the default) keeps nothing,
/// costs nothing per event, and ignores the protocol extension (clients see exactly what they
/// see on a server without it). Events are kept per channel, for at most ``maxAge`` and at most
/// ``maxEventsPerChannel`` events, and all channels together hold at most about ``maxBytes``:
/// past it the oldest entries are evicted (see ``ChannelHistory``).
public struct ChannelHistoryConfiguration: Sendable, Hashable {
    /// Most events kept per channel; older ones are dropped as new ones arrive.
    public var maxEventsPerChannel: Int
    /// How long an event is kept: a client away longer than this on a channel that had events
    /// meanwhile is told `recovered: false`.
    public var maxAge: Duration
    /// The memory bound of the whole history, in bytes (events' data, names and bookkeeping,
    /// approximately). Past it, channels with no events left are forgotten first, then the
    /// oldest events of any channel.
    public var maxBytes: Int

    /// Default ``maxEventsPerChannel``.
    public static let defaultMaxEventsPerChannel = 100
    /// Default ``maxAge``.
    public static let defaultMaxAge = Duration.seconds(120)
    /// Default ``maxBytes`` (32 MiB).
    public static let defaultMaxBytes = 32 << 20

    /// - Parameters: see the properties; each is clamped to a usable minimum (1 event, 1 ms,
    ///   64 KiB).
    public init(
        maxEventsPerChannel: Int = ChannelHistoryConfiguration.defaultMaxEventsPerChannel,
        maxAge: Duration = ChannelHistoryConfiguration.defaultMaxAge,
        maxBytes: Int = ChannelHistoryConfiguration.defaultMaxBytes
    ) {
        self.maxEventsPerChannel = max(1, maxEventsPerChannel)
        self.maxAge = max(.milliseconds(1), maxAge)
        self.maxBytes = max(64 << 10, maxBytes)
    }
}

/// What a client asks for in its subscribe message (`herald_recovery`, RECOVERY.md): `true` on a
/// first subscription (no position yet), or the position it had —
/// `{"epoch":"…","offset":41,"socket_id":"<its previous socket id>"}`.
struct RecoveryRequest: Sendable, Hashable {
    /// Where the client stands.
    enum Position: Sendable, Hashable {
        /// No position: a first subscription (`true`), or one Herald could not read.
        case none
        /// The last offset the client saw on the channel, in the history of `epoch`.
        case resume(epoch: String, offset: UInt64)
    }

    /// The member of the subscribe data that carries the request.
    static let field = "herald_recovery"

    /// Where the client stands.
    var position: Position
    /// The socket id of the connection the client had before (events published `toOthers()`
    /// from it are not replayed to it).
    var previousSocketID: String?

    init(position: Position, previousSocketID: String? = nil) {
        self.position = position
        self.previousSocketID = previousSocketID
    }

    /// The request `value` (the subscribe data's `herald_recovery`) makes: `nil` (no recovery)
    /// when it is absent, `null`, `false` or not an object; an object without a usable epoch and
    /// offset asks for recovery with no position (the answer is `recovered: false` and the
    /// current position).
    init?(_ value: JSONValue?) {
        switch value {
        case .bool(true)?:
            self.init(position: .none)
        case .object?:
            var position = Position.none
            if case .string(let epoch)? = value?["epoch"], case .number(let literal)? = value?["offset"], let offset = UInt64(literal) {
                position = .resume(epoch: epoch, offset: offset)
            }
            var previous: String? = nil
            if case .string(let socketID)? = value?["socket_id"], !socketID.isEmpty, socketID.utf8.count <= 200 {
                previous = socketID
            }
            self.init(position: position, previousSocketID: previous)
        default:
            return nil
        }
    }
}

/// A bounded, in-memory history of each channel's recent events, for missed-message recovery
/// (RECOVERY.md).
///
/// ``Router`` records every event once, after the plugins and before fan-out (one short lock;
/// the event's data buffer is kept as it is, never copied), and gets the event's *offset*: a
/// number from one counter of the whole process, so each channel's offsets increase (not by one:
/// other channels' events take numbers in between). The process's random ``epoch`` names this
/// numbering; another process (a restart, another node) has another one.
///
/// A client that opted in resubscribes with the epoch and the last offset it saw; ``recover``
/// answers with the events it missed (all of them, or `recovered: false` when some are gone:
/// another epoch, older than ``ChannelHistoryConfiguration/maxAge``, pushed out by
/// ``ChannelHistoryConfiguration/maxEventsPerChannel`` or the memory bound).
///
/// Bookkeeping, all under one lock: each channel's entries in offset order with the highest
/// offset dropped from it (`droppedThrough`); one queue of every entry in recording (so age)
/// order, which expiry and memory eviction pop from the front; channels whose entries are all
/// gone stay as small *tombstones* holding their last offset, so a client on a quiet channel
/// still recovers (it missed nothing). Under memory pressure tombstones go first, then the
/// oldest entries. Forgetting a channel raises a *floor* in one of 4,096 buckets (by the
/// channel's hash): a channel with no record recovers only from positions at or above its
/// bucket's floor, which keeps the answer safe (never `true` when something was missed) at a
/// small risk of a needless `false`. Expired entries are released on the next event or
/// recovery.
final class ChannelHistory: Sendable {
    /// One recorded event.
    struct Entry: Sendable {
        /// The event's offset.
        let offset: UInt64
        /// The event's name.
        let name: String
        /// The event's data, raw JSON, as routed.
        let data: ByteBuffer
        /// The socket the event must not reach (`toOthers()`).
        let excludedSocketID: String?
        /// The sender's presence user id (client events on presence channels).
        let userID: String?
        /// How the data goes into a Pusher frame.
        let dataForm: PusherMessage.DataForm
        /// When it was recorded.
        let recorded: NIODeadline
        /// What it counts against the memory bound.
        let bytes: Int
    }

    /// The answer to a recovery request.
    struct Recovery: Sendable {
        /// This process's epoch.
        let epoch: String
        /// The client's new position: every event of the channel up to it was replayed (or
        /// dropped, with `recovered: false`); every later one comes live.
        let offset: UInt64
        /// Whether ``events`` are all the client missed since the position it gave.
        let recovered: Bool
        /// The missed events, oldest first (without those excluded for this client).
        let events: [Entry]
    }

    /// The limits.
    let configuration: ChannelHistoryConfiguration
    /// This process's epoch: 16 random hex digits.
    let epoch: String
    private let maxAge: TimeAmount
    private let state: Mutex<State>

    /// Bookkeeping bytes counted per entry beyond its data, name and ids (the entry, its place
    /// in the age queue).
    static let entryOverhead = 128
    /// Bookkeeping bytes counted per channel beyond its name.
    static let channelOverhead = 160
    /// Buckets of the floors of forgotten channels.
    static let floorBuckets = 4_096

    init(configuration: ChannelHistoryConfiguration, epoch: String = ChannelHistory.randomEpoch()) {
        self.configuration = configuration
        self.epoch = epoch
        let (seconds, attoseconds) = configuration.maxAge.components
        self.maxAge = .nanoseconds(seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow ? .max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        self.state = Mutex(State(maxEvents: configuration.maxEventsPerChannel, maxBytes: configuration.maxBytes))
    }

    /// A new random epoch (16 lowercase hex digits).
    static func randomEpoch() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Records `event` (on its ``ChannelKey``) and returns its offset.
    func record(_ event: Event, dataForm: PusherMessage.DataForm, now: NIODeadline = .now()) -> UInt64 {
        let channel = ChannelKey(event)
        let bytes = Self.entryOverhead + event.data.readableBytes + event.name.utf8.count
            + (event.excludedSocketID?.utf8.count ?? 0) + (event.senderUserID?.utf8.count ?? 0)
        let overhead = Self.channelOverhead + channel.name.utf8.count + (channel.namespace?.utf8.count ?? 0)
        let bucket = Self.bucket(channel)
        let cutoff = now - maxAge
        return state.withLock { state in
            state.expire(before: cutoff)
            state.counter += 1
            let entry = Entry(
                offset: state.counter, name: event.name, data: event.data, excludedSocketID: event.excludedSocketID,
                userID: event.senderUserID, dataForm: dataForm, recorded: now, bytes: bytes
            )
            let floor = state.floors[bucket]
            state.append(entry, to: channel, overhead: overhead, floor: floor)
            return entry.offset
        }
    }

    /// The answer to `request` for `channel`, for a client whose socket id is `socketID`:
    /// the events after its position (skipping those published `toOthers()` from `socketID` or
    /// from the request's previous socket id) and whether that is everything it missed.
    func recover(_ channel: ChannelKey, request: RecoveryRequest, socketID: String?, now: NIODeadline = .now()) -> Recovery {
        let bucket = Self.bucket(channel)
        let cutoff = now - maxAge
        let epoch = self.epoch
        return state.withLock { state in
            state.expire(before: cutoff)
            let position = state.counter
            guard case .resume(let clientEpoch, let offset) = request.position, clientEpoch == epoch, offset <= position else {
                return Recovery(epoch: epoch, offset: position, recovered: false, events: [])
            }
            guard let record = state.records[channel] else {
                // Never recorded, or forgotten: safe only from at or above its bucket's floor.
                return Recovery(epoch: epoch, offset: position, recovered: offset >= state.floors[bucket], events: [])
            }
            guard offset >= record.droppedThrough else {
                return Recovery(epoch: epoch, offset: position, recovered: false, events: [])
            }
            var events: [Entry] = []
            for entry in record.entries where entry.offset > offset {
                if let excluded = entry.excludedSocketID, excluded == socketID || excluded == request.previousSocketID { continue }
                events.append(entry)
            }
            return Recovery(epoch: epoch, offset: position, recovered: true, events: events)
        }
    }

    /// What the history holds now (for tests and the status page).
    var statistics: (channels: Int, events: Int, bytes: Int) {
        state.withLock { ($0.records.count, $0.entryCount, $0.bytes) }
    }

    private static func bucket(_ channel: ChannelKey) -> Int {
        channel.hashValue & (floorBuckets - 1)
    }

    // MARK: State

    private struct Record {
        /// Entries, oldest first; offsets increase.
        var entries = CircularBuffer<Entry>(initialCapacity: 4)
        /// The offset of the channel's newest event (0: none yet).
        var lastOffset: UInt64 = 0
        /// The highest offset of this channel no longer kept (or the bucket's floor when the
        /// record was made): recovery from below it is impossible.
        var droppedThrough: UInt64
        /// What the record itself counts against the memory bound.
        let overhead: Int
    }

    /// One entry's place in the age queue.
    private struct Recorded {
        let channel: ChannelKey
        let offset: UInt64
        let recorded: NIODeadline
    }

    /// A channel that lost its last entry (a tombstone), in the order they became one.
    private struct Emptied {
        let channel: ChannelKey
        let lastOffset: UInt64
    }

    private struct State {
        let maxEvents: Int
        let maxBytes: Int
        var records: [ChannelKey: Record] = [:]
        /// Every kept entry in recording order, plus stale places of entries already dropped
        /// per channel (skipped when popped; compacted when they outnumber the live ones).
        var order = CircularBuffer<Recorded>()
        /// Tombstones, oldest first, plus stale places of revived ones (same treatment).
        var emptied = CircularBuffer<Emptied>()
        var entryCount = 0
        var tombstoneCount = 0
        var counter: UInt64 = 0
        var bytes = 0
        var floors = [UInt64](repeating: 0, count: ChannelHistory.floorBuckets)

        init(maxEvents: Int, maxBytes: Int) {
            self.maxEvents = maxEvents
            self.maxBytes = maxBytes
        }

        mutating func append(_ entry: Entry, to channel: ChannelKey, overhead: Int, floor: UInt64) {
            let (created, revived, count) = Self.append(entry, to: &records[channel, default: Record(droppedThrough: floor, overhead: overhead)])
            if created { bytes += overhead }
            if revived { tombstoneCount -= 1 }
            order.append(Recorded(channel: channel, offset: entry.offset, recorded: entry.recorded))
            entryCount += 1
            bytes += entry.bytes
            if count > maxEvents { dropFirst(of: channel) }
            while bytes > maxBytes, evictOne() {}
            compactIfNeeded()
        }

        private static func append(_ entry: Entry, to record: inout Record) -> (created: Bool, revived: Bool, count: Int) {
            let created = record.lastOffset == 0
            let revived = !created && record.entries.isEmpty
            record.entries.append(entry)
            record.lastOffset = entry.offset
            return (created, revived, record.entries.count)
        }

        /// Drops every entry recorded before `cutoff`.
        mutating func expire(before cutoff: NIODeadline) {
            while let head = order.first, head.recorded < cutoff {
                order.removeFirst()
                if isFirst(head) { dropFirst(of: head.channel) }
            }
        }

        /// Whether `place` is its channel's oldest kept entry (else it is stale).
        private func isFirst(_ place: Recorded) -> Bool {
            records[place.channel]?.entries.first?.offset == place.offset
        }

        /// Whether `place`'s entry is still kept: a channel's entries are dropped oldest first.
        private func isLive(_ place: Recorded) -> Bool {
            guard let first = records[place.channel]?.entries.first?.offset else { return false }
            return first <= place.offset
        }

        private func isTombstone(_ place: Emptied) -> Bool {
            guard let record = records[place.channel] else { return false }
            return record.entries.isEmpty && record.lastOffset == place.lastOffset
        }

        /// Drops `channel`'s oldest entry; the channel becomes a tombstone when it was its last.
        private mutating func dropFirst(of channel: ChannelKey) {
            guard let entry = records[channel]?.entries.popFirst() else { return }
            records[channel]?.droppedThrough = entry.offset
            entryCount -= 1
            bytes -= entry.bytes
            if records[channel]?.entries.isEmpty == true {
                emptied.append(Emptied(channel: channel, lastOffset: entry.offset))
                tombstoneCount += 1
            }
        }

        /// Frees something under memory pressure: the oldest tombstone, else the oldest entry.
        /// Returns false when nothing is left.
        private mutating func evictOne() -> Bool {
            while let place = emptied.popFirst() {
                guard isTombstone(place), let record = records.removeValue(forKey: place.channel) else { continue }
                tombstoneCount -= 1
                bytes -= record.overhead
                let bucket = ChannelHistory.bucket(place.channel)
                floors[bucket] = max(floors[bucket], record.lastOffset)
                return true
            }
            while let place = order.popFirst() {
                guard isFirst(place) else { continue }
                dropFirst(of: place.channel)
                return true
            }
            return false
        }

        /// Removes stale places once they outnumber the live ones (amortised O(1) per event).
        private mutating func compactIfNeeded() {
            if order.count > 2 * entryCount + 1_024 {
                let live = order.filter { isLive($0) }
                order = CircularBuffer(live)
            }
            if emptied.count > 2 * tombstoneCount + 1_024 {
                let live = emptied.filter { isTombstone($0) }
                emptied = CircularBuffer(live)
            }
        }
    }
}

/// One event on its way to subscribers, as subscribers that opted in to recovery get it: with
/// its offset. The router makes one per event only while history is on and the channel has
/// subscribers; each form is encoded the first time a recipient needs it, then shared (encoded
/// once per event, never per recipient), so connections that did not opt in cost nothing.
final class RecoverableEvent: Sendable {
    /// The channel's name (as subscribers know it).
    let channel: String
    /// The event's offset in the channel's history.
    let offset: UInt64
    private let name: String
    private let data: ByteBuffer
    private let userID: String?
    private let dataForm: PusherMessage.DataForm
    private let encoded = Mutex(Encoded())

    private struct Encoded {
        var packet: ByteBuffer?
        var frame: ByteBuffer?
        var pusherFrame: ByteBuffer?
    }

    init(_ event: Event, dataForm: PusherMessage.DataForm, offset: UInt64) {
        self.channel = event.channel
        self.offset = offset
        self.name = event.name
        self.data = event.data
        self.userID = event.senderUserID
        self.dataForm = dataForm
    }

    /// `42["event","channel",data,{"herald_offset":N}]` (Engine.IO message, for polling).
    var socketIOPacket: ByteBuffer {
        encoded.withLock { encoded in
            if let packet = encoded.packet { return packet }
            let packet = RecoveryWire.socketIOEvent(name: name, channel: channel, data: data, offset: offset)
            encoded.packet = packet
            return packet
        }
    }

    /// ``socketIOPacket`` as a WebSocket text frame.
    var socketIOFrame: ByteBuffer {
        encoded.withLock { encoded in
            if let frame = encoded.frame { return frame }
            let packet = encoded.packet ?? RecoveryWire.socketIOEvent(name: name, channel: channel, data: data, offset: offset)
            encoded.packet = packet
            let frame = WebSocketFraming.frame(opcode: .text, payload: packet)
            encoded.frame = frame
            return frame
        }
    }

    /// `{"event","channel","data","herald_offset":N}` as a WebSocket text frame.
    var pusherFrame: ByteBuffer {
        encoded.withLock { encoded in
            if let frame = encoded.pusherFrame { return frame }
            let message = RecoveryWire.pusherEvent(name: name, channel: channel, data: data, userID: userID, dataForm: dataForm, offset: offset)
            let frame = WebSocketFraming.frame(opcode: .text, payload: message)
            encoded.pusherFrame = frame
            return frame
        }
    }
}

/// A connection's recovery state for one channel (``EngineSession`` and ``PusherSession``
/// keep one per channel that opted in, keyed by name).
enum RecoveryState: Sendable {
    /// The subscribe asked for recovery; the subscription is not admitted yet.
    case pending(RecoveryRequest)
    /// Subscribed with recovery: live events carry offsets; those at or below this position
    /// were replayed already and are skipped.
    case position(UInt64)
}

/// One session's recovery states, per channel by its exact bytes (as ``ChannelNameSet``): what
/// the sessions of both protocols keep between a `subscribe` asking for recovery and its
/// admission, and then while live events carry offsets.
struct SessionRecoveries: Sendable {
    private var states: [ChannelNameSet.ExactName: RecoveryState] = [:]

    /// Whether no channel asked for recovery (the fan-out's cheap first check).
    var isEmpty: Bool { states.isEmpty }

    /// `channel`'s state, when its subscription asked for recovery.
    subscript(channel: String) -> RecoveryState? { states[ChannelNameSet.ExactName(name: channel)] }

    /// A subscribe to `channel` arrived asking for `request` (`nil`: asking for none, which
    /// forgets an earlier request). With `limit` states kept, those of channels `isLive` no
    /// longer holds go first, so requests of refused or abandoned subscriptions do not pile up.
    mutating func note(_ channel: String, _ request: RecoveryRequest?, limit: Int, isLive: (String) -> Bool) {
        let key = ChannelNameSet.ExactName(name: channel)
        guard let request else {
            if !states.isEmpty { states[key] = nil }
            return
        }
        if states.count >= limit { states = states.filter { isLive($0.key.name) } }
        states[key] = .pending(request)
    }

    /// `channel`'s subscription was admitted: its pending request, to be answered now; `nil`
    /// (and the state forgotten) when it asked for none or is not `subscribed` after all.
    mutating func admit(_ channel: String, subscribed: Bool) -> RecoveryRequest? {
        let key = ChannelNameSet.ExactName(name: channel)
        guard case .pending(let request)? = states[key], subscribed else {
            states[key] = nil
            return nil
        }
        return request
    }

    /// `channel`'s missed events up to `offset` were replayed: live events at or below it are
    /// skipped, later ones carry their offsets.
    mutating func replayed(_ channel: String, upTo offset: UInt64) {
        states[ChannelNameSet.ExactName(name: channel)] = .position(offset)
    }
}

/// The wire forms of the recovery extension (RECOVERY.md).
enum RecoveryWire {
    /// The name of the notice that ends a recovery.
    static let noticeEvent = "herald:recovery"

    /// laravel-echo-server's event with a fourth argument, `{"herald_offset":N}`:
    /// `42["event","channel",data,{"herald_offset":N}]`.
    static func socketIOEvent(name: String, channel: String, data: ByteBuffer, offset: UInt64) -> ByteBuffer {
        var packet = ByteBuffer()
        packet.reserveCapacity(data.readableBytes + name.utf8.count + channel.utf8.count + 48)
        SocketIOCodec.writeChannelEvent(event: name, channel: channel, data: data, into: &packet)
        // Replace the closing `]`.
        packet.moveWriterIndex(to: packet.writerIndex - 1)
        packet.writeString(",{\"herald_offset\":\(offset)}]")
        return packet
    }

    /// ``socketIOEvent(name:channel:data:offset:)`` for a recorded entry.
    static func socketIOEvent(_ entry: ChannelHistory.Entry, channel: String) -> ByteBuffer {
        socketIOEvent(name: entry.name, channel: channel, data: entry.data, offset: entry.offset)
    }

    /// Pusher's event with one more top-level member:
    /// `{"event","channel","data"[,"user_id"],"herald_offset":N}`.
    static func pusherEvent(name: String, channel: String, data: ByteBuffer, userID: String?, dataForm: PusherMessage.DataForm, offset: UInt64) -> ByteBuffer {
        var message = PusherMessage.event(name, channel: channel, data: data, userID: userID, dataForm: dataForm)
        // Replace the closing `}`.
        message.moveWriterIndex(to: message.writerIndex - 1)
        message.writeString(",\"herald_offset\":\(offset)}")
        return message
    }

    /// ``pusherEvent(name:channel:data:userID:dataForm:offset:)`` for a recorded entry.
    static func pusherEvent(_ entry: ChannelHistory.Entry, channel: String) -> ByteBuffer {
        pusherEvent(name: entry.name, channel: channel, data: entry.data, userID: entry.userID, dataForm: entry.dataForm, offset: entry.offset)
    }

    /// The notice's data: `{"channel","epoch","offset","recovered"}`.
    static func noticeData(channel: String, _ recovery: ChannelHistory.Recovery) -> ByteBuffer {
        var data = ByteBuffer()
        data.writeStaticString("{\"channel\":")
        JSONValue.writeQuoted(channel, into: &data)
        data.writeStaticString(",\"epoch\":")
        JSONValue.writeQuoted(recovery.epoch, into: &data)
        data.writeString(",\"offset\":\(recovery.offset),\"recovered\":\(recovery.recovered)}")
        return data
    }

    /// `42["herald:recovery","channel",{"channel","epoch","offset","recovered"}]`.
    static func socketIONotice(channel: String, _ recovery: ChannelHistory.Recovery) -> ByteBuffer {
        var packet = ByteBuffer()
        SocketIOCodec.writeChannelEvent(event: noticeEvent, channel: channel, data: noticeData(channel: channel, recovery), into: &packet)
        return packet
    }

    /// `{"event":"herald:recovery","channel":…,"data":"{\"channel\",\"epoch\",\"offset\",\"recovered\"}"}`
    /// (data as a JSON string, like every Pusher channel event).
    static func pusherNotice(channel: String, _ recovery: ChannelHistory.Recovery) -> ByteBuffer {
        PusherMessage.event(noticeEvent, channel: channel, data: noticeData(channel: channel, recovery), dataForm: .string)
    }
}
