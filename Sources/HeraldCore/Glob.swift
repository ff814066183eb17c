/// Glob matching for channel and event names: `*` matches any run of characters (including
/// none), `?` exactly one; everything else matches itself. Linear in practice (the classic
/// backtracking-on-star walk). Shared by the bundled plugins and available to third-party ones.
public enum Glob {
    /// Whether `text` matches `pattern` as a whole: `Glob.matches("orders.1", pattern: "orders.*")`
    /// is true, `Glob.matches("orders.1", pattern: "orders")` is false.
    public static func matches(_ text: String, pattern: String) -> Bool {
        let t = Array(text.unicodeScalars)
        let p = Array(pattern.unicodeScalars)
        var ti = 0, pi = 0
        var star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                ti += 1
                pi += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
