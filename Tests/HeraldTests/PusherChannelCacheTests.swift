@testable import Herald
import HeraldProtocols
import NIOCore
import Testing

@Suite("Pusher cache channels: last event, TTL, bounded size")
struct PusherChannelCacheTests {
    private func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test("a channel without an event, or with an expired one, is a cache miss")
    func miss() {
        let cache = PusherChannelCache()
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(text(cache.subscriberMessage(channel: "cache-a", ttl: .seconds(10), now: start))
            == #"{"event":"pusher:cache_miss","channel":"cache-a"}"#)
        cache.store(channel: "cache-a", name: "e", data: ByteBuffer(string: #"{"n":1}"#), dataForm: .string, now: start)
        #expect(cache.lastEvent(channel: "cache-a", ttl: .seconds(10), now: start + .seconds(9)) != nil)
        #expect(cache.lastEvent(channel: "cache-a", ttl: .seconds(10), now: start + .seconds(10)) == nil)
        #expect(cache.lastEvent(channel: "cache-a", ttl: .zero, now: start) == nil)
        #expect(text(cache.subscriberMessage(channel: "cache-a", ttl: .seconds(1), now: start + .seconds(2)))
            == #"{"event":"pusher:cache_miss","channel":"cache-a"}"#)
    }

    @Test("the last event wins and is encoded like a live Pusher event")
    func lastEventWins() {
        let cache = PusherChannelCache()
        cache.store(channel: "cache-a", name: "first", data: ByteBuffer(string: #"{"n":1}"#), dataForm: .string)
        cache.store(channel: "cache-a", name: "second", data: ByteBuffer(string: #""already a string""#), dataForm: .string)
        cache.store(channel: "private-cache-b", name: "client-x", data: ByteBuffer(string: #"{"k":true}"#), dataForm: .verbatim)
        #expect(cache.count == 2)
        #expect(text(cache.subscriberMessage(channel: "cache-a", ttl: .seconds(3600)))
            == #"{"event":"second","channel":"cache-a","data":"already a string"}"#)
        #expect(text(cache.subscriberMessage(channel: "private-cache-b", ttl: .seconds(3600)))
            == #"{"event":"client-x","channel":"private-cache-b","data":{"k":true}}"#)
    }

    @Test("past its capacity the channel cached first is evicted")
    func eviction() {
        let cache = PusherChannelCache(capacity: 3)
        let data = ByteBuffer(string: "1")
        for index in 0..<3 { cache.store(channel: "cache-\(index)", name: "e", data: data, dataForm: .string) }
        cache.store(channel: "cache-0", name: "again", data: data, dataForm: .string)  // rewriting does not move it
        cache.store(channel: "cache-3", name: "e", data: data, dataForm: .string)
        #expect(cache.count == 3)
        #expect(cache.lastEvent(channel: "cache-0", ttl: .seconds(60)) == nil)
        #expect(cache.lastEvent(channel: "cache-1", ttl: .seconds(60)) != nil)
        // Many more channels: still bounded, the newest three kept.
        for index in 4..<1_000 { cache.store(channel: "cache-\(index)", name: "e", data: data, dataForm: .string) }
        #expect(cache.count == 3)
        #expect((997..<1_000).allSatisfy { cache.lastEvent(channel: "cache-\($0)", ttl: .seconds(60)) != nil })
        #expect(cache.lastEvent(channel: "cache-996", ttl: .seconds(60)) == nil)
    }
}
