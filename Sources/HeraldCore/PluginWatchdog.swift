import Logging
import Synchronization

// Time budgets without a timer per call.
//
// Racing every plugin call against a timer costs two child tasks and a sleep per call (about
// 50 µs measured here, against 20 ns for the call itself). Instead, a call in flight is just a
// deadline recorded under a lock next to the task running it, and one watchdog per chain wakes
// while any call is in flight, at the earliest deadline. When a deadline passes, the watchdog
// cancels the task stuck in the call, applies the plugin's failure policy and continues the
// run in a new task: the stuck task's eventual result is discarded, so a plugin that ignores
// cancellation still cannot hold anything up.

/// Work with deadlines that ``PluginWatchdog`` enforces.
protocol WatchedWork: AnyObject, Sendable {
    /// Enforces the deadline of the call in flight if it has passed at `now`. Returns the
    /// deadline still ahead, or `nil` when no call is in flight (any more).
    func enforce(now: ContinuousClock.Instant) -> ContinuousClock.Instant?
}

/// Enforces the time budgets of one chain's plugin calls.
///
/// It runs only while some work is registered, in a task of its own, sleeping until the
/// earliest deadline in flight and never longer than the chain's shortest budget: every
/// deadline is set at least that far ahead, so none is missed while it sleeps.
final class PluginWatchdog: Sendable {
    private struct State {
        var work: [ObjectIdentifier: any WatchedWork] = [:]
        var running = false
    }

    private let state = Mutex(State())
    /// The shortest budget of any plugin in the chain.
    let shortestBudget: Duration

    init(shortestBudget: Duration) {
        self.shortestBudget = max(shortestBudget, .milliseconds(1))
    }

    /// Starts watching `work` (and the watchdog, when it is not running).
    func watch(_ work: any WatchedWork) {
        let start = state.withLock { state -> Bool in
            state.work[ObjectIdentifier(work)] = work
            guard !state.running else { return false }
            state.running = true
            return true
        }
        if start {
            Task.detached { await self.loop() }
        }
    }

    /// Stops watching `work`.
    func unwatch(_ work: any WatchedWork) {
        state.withLock { _ = $0.work.removeValue(forKey: ObjectIdentifier(work)) }
    }

    /// Work currently watched (for tests).
    var watchedCount: Int { state.withLock { $0.work.count } }

    private func loop() async {
        while true {
            let watched = state.withLock { state -> [any WatchedWork]? in
                guard !state.work.isEmpty else {
                    state.running = false
                    return nil
                }
                return Array(state.work.values)
            }
            guard let watched else { return }
            let now = ContinuousClock.now
            var wake = now + shortestBudget
            for work in watched {
                if let deadline = work.enforce(now: now), deadline < wake { wake = deadline }
            }
            // Nothing cancels this task; a failed sleep only means an early check.
            try? await Task.sleep(until: wake, clock: .continuous)
        }
    }
}

/// Runs events through a chain's event plugins under their time budgets.
///
/// A runner is driven by one task at a time, its *owner*. The owner calls ``run(_:owner:)``
/// for one event after another; when a plugin call overruns its budget, the watchdog makes a
/// new task the owner, which finishes the event (the plugin's failure policy applied) and
/// hands its outputs to `onTakeover` — the former owner gets `nil` once the stuck call
/// returns, and must stop. The router keeps one runner per channel in flight, so the hand-over
/// keeps the channel's order.
package final class PluginRunner: WatchedWork {
    private struct Call {
        let plugin: Int
        let input: Event
        let deadline: ContinuousClock.Instant
        /// The task in the call.
        let task: CallingTask?
    }

    /// The task inside a plugin call, for the watchdog to cancel. `UnsafeCurrentTask` is not
    /// `Sendable` because it is only valid while its task runs; this one is only used under the
    /// runner's lock while `State.call` is set, and the task cannot leave the call without
    /// taking that lock, so it is still running whenever it is used.
    private struct CallingTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private struct State {
        var owner = 0
        /// Events still to run, with the index of the next plugin each meets (a stack:
        /// replacements are pushed in reverse, so outputs keep the order of a depth-first run).
        var pending: [(event: Event, next: Int)] = []
        var outputs: [Event] = []
        var call: Call?
        /// The event given to ``run(_:owner:)``.
        var input: Event?
    }

    private enum Step {
        case call(Event, Int)
        case done([Event])
        case abandoned
    }

    private let state = Mutex(State())
    private let chain: PluginChain
    private let logger: Logger
    private let onTakeover: @Sendable (_ runner: PluginRunner, _ input: Event, _ outputs: [Event], _ owner: Int) async -> Void

    /// The owner token of the task that creates the runner.
    package let firstOwner = 0

    /// - Parameter onTakeover: called in the new owner's task with the event it finished after
    ///   a takeover (as given to ``run(_:owner:)``), its outputs, and the new owner token (to go
    ///   on calling ``run(_:owner:)``).
    package init(chain: PluginChain, logger: Logger, onTakeover: @escaping @Sendable (_ runner: PluginRunner, _ input: Event, _ outputs: [Event], _ owner: Int) async -> Void) {
        self.chain = chain
        self.logger = logger
        self.onTakeover = onTakeover
        chain.watchdog.watch(self)
    }

    /// Stops the watchdog from watching this runner (it has no more events to run).
    package func close() {
        chain.watchdog.unwatch(self)
    }

    /// Runs `event` through the chain in the calling task. Returns the events to deliver, or
    /// `nil` when `owner` no longer owns the runner (the watchdog handed the event to another
    /// task, which passes the outputs to `onTakeover`).
    package func run(_ event: Event, owner: Int) async -> [Event]? {
        let owned = state.withLock { state -> Bool in
            guard state.owner == owner else { return false }
            state.pending.append((event, 0))
            state.input = event
            return true
        }
        guard owned else { return nil }
        return await drive(owner: owner)
    }

    private func drive(owner: Int) async -> [Event]? {
        await withUnsafeCurrentTask { task -> [Event]? in
            let plugins = chain.eventPlugins
            while true {
                let now = ContinuousClock.now
                let step = state.withLock { state -> Step in
                    guard state.owner == owner else { return .abandoned }
                    while let (event, next) = state.pending.popLast() {
                        guard next < plugins.count else {
                            state.outputs.append(event)
                            continue
                        }
                        state.call = Call(plugin: next, input: event, deadline: now + chain.eventBudgets[next], task: task.map(CallingTask.init))
                        return .call(event, next)
                    }
                    defer { state.outputs = [] }
                    return .done(state.outputs)
                }
                let event: Event
                let index: Int
                switch step {
                case .abandoned: return nil
                case .done(let outputs): return outputs
                case .call(let e, let i): (event, index) = (e, i)
                }
                let plugin = plugins[index]
                let context = PluginContext(logger: Self.logger(logger, plugin: plugin, event: event))
                let result: Result<PluginDecision, any Error>
                do {
                    result = .success(try await plugin.process(event, context: context))
                } catch {
                    result = .failure(error)
                }
                let kept = state.withLock { state -> Bool in
                    guard state.owner == owner else { return false }
                    state.call = nil
                    switch result {
                    case .success(.pass(let next)):
                        state.pending.append((next, index + 1))
                    case .success(.drop):
                        break
                    case .success(.replace(let events)):
                        for replacement in events.reversed() { state.pending.append((replacement, index + 1)) }
                    case .failure:
                        if plugin.failurePolicy == .pass { state.pending.append((event, index + 1)) }
                    }
                    return true
                }
                guard kept else {
                    context.logger.debug("plugin returned after its time budget; its result is ignored")
                    return nil
                }
                switch result {
                case .success(.drop(let reason)):
                    context.logger.debug("plugin dropped the event", metadata: ["herald.reason": .string(reason)])
                case .failure(let error):
                    chain.report(error, plugin: plugin, logger: context.logger)
                case .success:
                    break
                }
            }
        }
    }

    func enforce(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        enum Check {
            case idle
            case until(ContinuousClock.Instant)
            case expired(plugin: Int, input: Event, run: Event?, owner: Int)
        }
        let check = state.withLock { state -> Check in
            guard let call = state.call else { return .idle }
            guard now >= call.deadline else { return .until(call.deadline) }
            state.owner &+= 1
            state.call = nil
            if chain.eventPlugins[call.plugin].failurePolicy == .pass {
                state.pending.append((call.input, call.plugin + 1))
            }
            // Under the lock: the task is still inside the call, so the reference is valid.
            call.task?.task.cancel()
            return .expired(plugin: call.plugin, input: call.input, run: state.input, owner: state.owner)
        }
        switch check {
        case .idle:
            return nil
        case .until(let deadline):
            return deadline
        case .expired(let index, let input, let run, let owner):
            let plugin = chain.eventPlugins[index]
            let timeout = PluginTimeout(plugin: plugin.name, hook: .process, budget: chain.eventBudgets[index])
            chain.report(timeout, plugin: plugin, logger: Self.logger(logger, plugin: plugin, event: input))
            Task.detached { [self] in
                if let outputs = await self.drive(owner: owner) {
                    await self.onTakeover(self, run ?? input, outputs, owner)
                }
            }
            return nil
        }
    }

    static func logger(_ base: Logger, plugin: any HeraldPlugin, event: Event) -> Logger {
        var logger = base
        logger[metadataKey: "herald.plugin"] = .string(plugin.name)
        logger[metadataKey: "herald.channel"] = .string(event.channel)
        logger[metadataKey: "herald.event"] = .string(event.name)
        return logger
    }
}

/// How a budgeted hook call ended.
enum PluginCallOutcome<Value: Sendable>: Sendable {
    case finished(Value)
    case failed(any Error)
    case timedOut
}

/// One hook call in a task of its own, abandoned by the watchdog at its deadline.
final class BudgetedCall<Value: Sendable>: WatchedWork {
    typealias Continuation = CheckedContinuation<PluginCallOutcome<Value>, Never>

    private struct State {
        var continuation: Continuation?
        var task: Task<Void, Never>?
    }

    private let state: Mutex<State>
    private let deadline: ContinuousClock.Instant
    private let watchdog: PluginWatchdog

    private init(continuation: Continuation, deadline: ContinuousClock.Instant, watchdog: PluginWatchdog) {
        self.state = Mutex(State(continuation: continuation))
        self.deadline = deadline
        self.watchdog = watchdog
    }

    /// Runs `operation` in a new task and returns its outcome, or `.timedOut` once `budget`
    /// has passed (the task is then cancelled and its result ignored).
    static func run(on watchdog: PluginWatchdog, budget: Duration, _ operation: @escaping @Sendable () async throws -> Value) async -> PluginCallOutcome<Value> {
        await withCheckedContinuation { continuation in
            let call = BudgetedCall(continuation: continuation, deadline: .now + budget, watchdog: watchdog)
            watchdog.watch(call)
            let task = Task {
                let outcome: PluginCallOutcome<Value>
                do {
                    outcome = .finished(try await operation())
                } catch {
                    outcome = .failed(error)
                }
                call.finish(outcome)
            }
            call.started(task)
        }
    }

    private func started(_ task: Task<Void, Never>) {
        let expired = state.withLock { state -> Bool in
            guard state.continuation != nil else { return true }
            state.task = task
            return false
        }
        if expired { task.cancel() }
    }

    private func finish(_ outcome: PluginCallOutcome<Value>) {
        let continuation = state.withLock { state -> Continuation? in
            defer { state = State() }
            return state.continuation
        }
        guard let continuation else { return }
        watchdog.unwatch(self)
        continuation.resume(returning: outcome)
    }

    func enforce(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard now >= deadline else {
            return state.withLock { $0.continuation == nil } ? nil : deadline
        }
        let (continuation, task) = state.withLock { state -> (Continuation?, Task<Void, Never>?) in
            defer { state = State() }
            return (state.continuation, state.task)
        }
        guard let continuation else { return nil }
        watchdog.unwatch(self)
        task?.cancel()
        continuation.resume(returning: .timedOut)
        return nil
    }
}
