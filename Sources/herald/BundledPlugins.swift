import Herald
import HeraldCore
import HeraldEnrich
import HeraldFilter
import HeraldRewrite

/// Turns the configuration file's `plugins` entries into the bundled plugins, so they can be
/// used without writing Swift. Every entry may also set `on_error: drop|pass` and
/// `time_budget` (e.g. `50ms`; the relay's default is 250 ms).
///
/// ```yaml
/// plugins:
///   - use: filter
///     deny_channels: ["internal.*"]
///   - use: rewrite
///     rules:
///       - { op: redact, path: user.email }
///   - use: enrich
///     node: relay-1
/// ```
enum BundledPlugins {
    /// The names `use` accepts.
    static let names = ["filter", "rewrite", "enrich"]

    static func make(_ entries: [PluginConfiguration], file: String?) throws -> [any EventPlugin] {
        var plugins: [any EventPlugin] = []
        for entry in entries {
            var options = Options(entry: entry, file: file)
            let policy: PluginFailurePolicy?
            switch try options.string("on_error") {
            case nil: policy = nil
            case "drop": policy = .drop
            case "pass": policy = .pass
            case let other?: throw options.error("on_error", "'\(other)' is not drop or pass")
            }
            var budget: Duration?
            if let text = try options.string("time_budget") {
                guard let parsed = ConfigurationFileDuration.parse(text), parsed > .zero else {
                    throw options.error("time_budget", "'\(text)' is not a duration (write 50ms, 1s)")
                }
                budget = parsed
            }
            let plugin: any EventPlugin
            switch entry.use {
            case "filter":
                plugin = EventFilter(
                    allowChannels: try options.strings("allow_channels") ?? [],
                    denyChannels: try options.strings("deny_channels") ?? [],
                    allowEvents: try options.strings("allow_events") ?? [],
                    denyEvents: try options.strings("deny_events") ?? []
                )
            case "rewrite":
                guard let rules = options.take("rules") else { throw options.error("rules", "is required: a list of rewrite rules") }
                do {
                    plugin = try EventRewriter(configuration: rules)
                } catch {
                    let at = error.ruleIndex.map { ".rules[\($0)]" } ?? ".rules"
                    throw ConfigurationFileError(file: file, line: entry.line, column: nil, keyPath: entry.keyPath + at, message: error.message)
                }
            case "enrich":
                plugin = EventEnricher(
                    node: try options.string("node"),
                    nodeField: try options.string("node_field") ?? "node",
                    relayedAtField: try options.nullableString("relayed_at_field", default: "relayed_at_ms"),
                    sourceField: try options.string("source_field"),
                    channels: try options.strings("channels") ?? []
                )
            default:
                throw ConfigurationFileError(
                    file: file, line: entry.line, column: nil, keyPath: entry.keyPath + ".use",
                    message: "unknown plugin '\(entry.use)'; bundled plugins: \(names.joined(separator: ", ")) (plugins written in Swift are added in code, see Examples/CustomPlugin)"
                )
            }
            try options.finish()
            if policy != nil || budget != nil {
                plugins.append(ConfiguredPlugin(base: plugin, failurePolicy: policy ?? plugin.failurePolicy, timeBudget: budget ?? plugin.timeBudget))
            } else {
                plugins.append(plugin)
            }
        }
        return plugins
    }

    /// Reads one entry's options, tracking which keys were used.
    struct Options {
        let entry: PluginConfiguration
        let file: String?
        var used: Set<String> = []

        init(entry: PluginConfiguration, file: String?) {
            self.entry = entry
            self.file = file
        }

        func error(_ key: String, _ message: String) -> ConfigurationFileError {
            ConfigurationFileError(file: file, line: entry.line, column: nil, keyPath: entry.keyPath + "." + key, message: message)
        }

        mutating func take(_ key: String) -> JSONValue? {
            used.insert(key)
            return entry.options[key]
        }

        mutating func string(_ key: String) throws -> String? {
            switch take(key) {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw error(key, "expected a string")
            }
        }

        /// A string that may be set to null explicitly to turn a default off.
        mutating func nullableString(_ key: String, default value: String) throws -> String? {
            switch take(key) {
            case nil: return value
            case .null?: return nil
            case .string(let text)?: return text
            default: throw error(key, "expected a string or null")
            }
        }

        mutating func strings(_ key: String) throws -> [String]? {
            switch take(key) {
            case nil, .null?: return nil
            case .string(let text)?: return [text]
            case .array(let items)?:
                var out: [String] = []
                for (index, item) in items.enumerated() {
                    guard let text = item.stringValue else { throw error("\(key)[\(index)]", "expected a string") }
                    out.append(text)
                }
                return out
            default: throw error(key, "expected a list of strings")
            }
        }

        func finish() throws {
            guard case .object(let members) = entry.options else { return }
            for member in members where !used.contains(member.key) {
                throw error(member.key, "unknown option for plugin '\(entry.use)'; known: \(used.sorted().joined(separator: ", "))")
            }
        }
    }
}

/// A bundled plugin with the failure policy and time budget the configuration file gave it.
struct ConfiguredPlugin: EventPlugin {
    let base: any EventPlugin
    let failurePolicy: PluginFailurePolicy
    let timeBudget: Duration?
    var name: String { base.name }

    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        try await base.process(event, context: context)
    }
}
