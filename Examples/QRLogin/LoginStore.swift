import Synchronization

/// How long things live, and how many pending codes the demo keeps.
struct LoginLimits: Sendable {
    /// How long a login code may be confirmed after the page showed it.
    var codeLifetime: Duration = .seconds(300)
    /// How long the token broadcast to the page may wait to be redeemed at `/dashboard`.
    var tokenLifetime: Duration = .seconds(120)
    /// How long a dashboard session lasts.
    var sessionLifetime: Duration = .seconds(3600)
    /// Most codes waiting at once; beyond it `GET /` answers 503 rather than grow without bound.
    var maxPendingCodes: Int = 10_000
}

/// The demo's whole back-end state: login codes, the one-time tokens confirmations create,
/// and the sessions redeemed tokens open. In memory, behind one lock; every entry expires.
final class LoginStore: Sendable {
    /// A code the login page shows.
    struct NewCode: Sendable {
        let secret: Secret
        let lifetime: Duration
    }

    /// What a code is, as `/scan` and `/confirm` see it.
    enum CodeState: Sendable, Equatable {
        /// Waiting for confirmation.
        case pending
        /// Already confirmed once.
        case used
        /// Never issued, malformed, or expired.
        case unknown
    }

    /// The outcome of a confirmation.
    enum Confirmation: Sendable, Equatable {
        /// The code was pending: here is its one-time token.
        case confirmed(token: String)
        case alreadyUsed
        case unknown
    }

    private struct Code {
        var expires: ContinuousClock.Instant
        var used: Bool
    }

    private struct State {
        var codes: [String: Code] = [:]
        var tokens: [String: ContinuousClock.Instant] = [:]
        var sessions: [String: ContinuousClock.Instant] = [:]
        var nextSweep: ContinuousClock.Instant

        /// Drops expired entries, at most once a second (lookups check expiry themselves).
        mutating func sweep(now: ContinuousClock.Instant) {
            guard now >= nextSweep else { return }
            nextSweep = now + .seconds(1)
            codes = codes.filter { $0.value.expires > now }
            tokens = tokens.filter { $0.value > now }
            sessions = sessions.filter { $0.value > now }
        }
    }

    let limits: LoginLimits
    private let clock = ContinuousClock()
    private let storage: Mutex<State>

    init(limits: LoginLimits) {
        self.limits = limits
        self.storage = Mutex(State(nextSweep: ContinuousClock().now))
    }

    /// A fresh code, or `nil` when ``LoginLimits/maxPendingCodes`` are already waiting.
    func newCode() -> NewCode? {
        let now = clock.now
        let secret = Secret.random()
        let lifetime = limits.codeLifetime
        let stored = storage.withLock { state -> Bool in
            state.sweep(now: now)
            guard state.codes.count < limits.maxPendingCodes else { return false }
            state.codes[secret.text] = Code(expires: now + lifetime, used: false)
            return true
        }
        return stored ? NewCode(secret: secret, lifetime: lifetime) : nil
    }

    /// The state of `code` (any text: malformed codes are simply unknown).
    func state(of code: Substring) -> CodeState {
        guard Secret.isWellFormed(code) else { return .unknown }
        let now = clock.now
        return storage.withLock { state in
            guard let entry = state.codes[String(code)], entry.expires > now else { return .unknown }
            return entry.used ? .used : .pending
        }
    }

    /// Marks `code` used and creates its one-time token: only the first confirmation of a
    /// pending code succeeds.
    func confirm(_ code: Substring) -> Confirmation {
        guard Secret.isWellFormed(code) else { return .unknown }
        let now = clock.now
        let token = Secret.random().text
        return storage.withLock { state in
            state.sweep(now: now)
            guard var entry = state.codes[String(code)], entry.expires > now else { return .unknown }
            guard !entry.used else { return .alreadyUsed }
            entry.used = true
            state.codes[String(code)] = entry
            state.tokens[token] = now + limits.tokenLifetime
            return .confirmed(token: token)
        }
    }

    /// Undoes a confirmation whose broadcast could not be queued, so it can be retried.
    func revert(_ code: Substring, token: String) {
        storage.withLock { state in
            state.tokens[token] = nil
            state.codes[String(code)]?.used = false
        }
    }

    /// Redeems a one-time token for a new session id; `nil` if the token is unknown, expired or
    /// already redeemed.
    func redeem(token: Substring) -> String? {
        guard Secret.isWellFormed(token) else { return nil }
        let now = clock.now
        let session = Secret.random().text
        return storage.withLock { state in
            state.sweep(now: now)
            guard let expires = state.tokens.removeValue(forKey: String(token)), expires > now else { return nil }
            state.sessions[session] = now + limits.sessionLifetime
            return session
        }
    }

    /// Whether `session` is a live session id.
    func isSession(_ session: Substring) -> Bool {
        guard Secret.isWellFormed(session) else { return false }
        let now = clock.now
        return storage.withLock { state in
            guard let expires = state.sessions[String(session)] else { return false }
            return expires > now
        }
    }
}
