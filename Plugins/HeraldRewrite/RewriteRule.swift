import HeraldCore

/// One declarative rewrite, applied by ``EventRewriter`` in the order the rules are listed.
///
/// Each rule sees the event as the rules before it left it, so `mapChannel("a", "b")` followed
/// by `mapChannel("b", "c")` sends events on `a` to `c`.
///
/// **Name patterns** (`renameEvent`, `mapChannel`): `from` is an exact name, or a glob when it
/// contains `*` (any run of characters, including none) or `?` (one character). `to` is the
/// literal new name, or — when `from` ends with `*` — may itself end with `*`, which stands for
/// the text the trailing `*` of `from` matched: `legacy.*` → `orders.*` maps `legacy.1` to
/// `orders.1`. `to` may contain no other wildcard.
///
/// **Field paths** (`setField`, `removeField`, `redactField`): object member names joined by
/// `.` (`user.role`); write `\.` for a dot and `\\` for a backslash inside a name. Payload rules
/// only touch object payloads, and every member carrying a path's name (duplicates included) is
/// edited.
public enum RewriteRule: Sendable, Hashable {
    /// Renames events whose name matches `from` (exact or glob) to `to`.
    case renameEvent(from: String, to: String)
    /// Moves events whose channel matches `from` (exact or glob, e.g. `legacy.*`) to `to`
    /// (e.g. `orders.*`).
    case mapChannel(from: String, to: String)
    /// Sets the field at `path` to `value`, replacing it if present and otherwise appending it
    /// (creating missing intermediate objects). Does nothing when an intermediate member exists
    /// but is not an object.
    case setField(path: String, value: JSONValue)
    /// Removes the field at `path`, if present.
    case removeField(path: String)
    /// Replaces the value of the field at `path`, if present, with the string ``redactedText``.
    case redactField(path: String)

    /// The value ``redactField(path:)`` writes: `"[redacted]"`.
    public static let redactedText = "[redacted]"

    /// Parses a rule list from configuration, for example:
    ///
    /// ```json
    /// [
    ///   {"op": "rename_event", "from": "App\\Events\\Legacy*", "to": "legacy"},
    ///   {"op": "map_channel", "from": "legacy.*", "to": "orders.*"},
    ///   {"op": "set", "path": "user.role", "value": "guest"},
    ///   {"op": "remove", "path": "internal"},
    ///   {"op": "redact", "path": "user.email"}
    /// ]
    /// ```
    ///
    /// Every rule is validated as ``EventRewriter/init(rules:)`` would; errors name the rule's
    /// zero-based index.
    public static func parseList(_ json: JSONValue) throws(RewriteConfigurationError) -> [RewriteRule] {
        guard case .array(let items) = json else {
            throw RewriteConfigurationError(ruleIndex: nil, message: "expected an array of rules")
        }
        var rules: [RewriteRule] = []
        rules.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let rule = try parse(item, index: index)
            _ = try CompiledRule(rule, index: index)
            rules.append(rule)
        }
        return rules
    }

    private static func parse(_ json: JSONValue, index: Int) throws(RewriteConfigurationError) -> RewriteRule {
        func fail(_ message: String) -> RewriteConfigurationError {
            RewriteConfigurationError(ruleIndex: index, message: message)
        }
        func string(_ key: String) throws(RewriteConfigurationError) -> String {
            guard let value = json[key] else { throw fail("missing '\(key)'") }
            guard let text = value.stringValue else { throw fail("'\(key)' must be a string") }
            return text
        }
        guard case .object(let members) = json else { throw fail("expected an object") }
        guard let op = json["op"] else { throw fail("missing 'op'") }
        guard let opName = op.stringValue else { throw fail("'op' must be a string") }
        let allowed: Set<String>
        let rule: RewriteRule
        switch opName {
        case "rename_event":
            allowed = ["op", "from", "to"]
            rule = .renameEvent(from: try string("from"), to: try string("to"))
        case "map_channel":
            allowed = ["op", "from", "to"]
            rule = .mapChannel(from: try string("from"), to: try string("to"))
        case "set":
            allowed = ["op", "path", "value"]
            let path = try string("path")
            guard let value = json["value"] else { throw fail("missing 'value'") }
            rule = .setField(path: path, value: value)
        case "remove":
            allowed = ["op", "path"]
            rule = .removeField(path: try string("path"))
        case "redact":
            allowed = ["op", "path"]
            rule = .redactField(path: try string("path"))
        default:
            throw fail("unknown op '\(opName)' (expected rename_event, map_channel, set, remove or redact)")
        }
        if let unknown = members.first(where: { !allowed.contains($0.key) }) {
            throw fail("unknown key '\(unknown.key)' for op '\(opName)'")
        }
        return rule
    }
}

/// Why a rewrite configuration was rejected.
public struct RewriteConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The zero-based index of the offending rule, or `nil` when the list itself is malformed.
    public var ruleIndex: Int?
    /// What is wrong.
    public var message: String

    /// Creates an error for the rule at `ruleIndex` (or the whole list when `nil`).
    public init(ruleIndex: Int?, message: String) {
        self.ruleIndex = ruleIndex
        self.message = message
    }

    /// `rewrite rule 2: unknown op 'frob' …`, or `rewrite rules: …` for the whole list.
    public var description: String {
        if let ruleIndex { return "rewrite rule \(ruleIndex): \(message)" }
        return "rewrite rules: \(message)"
    }
}

// MARK: - Compiled forms

/// A validated `from` → `to` name mapping.
struct NameMapping: Sendable {
    let from: String
    let to: String
    /// `from` contains a wildcard.
    let isGlob: Bool
    /// `to` ends with `*`: the text matched by `from`'s trailing `*` is appended to `toHead`.
    let carriesSuffix: Bool
    /// `from` without its trailing `*` (when `carriesSuffix`).
    let fromHead: String
    /// `to` without its trailing `*` (when `carriesSuffix`).
    let toHead: String

    init(from: String, to: String) throws(RewriteConfigurationError.Message) {
        guard !from.isEmpty else { throw .init("'from' must not be empty") }
        guard !to.isEmpty else { throw .init("'to' must not be empty") }
        self.from = from
        self.to = to
        isGlob = from.contains("*") || from.contains("?")
        let toWildcards = to.filter { $0 == "*" || $0 == "?" }.count
        if toWildcards == 0 {
            carriesSuffix = false
            fromHead = from
            toHead = to
        } else {
            guard toWildcards == 1, to.hasSuffix("*") else {
                throw .init("'to' may contain a wildcard only as one trailing '*' (got '\(to)')")
            }
            guard from.hasSuffix("*") else {
                throw .init("'to' ends with '*' but 'from' does not (got '\(from)' → '\(to)')")
            }
            carriesSuffix = true
            fromHead = String(from.dropLast())
            toHead = String(to.dropLast())
        }
    }

    /// The new name for `name`, or `nil` when the mapping does not apply.
    func apply(_ name: String) -> String? {
        guard isGlob else { return name == from ? to : nil }
        guard Glob.matches(name, pattern: from) else { return nil }
        guard carriesSuffix else { return to }
        if !fromHead.contains("*"), !fromHead.contains("?") {
            // The common case (`legacy.*`): a plain prefix.
            return toHead + String(name.unicodeScalars.dropFirst(fromHead.unicodeScalars.count))
        }
        // The trailing `*` takes the longest suffix whose remaining prefix matches `fromHead`.
        let scalars = Array(name.unicodeScalars)
        for split in 0...scalars.count {
            var head = String.UnicodeScalarView()
            head.append(contentsOf: scalars[..<split])
            if Glob.matches(String(head), pattern: fromHead) {
                var tail = String.UnicodeScalarView()
                tail.append(contentsOf: scalars[split...])
                return toHead + String(tail)
            }
        }
        return nil
    }
}

extension RewriteConfigurationError {
    /// A message without an index yet (attached by the caller that knows it).
    struct Message: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }
}

/// A payload edit.
enum PayloadEdit: Sendable {
    case set(JSONValue)
    case remove
    case redact
}

/// A rule, validated and ready to run.
enum CompiledRule: Sendable {
    case renameEvent(NameMapping)
    case mapChannel(NameMapping)
    case payload(path: [String], edit: PayloadEdit)

    init(_ rule: RewriteRule, index: Int) throws(RewriteConfigurationError) {
        do {
            switch rule {
            case .renameEvent(let from, let to): self = .renameEvent(try NameMapping(from: from, to: to))
            case .mapChannel(let from, let to): self = .mapChannel(try NameMapping(from: from, to: to))
            case .setField(let path, let value): self = .payload(path: try Self.parsePath(path), edit: .set(value))
            case .removeField(let path): self = .payload(path: try Self.parsePath(path), edit: .remove)
            case .redactField(let path): self = .payload(path: try Self.parsePath(path), edit: .redact)
            }
        } catch {
            throw RewriteConfigurationError(ruleIndex: index, message: error.text)
        }
    }

    /// Splits `user.role` into `["user", "role"]`, honouring `\.` and `\\`.
    static func parsePath(_ path: String) throws(RewriteConfigurationError.Message) -> [String] {
        var segments: [String] = []
        var current = ""
        var escaping = false
        for character in path {
            if escaping {
                guard character == "." || character == "\\" else {
                    throw .init("invalid escape '\\\(character)' in path '\(path)' (only '\\.' and '\\\\')")
                }
                current.append(character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else if character == "." {
                guard !current.isEmpty else { throw .init("empty segment in path '\(path)'") }
                segments.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        guard !escaping else { throw .init("path '\(path)' ends with a lone '\\'") }
        guard !current.isEmpty else { throw .init("empty segment in path '\(path)'") }
        segments.append(current)
        return segments
    }
}
