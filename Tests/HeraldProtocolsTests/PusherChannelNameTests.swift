import HeraldProtocols
import Testing

@Suite("Pusher channel names and error codes")
struct PusherChannelNameTests {
    @Test("kinds by prefix")
    func kinds() throws {
        let cases: [(String, PusherChannelName.Kind, Bool)] = [
            ("orders", .public, false),
            ("cache-orders", .public, true),
            ("private-orders.1", .private, false),
            ("private-cache-x", .private, true),
            ("private-encrypted-x", .privateEncrypted, false),
            ("private-encrypted-cache-x", .privateEncrypted, true),
            ("presence-chat.1", .presence, false),
            ("presence-cache-x", .presence, true),
            ("#server-to-user-12345", .serverToUser, false),
            ("#server-to-user-", .reserved, false),
            ("#other", .reserved, false),
            ("privatex", .public, false),
        ]
        for (name, kind, cache) in cases {
            let channel = try PusherChannelName(name)
            #expect(channel.kind == kind, "\(name)")
            #expect(channel.isCache == cache, "\(name)")
            #expect(PusherChannelName.kind(of: name) == kind)
            #expect(PusherChannelName.isCacheChannel(name) == cache, "\(name)")
        }
        for name in ["", "cache", "cache_x", "pcache-x", "private-encrypted-x", "presence-cachex", "#cache-x", "Cache-x"] {
            #expect(!PusherChannelName.isCacheChannel(name), "\(name)")
        }
        #expect(try PusherChannelName("#server-to-user-12345").serverToUserID == "12345")
        #expect(try PusherChannelName("orders").serverToUserID == nil)
        #expect(try PusherChannelName("private-a").requiresAuthorization)
        #expect(try PusherChannelName("private-encrypted-a").requiresAuthorization)
        #expect(try PusherChannelName("presence-a").requiresAuthorization)
        #expect(try !PusherChannelName("a").requiresAuthorization)
        #expect(try PusherChannelName("private-a").allowsClientEvents)
        #expect(try PusherChannelName("presence-a").allowsClientEvents)
        #expect(try !PusherChannelName("private-encrypted-a").allowsClientEvents)
        #expect(try !PusherChannelName("a").allowsClientEvents)
    }

    @Test("validation: charset and length")
    func validation() {
        #expect(PusherChannelName.isValid("-a-zA-Z0-9_=@,.;"))
        #expect(PusherChannelName.isValid(String(repeating: "a", count: 164)))
        #expect(!PusherChannelName.isValid(String(repeating: "a", count: 165)))
        #expect(PusherChannelName.isValid(String(repeating: "a", count: 200), maxLength: 200))
        for bad in ["", "#", "a b", "a#b", "##a", "a/b", "é", "a\n", "a:b", "a*"] {
            #expect(!PusherChannelName.isValid(bad), "\(bad)")
        }
        #expect(throws: PusherChannelName.ValidationError.empty) { try PusherChannelName("") }
        #expect(throws: PusherChannelName.ValidationError.tooLong(limit: 3)) { try PusherChannelName("abcd", maxLength: 3) }
        #expect(throws: PusherChannelName.ValidationError.invalidCharacter) { try PusherChannelName("a b") }
    }

    @Test("error codes: close behaviour and pusher-js reaction")
    func errorCodes() {
        #expect(PusherErrorCode.tlsOnly.clientReaction == .reconnectWithTLS)
        for code in [PusherErrorCode.applicationDoesNotExist, .applicationDisabled, .overConnectionQuota, .pathNotFound,
                     .invalidVersionString, .unsupportedProtocolVersion, .noProtocolVersion, .unauthorized] {
            #expect(code.clientReaction == .doNotReconnect)
            #expect(code.closesConnection)
        }
        #expect(PusherErrorCode.overCapacity.clientReaction == .reconnectWithBackoff)
        #expect(PusherErrorCode.genericReconnect.clientReaction == .reconnectNow)
        #expect(PusherErrorCode.pongReplyNotReceived.clientReaction == .reconnectNow)
        #expect(PusherErrorCode.closedAfterInactivity.clientReaction == .reconnectNow)
        #expect(!PusherErrorCode.clientEventRejected.closesConnection)
        #expect(PusherErrorCode.clientEventRejected.clientReaction == .noClose)
        #expect(!PusherErrorCode.serverError.closesConnection)
        #expect(PusherErrorCode.clientReaction(forCloseCode: 1002) == .reconnectWithBackoff)
        #expect(PusherErrorCode.clientReaction(forCloseCode: 4099) == .doNotReconnect)
        #expect(PusherErrorCode.clientReaction(forCloseCode: 4150) == .reconnectWithBackoff)
        #expect(PusherErrorCode.clientReaction(forCloseCode: 4299) == .reconnectNow)
        #expect(PusherErrorCode.allCases.allSatisfy { !$0.message.isEmpty })
        #expect(PusherErrorCode(rawValue: 4009) == .unauthorized)
    }
}
