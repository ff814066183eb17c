import HeraldCore
import Logging
import NIOCore

/// Rewrites events declaratively: renames events, moves them between channels, and edits
/// fields of object payloads, applying its ``RewriteRule``s in order.
///
/// ```swift
/// let rewriter = try EventRewriter(rules: [
///     .mapChannel(from: "legacy.*", to: "orders.*"),
///     .renameEvent(from: "App\\Events\\OrderShipped", to: "order.shipped"),
///     .redactField(path: "customer.email"),
/// ])
/// ```
///
/// When no payload rule changes anything, the event keeps its original `data` buffer, byte for
/// byte. When one does, the payload is re-serialized compactly from a ``JSONValue`` (member order
/// and number literals are kept; insignificant whitespace and string escapes are normalized).
/// Payloads that are not JSON objects pass unchanged (logged at debug level).
public struct EventRewriter: EventPlugin {
    /// `"rewrite"`.
    public let name = "rewrite"
    /// The rules, in the order they apply.
    public let rules: [RewriteRule]
    private let compiled: [CompiledRule]
    private let hasPayloadRules: Bool

    /// Creates a rewriter after validating every rule.
    ///
    /// - Throws: ``RewriteConfigurationError`` naming the first invalid rule's index.
    public init(rules: [RewriteRule]) throws(RewriteConfigurationError) {
        var compiled: [CompiledRule] = []
        compiled.reserveCapacity(rules.count)
        for (index, rule) in rules.enumerated() {
            compiled.append(try CompiledRule(rule, index: index))
        }
        self.rules = rules
        self.compiled = compiled
        self.hasPayloadRules = compiled.contains { if case .payload = $0 { return true } else { return false } }
    }

    /// Creates a rewriter from a configuration value (see ``RewriteRule/parseList(_:)``).
    public init(configuration: JSONValue) throws(RewriteConfigurationError) {
        try self.init(rules: RewriteRule.parseList(configuration))
    }

    /// Applies the rules to `event` and passes it on; never drops.
    public func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        .pass(rewrite(event, logger: context.logger))
    }

    /// The rewritten event (synchronous core of ``process(_:context:)``).
    public func rewrite(_ event: Event, logger: Logger) -> Event {
        var event = event
        var payload = PayloadState.unparsed
        var edited = false
        for rule in compiled {
            switch rule {
            case .renameEvent(let mapping):
                if let renamed = mapping.apply(event.name) { event.name = renamed }
            case .mapChannel(let mapping):
                if let mapped = mapping.apply(event.channel) { event.channel = mapped }
            case .payload(let path, let edit):
                if case .unparsed = payload { payload = Self.parse(event.data, logger: logger) }
                guard case .object(var root) = payload else { continue }
                payload = .unusable  // drop the reference so `root` is edited in place
                if Self.apply(edit, path: path[...], to: &root) { edited = true }
                payload = .object(root)
            }
        }
        if edited, case .object(let root) = payload {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(event.data.readableBytes + 16)
            root.write(into: &buffer)
            event.data = buffer
        }
        return event
    }

    // MARK: - Payload edits

    private enum PayloadState {
        case unparsed
        case object(JSONValue)
        case unusable
    }

    private static func parse(_ data: ByteBuffer, logger: Logger) -> PayloadState {
        do {
            let value = try JSONReader.parse(data)
            if case .object = value { return .object(value) }
            logger.debug("payload is not a JSON object; payload rewrite rules skipped")
        } catch {
            logger.debug("payload is not valid JSON; payload rewrite rules skipped", metadata: ["error": "\(error)"])
        }
        return .unusable
    }

    /// Applies `edit` at `path` inside the object `value`; returns whether anything changed.
    private static func apply(_ edit: PayloadEdit, path: ArraySlice<String>, to value: inout JSONValue) -> Bool {
        guard case .object(var members) = value, let key = path.first else { return false }
        value = .null  // release the enum's reference so `members` is uniquely owned
        let rest = path.dropFirst()
        var changed = false
        var found = false
        if rest.isEmpty {
            switch edit {
            case .remove:
                let before = members.count
                members.removeAll { $0.key == key }
                changed = members.count != before
            case .set(let newValue):
                for i in members.indices where members[i].key == key {
                    found = true
                    if members[i].value != newValue {
                        members[i].value = newValue
                        changed = true
                    }
                }
                if !found {
                    members.append(JSONMember(key: key, value: newValue))
                    changed = true
                }
            case .redact:
                let redacted = JSONValue.string(RewriteRule.redactedText)
                for i in members.indices where members[i].key == key && members[i].value != redacted {
                    members[i].value = redacted
                    changed = true
                }
            }
        } else {
            for i in members.indices where members[i].key == key {
                found = true
                if apply(edit, path: rest, to: &members[i].value) { changed = true }
            }
            if !found, case .set(let newValue) = edit {
                members.append(JSONMember(key: key, value: nested(rest, newValue)))
                changed = true
            }
        }
        value = .object(members)
        return changed
    }

    /// `{"a":{"b":value}}` for the path `a.b`.
    private static func nested(_ path: ArraySlice<String>, _ value: JSONValue) -> JSONValue {
        path.reversed().reduce(value) { inner, key in .object([JSONMember(key: key, value: inner)]) }
    }
}
