#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import HeraldCore
import NIOCore

/// Adds server-side fields to object payloads: when the relay saw the event (`relayed_at_ms`,
/// milliseconds since the Unix epoch), optionally where it came from (``Event/source``), and
/// optionally this relay's node name.
///
/// ```swift
/// EventEnricher(node: "relay-eu-1", sourceField: "source", channels: ["orders.*"])
/// // {"id":1}  →  {"id":1,"relayed_at_ms":1732395600000,"source":"redis","node":"relay-eu-1"}
/// ```
///
/// The payload is spliced, not re-serialized: every existing byte is kept, new members are
/// appended before the closing `}`, and a member that already has one of the field names gets
/// its value replaced in place. Events on channels that match no pattern, and payloads that are
/// not JSON objects, pass with their original `data` buffer (the latter logged at debug level).
public struct EventEnricher: EventPlugin {
    /// `"enrich"`.
    public let name = "enrich"
    /// Channel globs (`*`, `?`) whose events are enriched; empty means every channel.
    public let channels: [String]
    /// The member that receives the relay time in milliseconds, or `nil` for none.
    public let relayedAtField: String?
    /// The member that receives the event's source (`redis`, `http`, …), or `nil` for none.
    public let sourceField: String?
    /// The node name to add, or `nil` for none.
    public let node: String?
    /// The member that receives ``node``.
    public let nodeField: String
    private let now: @Sendable () -> Int64

    /// Creates an enricher.
    ///
    /// - Parameters:
    ///   - node: a static node name to add under `nodeField`; `nil` adds none.
    ///   - nodeField: the member name for `node`.
    ///   - relayedAtField: the member name for the relay time; `nil` adds none.
    ///   - sourceField: the member name for the event's source; `nil` (the default) adds none.
    ///   - channels: channel globs to enrich; empty (the default) enriches every channel.
    ///   - now: the wall clock in milliseconds since the Unix epoch (inject a fixed one in tests).
    public init(
        node: String? = nil,
        nodeField: String = "node",
        relayedAtField: String? = "relayed_at_ms",
        sourceField: String? = nil,
        channels: [String] = [],
        now: @escaping @Sendable () -> Int64 = EventEnricher.systemMilliseconds
    ) {
        self.node = node
        self.nodeField = nodeField
        self.relayedAtField = relayedAtField
        self.sourceField = sourceField
        self.channels = channels
        self.now = now
    }

    /// Milliseconds since the Unix epoch from the system's real-time clock.
    @Sendable public static func systemMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    /// Enriches `event` if its channel is selected and its payload is an object; never drops.
    public func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        guard channels.isEmpty || channels.contains(where: { Glob.matches(event.channel, pattern: $0) }) else {
            return .pass(event)
        }
        let fields = fields(for: event)
        guard !fields.isEmpty else { return .pass(event) }
        let members: [(key: String, range: Range<Int>)]
        do {
            members = try JSONReader.objectMembers(event.data)
        } catch {
            context.logger.debug("payload is not a JSON object; not enriched", metadata: ["error": "\(error)"])
            return .pass(event)
        }
        var event = event
        event.data = Self.splice(event.data, members: members, fields: fields)
        return .pass(event)
    }

    /// The members to write, later configuration winning when two share a name.
    private func fields(for event: Event) -> [(key: String, value: JSONValue)] {
        var fields: [(key: String, value: JSONValue)] = []
        func add(_ key: String?, _ value: @autoclosure () -> JSONValue) {
            guard let key else { return }
            fields.removeAll { $0.key == key }
            fields.append((key, value()))
        }
        add(relayedAtField, .number(String(now())))
        add(sourceField, .string(event.source.rawValue))
        if let node { add(nodeField, .string(node)) }
        return fields
    }

    /// Copies `data`, replacing the values of members named like a field and appending the rest.
    private static func splice(
        _ data: ByteBuffer,
        members: [(key: String, range: Range<Int>)],
        fields: [(key: String, value: JSONValue)]
    ) -> ByteBuffer {
        var replacements: [(range: Range<Int>, value: JSONValue)] = []
        var appended: [(key: String, value: JSONValue)] = []
        for field in fields {
            let hits = members.filter { $0.key == field.key }
            if hits.isEmpty {
                appended.append(field)
            } else {
                replacements += hits.map { ($0.range, field.value) }
            }
        }
        replacements.sort { $0.range.lowerBound < $1.range.lowerBound }

        var out = ByteBuffer()
        out.reserveCapacity(data.readableBytes + 64)
        data.withUnsafeReadableBytes { raw in
            // Appended members go right after the last member, or just inside an empty `{}`.
            let insertion: Int
            if let last = members.last {
                insertion = last.range.upperBound
            } else {
                var brace = raw.count - 1
                while brace > 0, raw[brace] != UInt8(ascii: "}") { brace -= 1 }
                insertion = brace
            }
            var cursor = 0
            for replacement in replacements {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[cursor..<replacement.range.lowerBound]))
                replacement.value.write(into: &out)
                cursor = replacement.range.upperBound
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[cursor..<insertion]))
            for (i, field) in appended.enumerated() {
                if i > 0 || !members.isEmpty { out.writeInteger(UInt8(ascii: ",")) }
                JSONValue.writeQuoted(field.key, into: &out)
                out.writeInteger(UInt8(ascii: ":"))
                field.value.write(into: &out)
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[insertion..<raw.count]))
        }
        return out
    }
}
