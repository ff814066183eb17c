import Logging

/// What a plugin decides for an event.
public enum PluginDecision: Sendable {
    /// Pass the (possibly rewritten) event on to the next plugin, then to subscribers.
    case pass(Event)
    /// Deliver nothing; `reason` is logged at debug level and counted.
    case drop(reason: String)
    /// Replace the event with these events (fan-out to other channels, or a split). Each goes
    /// through the rest of the chain.
    case replace([Event])
}

/// What a plugin does when it throws.
public enum PluginFailurePolicy: Sendable, Hashable {
    /// Drop the event (the safe default: a failing filter must not leak events).
    case drop
    /// Pass the event on unchanged.
    case pass
}

/// Context handed to plugins.
public struct PluginContext: Sendable {
    /// A logger carrying the event's channel and name as metadata.
    public var logger: Logger
    public init(logger: Logger) { self.logger = logger }
}

/// An event plugin: sees every event once, before fan-out, whatever its source.
///
/// Plugins run once per event, never once per recipient. Implement ``process(_:context:)``;
/// return `.pass(event)` (rewritten or not), `.drop(reason:)`, or `.replace([...])`.
public protocol EventPlugin: Sendable {
    /// A short name used in logs and metrics.
    var name: String { get }
    /// What happens to events when ``process(_:context:)`` throws. Defaults to `.drop`.
    var failurePolicy: PluginFailurePolicy { get }
    /// Decides the fate of one event.
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision
}

extension EventPlugin {
    public var failurePolicy: PluginFailurePolicy { .drop }
}

/// Plugins in their declared order.
///
/// A throwing plugin is isolated: its error is logged with the plugin's name and the event's
/// channel, and its ``PluginFailurePolicy`` decides whether the event goes on.
public struct PluginChain: Sendable {
    /// The plugins, first to last.
    public let plugins: [any EventPlugin]
    /// Called once for every error a plugin throws, after it is logged (Herald counts them
    /// in `herald_plugin_errors_total`).
    public let onError: (@Sendable (_ plugin: String, _ error: any Error) -> Void)?

    /// - Parameters:
    ///   - onError: called with the plugin's name and the error whenever a plugin throws.
    public init(_ plugins: [any EventPlugin] = [], onError: (@Sendable (_ plugin: String, _ error: any Error) -> Void)? = nil) {
        self.plugins = plugins
        self.onError = onError
    }

    /// Whether the chain has nothing to do (the router then skips it entirely).
    public var isEmpty: Bool { plugins.isEmpty }

    /// Runs `event` through every plugin and returns the events to deliver (none, one, or several).
    public func run(_ event: Event, logger: Logger) async -> [Event] {
        await run(event, from: 0, logger: logger)
    }

    private func run(_ event: Event, from start: Int, logger: Logger) async -> [Event] {
        var current = event
        var index = start
        while index < plugins.count {
            let plugin = plugins[index]
            var pluginLogger = logger
            pluginLogger[metadataKey: "herald.plugin"] = "\(plugin.name)"
            pluginLogger[metadataKey: "herald.channel"] = "\(current.channel)"
            pluginLogger[metadataKey: "herald.event"] = "\(current.name)"
            do {
                switch try await plugin.process(current, context: PluginContext(logger: pluginLogger)) {
                case .pass(let next):
                    current = next
                case .drop(let reason):
                    pluginLogger.debug("plugin dropped the event", metadata: ["herald.reason": "\(reason)"])
                    return []
                case .replace(let events):
                    var out: [Event] = []
                    for e in events { out += await run(e, from: index + 1, logger: logger) }
                    return out
                }
            } catch {
                pluginLogger.error("plugin failed", metadata: ["error": "\(error)", "herald.policy": "\(plugin.failurePolicy)"])
                onError?(plugin.name, error)
                if plugin.failurePolicy == .drop { return [] }
            }
            index += 1
        }
        return [current]
    }
}
