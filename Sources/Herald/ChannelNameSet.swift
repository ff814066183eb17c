/// A set of channel names that tells names apart by their UTF-8 bytes, as ``ChannelKey`` does.
///
/// `Set<String>` compares with Swift's `String ==`, canonical equivalence, so it holds only one
/// of `private-user.Kate` and `private-user.\u{212A}ate` (KELVIN SIGN), or of precomposed and
/// decomposed "é": a socket subscribed to one twin that subscribed to the other was taken for
/// a repeat and got no answer, and a lookup (unsubscribe, whisper membership) by one twin found
/// the other. Redis, Laravel, Pusher and the app's auth endpoint name channels by their bytes,
/// and so does this set. Its API is the part of `Set<String>`'s that the sessions use, and it
/// is as large as one (a `Set` of a one-`String` struct).
struct ChannelNameSet: Sequence, ExpressibleByArrayLiteral, Sendable {
    /// A name compared and hashed by its bytes.
    struct ExactName: Hashable, Sendable {
        let name: String

        static func == (lhs: ExactName, rhs: ExactName) -> Bool {
            ChannelKey.sameBytes(lhs.name, rhs.name)
        }

        func hash(into hasher: inout Hasher) {
            ChannelKey.hashBytes(name, into: &hasher)
        }
    }

    /// Iterates the names (in no particular order).
    struct Iterator: IteratorProtocol {
        fileprivate var base: Set<ExactName>.Iterator

        mutating func next() -> String? { base.next()?.name }
    }

    private var names: Set<ExactName> = []

    /// An empty set.
    init() {}

    /// A set of the literal's names.
    init(arrayLiteral names: String...) {
        self.names = Set(names.map(ExactName.init(name:)))
    }

    var count: Int { names.count }
    var isEmpty: Bool { names.isEmpty }
    var underestimatedCount: Int { names.count }

    /// Whether the set holds `name`'s exact bytes.
    func contains(_ name: String) -> Bool {
        names.contains(ExactName(name: name))
    }

    /// Adds `name` unless the set holds its exact bytes already.
    @discardableResult
    mutating func insert(_ name: String) -> (inserted: Bool, memberAfterInsert: String) {
        let (inserted, member) = names.insert(ExactName(name: name))
        return (inserted, member.name)
    }

    /// Removes `name`'s exact bytes; returns the removed name, `nil` when it was not there.
    @discardableResult
    mutating func remove(_ name: String) -> String? {
        names.remove(ExactName(name: name))?.name
    }

    mutating func removeAll() {
        names.removeAll()
    }

    func makeIterator() -> Iterator {
        Iterator(base: names.makeIterator())
    }
}
