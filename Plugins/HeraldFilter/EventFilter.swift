import HeraldCore

/// Lets events through or drops them by channel and event name.
///
/// Patterns are globs: `*` matches any run of characters (including none), `?` one character;
/// everything else matches itself. A deny pattern wins over an allow pattern. An empty allow
/// list allows everything not denied.
///
/// ```swift
/// EventFilter(allowChannels: ["orders.*", "qr.*"], denyEvents: ["*Debug*"])
/// ```
public struct EventFilter: EventPlugin {
    public let name = "filter"
    public let allowChannels: [String]
    public let denyChannels: [String]
    public let allowEvents: [String]
    public let denyEvents: [String]

    public init(allowChannels: [String] = [], denyChannels: [String] = [], allowEvents: [String] = [], denyEvents: [String] = []) {
        self.allowChannels = allowChannels
        self.denyChannels = denyChannels
        self.allowEvents = allowEvents
        self.denyEvents = denyEvents
    }

    public func process(_ event: Event, context: PluginContext) async throws -> PluginDecision {
        if let pattern = denyChannels.first(where: { Glob.matches(event.channel, pattern: $0) }) {
            return .drop(reason: "channel matches deny pattern '\(pattern)'")
        }
        if let pattern = denyEvents.first(where: { Glob.matches(event.name, pattern: $0) }) {
            return .drop(reason: "event matches deny pattern '\(pattern)'")
        }
        if !allowChannels.isEmpty, !allowChannels.contains(where: { Glob.matches(event.channel, pattern: $0) }) {
            return .drop(reason: "channel matches no allow pattern")
        }
        if !allowEvents.isEmpty, !allowEvents.contains(where: { Glob.matches(event.name, pattern: $0) }) {
            return .drop(reason: "event matches no allow pattern")
        }
        return .pass(event)
    }
}
