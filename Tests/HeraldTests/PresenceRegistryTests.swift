@testable import Herald
import HeraldCore
import NIOCore
import NIOEmbedded
import Testing

/// A recipient that records what it is given (the registry only needs identity and a loop).
final class FakeRecipient: Recipient, @unchecked Sendable {
    let eventLoop: any EventLoop
    var delivered: [EncodedBroadcast] = []
    init(loop: any EventLoop) { self.eventLoop = loop }
    func deliver(_ broadcast: EncodedBroadcast) -> Bool {
        delivered.append(broadcast)
        return true
    }
    func flushDeliveries() {}
}

@Suite struct PresenceRegistryTests {
    let loop = EmbeddedEventLoop()

    func members(_ groups: ChannelRegistry.Groups?) -> Set<ObjectIdentifier> {
        Set(groups?.values.flatMap { $0.sessions.keys } ?? [])
    }

    @Test func aJoinersListAndTheJoinNoticeNeverOverlap() {
        let registry = ChannelRegistry()
        let a = FakeRecipient(loop: loop), b = FakeRecipient(loop: loop)
        let joinA = registry.joinPresence(a, socketID: "a", channel: "presence-x", member: PresenceMember(userID: .number("1")))
        #expect(joinA.first)
        #expect(members(joinA.audience).isEmpty)
        #expect(joinA.members.map(\.member.key) == ["1"])

        let joinB = registry.joinPresence(b, socketID: "b", channel: "presence-x", member: PresenceMember(userID: .string("2")))
        // B's own list has A, and only A is told about B; B is not in its own join's audience.
        #expect(joinB.first)
        #expect(joinB.members.map(\.member.key) == ["2", "1"])
        #expect(members(joinB.audience) == [ObjectIdentifier(a)])
        #expect(registry.subscriberCount("presence-x") == 2)
    }

    @Test func secondConnectionOfAUserIsNotANewMemberAndLeavesOnlyWithTheLast() {
        let registry = ChannelRegistry()
        let tab1 = FakeRecipient(loop: loop), tab2 = FakeRecipient(loop: loop), other = FakeRecipient(loop: loop)
        _ = registry.joinPresence(other, socketID: "o", channel: "presence-x", member: PresenceMember(userID: .number("9")))
        #expect(registry.joinPresence(tab1, socketID: "t1", channel: "presence-x", member: PresenceMember(userID: .number("7"))).first)
        // Laravel's numeric 7 and Pusher's "7" are the same user.
        let second = registry.joinPresence(tab2, socketID: "t2", channel: "presence-x", member: PresenceMember(userID: .string("7")))
        #expect(!second.first)
        #expect(second.members.count == 2)

        // The first tab's leave is the user's, not its last connection's.
        let first = registry.leavePresence(tab1, channel: "presence-x")
        #expect(first?.member.key == "7" && first?.last == false)
        let last = registry.leavePresence(tab2, channel: "presence-x")
        #expect(last?.member.key == "7" && last?.last == true)
        #expect(registry.leavePresence(tab2, channel: "presence-x") == nil)
        // The leave notice goes to whoever remains, not to the leaver.
        #expect(members(last?.audience) == [ObjectIdentifier(other)])
        #expect(registry.presenceMembers("presence-x").map(\.key) == ["9"])
        #expect(registry.subscriberCount("presence-x") == 1)
    }
}
