/// Events per second over a sliding window, for the status page's chart.
///
/// The router already keeps one running total of the events it accepted (a relaxed atomic
/// add in ``Router/publish(_:)``); nothing on the event path writes here. Once a second the
/// status endpoint's sampler reads that total and records the difference since the previous
/// sample in the slot of the current second. A sampler that wakes late (a busy machine)
/// charges the events to the second it woke in and records zeros for the seconds it skipped,
/// so the window always covers the last `capacity` seconds of wall-clock time.
struct EventRateRing: Sendable, Hashable {
    /// Seconds the ring covers.
    let capacity: Int
    /// One count per second; `newest` is the slot of `lastSecond`.
    private var counts: [Int]
    private var newest: Int
    /// The second (since the relay started) of the newest slot.
    private(set) var lastSecond: Int64
    /// The router's total at `lastSecond`.
    private var lastTotal: Int

    /// - Parameters:
    ///   - capacity: seconds kept (at least 1).
    ///   - startTotal: the running total at `startSecond` (the baseline of the first sample).
    ///   - startSecond: the second the baseline was taken at.
    init(capacity: Int = 300, startTotal: Int = 0, startSecond: Int64 = 0) {
        self.capacity = max(1, capacity)
        self.counts = Array(repeating: 0, count: self.capacity)
        self.newest = self.capacity - 1
        self.lastSecond = startSecond
        self.lastTotal = startTotal
    }

    /// Records the running `total` as of `second`: the events since the previous sample go to
    /// `second`'s slot (added to it when `second` was already sampled); seconds in between get
    /// zero. A sample older than the newest one, or a total that went down, records nothing.
    mutating func sample(total: Int, second: Int64) {
        let delta = max(0, total - lastTotal)
        if total > lastTotal { lastTotal = total }
        guard second >= lastSecond else { return }
        if second == lastSecond {
            counts[newest] += delta
            return
        }
        let skipped = min(Int64(capacity), second - lastSecond - 1)
        for _ in 0..<skipped { push(0) }
        push(delta)
        lastSecond = second
    }

    private mutating func push(_ value: Int) {
        newest = (newest + 1) % capacity
        counts[newest] = value
    }

    /// The counts, oldest first; the last element is `lastSecond`. Always `capacity` long
    /// (seconds before the relay started read as 0).
    var perSecond: [Int] {
        (0..<capacity).map { counts[(newest + 1 + $0) % capacity] }
    }

    /// Events in the newest `seconds` slots.
    func sum(lastSeconds seconds: Int) -> Int {
        let n = min(max(0, seconds), capacity)
        var total = 0
        for offset in 0..<n { total += counts[(newest - offset + capacity) % capacity] }
        return total
    }
}
