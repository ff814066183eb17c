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

/// What happens when a plugin throws or overruns its time budget.
public enum PluginFailurePolicy: Sendable, Hashable {
    /// Drop the event (the safe default: a failing filter must not leak events). For a
    /// subscription authorization hook: deny the subscription (status 500).
    case drop
    /// Pass the event on unchanged, as it entered the plugin. For a subscription authorization
    /// hook: defer to the next plugin, then to the app.
    case pass
}

/// Context handed to plugins.
public struct PluginContext: Sendable {
    /// A logger carrying the plugin's name and, for events, the event's channel and name as
    /// metadata (`herald.plugin`, `herald.channel`, `herald.event`).
    public var logger: Logger
    public init(logger: Logger) { self.logger = logger }
}

/// What every plugin has, whichever hooks it implements: a name, a failure policy and a time
/// budget.
///
/// A plugin implements one or more hooks by conforming to the protocols that refine this one:
/// ``EventPlugin`` (every event, before fan-out), ``SubscriptionAuthorizingPlugin``
/// (subscriptions) and ``ConnectionObservingPlugin`` (connections opening and closing). A
/// ``PluginChain`` calls each plugin only for the hooks it implements, so a hook no plugin
/// implements costs nothing.
///
/// Every call of every hook is isolated: when it throws, or runs past its time budget, Herald
/// logs it with the plugin's name (and the channel, for events and subscriptions), reports it
/// to the chain's `onError`, and applies ``failurePolicy``. A call past its budget is abandoned:
/// its task is cancelled, and whatever it returns later is ignored.
public protocol HeraldPlugin: Sendable {
    /// A short name used in logs and metrics.
    var name: String { get }
    /// What happens when a hook throws or runs out of time. Defaults to `.drop`.
    var failurePolicy: PluginFailurePolicy { get }
    /// How long one call of a hook may take before it is abandoned; `nil` (the default) takes
    /// the chain's budget (``PluginChain/defaultTimeBudget`` unless the chain sets another).
    /// Read once, when the chain is built; budgets under 1 ms count as 1 ms.
    var timeBudget: Duration? { get }
}

extension HeraldPlugin {
    /// `.drop`: a plugin that fails holds the event back (and, as an authorizer, denies).
    public var failurePolicy: PluginFailurePolicy { .drop }
    /// `nil`: the chain's time budget applies.
    public var timeBudget: Duration? { nil }
}

/// An event plugin: sees every event once, before fan-out, whatever its source.
///
/// Plugins run once per event, never once per recipient. Implement ``process(_:context:)``;
/// return `.pass(event)` (rewritten or not), `.drop(reason:)`, or `.replace([...])`.
///
/// Client events (whispers: Socket.IO `client event`, Pusher `client-*`) are events too: they
/// reach ``process(_:context:)`` with `source == .client`, so a plugin may drop or rewrite them
/// like any other event.
///
/// Order and concurrency: one channel's events enter the chain one at a time, in the order
/// they were published — the next waits until the previous has left the chain — so they reach
/// subscribers in that order. Events of different channels go through the chain concurrently
/// (up to the router's `pluginConcurrency` channels at once), so a plugin slow on one channel
/// delays only the later events of that channel, and by at most its ``timeBudget``. Events a
/// plugin moves to another channel keep the order of the channel they were published to.
public protocol EventPlugin: HeraldPlugin {
    /// A short name used in logs and metrics.
    var name: String { get }
    /// What happens to the event when ``process(_:context:)`` throws or overruns its time
    /// budget. Defaults to `.drop`.
    var failurePolicy: PluginFailurePolicy { get }
    /// Decides the fate of one event. Should finish well within ``HeraldPlugin/timeBudget``
    /// and react to cancellation: a call past its budget is cancelled and its result ignored.
    func process(_ event: Event, context: PluginContext) async throws -> PluginDecision
}

/// The hook a plugin call belongs to (in ``PluginTimeout``).
public enum PluginHook: String, Sendable, Hashable {
    /// ``EventPlugin/process(_:context:)``.
    case process
    /// ``SubscriptionAuthorizingPlugin/authorize(_:context:)``.
    case authorize
    /// ``ConnectionObservingPlugin/connectionOpened(_:context:)``.
    case connectionOpened
    /// ``ConnectionObservingPlugin/connectionClosed(_:context:)``.
    case connectionClosed
}

/// The error reported to ``PluginChain/onError`` for a plugin call abandoned because it ran
/// past its time budget.
public struct PluginTimeout: Error, Sendable, Hashable, CustomStringConvertible {
    /// The plugin's name.
    public var plugin: String
    /// The hook that ran too long.
    public var hook: PluginHook
    /// The budget it ran past.
    public var budget: Duration

    public init(plugin: String, hook: PluginHook, budget: Duration) {
        self.plugin = plugin
        self.hook = hook
        self.budget = budget
    }

    public var description: String {
        "plugin '\(plugin)' ran past its time budget of \(PluginChain.milliseconds(budget)) ms in \(hook.rawValue)"
    }
}

/// Plugins in their declared order.
///
/// Every hook call is isolated: an error is logged with the plugin's name and the event's (or
/// subscription's) channel, a call that runs past its time budget is cancelled and abandoned,
/// and in both cases the plugin's ``HeraldPlugin/failurePolicy`` decides what happens next.
/// Budgets are enforced by one watchdog per chain rather than a timer per call: a call costs
/// a clock read and two uncontended lock operations, and the watchdog wakes only while calls
/// are in flight, at the earliest deadline.
public struct PluginChain: Sendable {
    /// The plugins, first to last.
    public let plugins: [any HeraldPlugin]
    /// Called once for every error a plugin throws and every call abandoned past its budget
    /// (with a ``PluginTimeout``), after it is logged (Herald counts them in
    /// `herald_plugin_errors_total`).
    public let onError: (@Sendable (_ plugin: String, _ error: any Error) -> Void)?
    /// The budget of plugins whose ``HeraldPlugin/timeBudget`` is `nil`.
    public let timeBudget: Duration

    /// The time budget of a plugin call unless the plugin or the chain says otherwise: 250 ms.
    public static let defaultTimeBudget: Duration = .milliseconds(250)

    let eventPlugins: [any EventPlugin]
    let eventBudgets: [Duration]
    let authorizers: [any SubscriptionAuthorizingPlugin]
    let observers: [any ConnectionObservingPlugin]
    let watchdog: PluginWatchdog

    /// - Parameters:
    ///   - plugins: the plugins in the order they run; each takes part in the hooks it implements.
    ///   - timeBudget: the budget of every plugin call whose plugin sets none.
    ///   - onError: called with the plugin's name and the error whenever a plugin throws or runs
    ///     past its budget (``PluginTimeout``).
    public init(
        _ plugins: [any HeraldPlugin] = [],
        timeBudget: Duration = PluginChain.defaultTimeBudget,
        onError: (@Sendable (_ plugin: String, _ error: any Error) -> Void)? = nil
    ) {
        self.plugins = plugins
        self.onError = onError
        self.timeBudget = Self.clamped(timeBudget)
        var events: [any EventPlugin] = []
        var authorizers: [any SubscriptionAuthorizingPlugin] = []
        var observers: [any ConnectionObservingPlugin] = []
        for plugin in plugins {
            if let plugin = plugin as? any EventPlugin { events.append(plugin) }
            if let plugin = plugin as? any SubscriptionAuthorizingPlugin { authorizers.append(plugin) }
            if let plugin = plugin as? any ConnectionObservingPlugin { observers.append(plugin) }
        }
        self.eventPlugins = events
        self.authorizers = authorizers
        self.observers = observers
        let fallback = self.timeBudget
        self.eventBudgets = events.map { $0.timeBudget.map(Self.clamped) ?? fallback }
        let shortest = plugins.map { $0.timeBudget.map(Self.clamped) ?? fallback }.min() ?? fallback
        self.watchdog = PluginWatchdog(shortestBudget: shortest)
    }

    /// Whether the chain has no plugins at all.
    public var isEmpty: Bool { plugins.isEmpty }
    /// Whether some plugin implements ``EventPlugin`` (otherwise the router skips the chain
    /// entirely and events take the direct path).
    public var processesEvents: Bool { !eventPlugins.isEmpty }
    /// Whether some plugin implements ``SubscriptionAuthorizingPlugin``.
    public var authorizesSubscriptions: Bool { !authorizers.isEmpty }
    /// Whether some plugin implements ``ConnectionObservingPlugin``.
    public var observesConnections: Bool { !observers.isEmpty }

    /// Runs `event` through every event plugin and returns the events to deliver (none, one, or
    /// several). The chain runs in a task of its own, so this returns within the plugins' time
    /// budgets even when one of them never does.
    public func run(_ event: Event, logger: Logger) async -> [Event] {
        guard processesEvents else { return [event] }
        return await withCheckedContinuation { continuation in
            let runner = PluginRunner(chain: self, logger: logger) { runner, _, outputs, _ in
                // The watchdog took the run over from the task below and finished it.
                runner.close()
                continuation.resume(returning: outputs)
            }
            Task {
                if let outputs = await runner.run(event, owner: runner.firstOwner) {
                    runner.close()
                    continuation.resume(returning: outputs)
                }
            }
        }
    }

    /// Asks the subscription authorizers, in order, about `request`. The first decision other
    /// than ``SubscriptionDecision/deferToApp`` wins; when every plugin defers (or there are
    /// none) the answer is `.deferToApp` and Herald's own authorization applies.
    ///
    /// A plugin that throws or runs past its budget denies with status 500 under the `.drop`
    /// policy and defers under `.pass`.
    public func authorize(_ request: SubscriptionRequest, logger: Logger) async -> SubscriptionDecision {
        for plugin in authorizers {
            var pluginLogger = logger
            pluginLogger[metadataKey: "herald.plugin"] = .string(plugin.name)
            pluginLogger[metadataKey: "herald.channel"] = .string(request.channel)
            let context = PluginContext(logger: pluginLogger)
            let budget = budget(of: plugin)
            let outcome = await BudgetedCall.run(on: watchdog, budget: budget) {
                try await plugin.authorize(request, context: context)
            }
            switch outcome {
            case .finished(.deferToApp):
                continue
            case .finished(let decision):
                pluginLogger.debug("plugin decided a subscription", metadata: ["herald.decision": "\(decision)"])
                return decision
            case .failed(let error):
                report(error, plugin: plugin, logger: pluginLogger)
            case .timedOut:
                report(PluginTimeout(plugin: plugin.name, hook: .authorize, budget: budget), plugin: plugin, logger: pluginLogger)
            }
            if plugin.failurePolicy == .drop { return .deny(status: 500) }
        }
        return .deferToApp
    }

    /// Tells the connection observers, in order, that a connection opened. Returns at once: the
    /// observers run in a task of their own and never delay the connection. Pass the returned
    /// task to ``connectionClosed(_:after:logger:)`` so the observers see the close after the
    /// open. Returns `nil` when no plugin observes connections.
    @discardableResult
    public func connectionOpened(_ connection: ConnectionInfo, logger: Logger) -> Task<Void, Never>? {
        guard observesConnections else { return nil }
        return Task { await notify(connection, hook: .connectionOpened, logger: logger) }
    }

    /// Tells the connection observers, in order, that a connection closed, after the
    /// notification `opened` (from ``connectionOpened(_:logger:)``) is done. Returns at once.
    public func connectionClosed(_ connection: ConnectionInfo, after opened: Task<Void, Never>? = nil, logger: Logger) {
        guard observesConnections else { return }
        Task {
            await opened?.value
            await notify(connection, hook: .connectionClosed, logger: logger)
        }
    }

    private func notify(_ connection: ConnectionInfo, hook: PluginHook, logger: Logger) async {
        for plugin in observers {
            var pluginLogger = logger
            pluginLogger[metadataKey: "herald.plugin"] = .string(plugin.name)
            pluginLogger[metadataKey: "herald.socket"] = .string(connection.socketID)
            let context = PluginContext(logger: pluginLogger)
            let budget = budget(of: plugin)
            let outcome = await BudgetedCall.run(on: watchdog, budget: budget) {
                if hook == .connectionOpened {
                    try await plugin.connectionOpened(connection, context: context)
                } else {
                    try await plugin.connectionClosed(connection, context: context)
                }
            }
            switch outcome {
            case .finished:
                break
            case .failed(let error):
                report(error, plugin: plugin, logger: pluginLogger)
            case .timedOut:
                report(PluginTimeout(plugin: plugin.name, hook: hook, budget: budget), plugin: plugin, logger: pluginLogger)
            }
        }
    }

    // MARK: Shared by every hook

    func budget(of plugin: any HeraldPlugin) -> Duration {
        plugin.timeBudget.map(Self.clamped) ?? timeBudget
    }

    /// Logs a failed or abandoned call and reports it to ``onError``.
    func report(_ error: any Error, plugin: any HeraldPlugin, logger: Logger) {
        if let timeout = error as? PluginTimeout {
            logger.error("plugin ran past its time budget; call abandoned", metadata: [
                "herald.budget_ms": "\(Self.milliseconds(timeout.budget))",
                "herald.hook": .string(timeout.hook.rawValue),
                "herald.policy": "\(plugin.failurePolicy)",
            ])
        } else {
            logger.error("plugin failed", metadata: ["error": "\(error)", "herald.policy": "\(plugin.failurePolicy)"])
        }
        onError?(plugin.name, error)
    }

    static func clamped(_ budget: Duration) -> Duration { max(budget, .milliseconds(1)) }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
