import HeraldRedis
import NIOCore
import Testing

@Suite("RedisConfiguration(url:) and RedisPubSubMessage")
struct RedisConfigurationTests {
    @Test("host, port and database")
    func basics() throws {
        let plain = try RedisConfiguration(url: "redis://localhost")
        #expect(plain.host == "localhost")
        #expect(plain.port == 6379)
        #expect(plain.database == 0)
        #expect(plain.username == nil)
        #expect(plain.password == nil)

        let full = try RedisConfiguration(url: "redis://cache.internal:6380/2")
        #expect(full.host == "cache.internal")
        #expect(full.port == 6380)
        #expect(full.database == 2)

        let upper = try RedisConfiguration(url: "REDIS://10.0.0.5:7000/15?timeout=3")
        #expect(upper.host == "10.0.0.5")
        #expect(upper.port == 7000)
        #expect(upper.database == 15)

        let empty = try RedisConfiguration(url: "redis://")
        #expect(empty.host == "127.0.0.1")
        #expect(empty.port == 6379)

        let trailingSlash = try RedisConfiguration(url: "redis://h:1/")
        #expect(trailingSlash.database == 0)
        #expect(trailingSlash.port == 1)
    }

    @Test("credentials")
    func credentials() throws {
        let passwordOnly = try RedisConfiguration(url: "redis://:secret@h:7/3")
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "secret")
        #expect(passwordOnly.database == 3)

        let user = try RedisConfiguration(url: "redis://alice:s3cret@h")
        #expect(user.username == "alice")
        #expect(user.password == "s3cret")
        #expect(user.host == "h")

        let bare = try RedisConfiguration(url: "redis://secret@h")
        #expect(bare.username == nil)
        #expect(bare.password == "secret")

        let encoded = try RedisConfiguration(url: "redis://us%40er:p%40ss%3Aw%2Fd@h:9")
        #expect(encoded.username == "us@er")
        #expect(encoded.password == "p@ss:w/d")
        #expect(encoded.host == "h")
        #expect(encoded.port == 9)

        let utf8 = try RedisConfiguration(url: "redis://:caf%C3%A9@h")
        #expect(utf8.password == "café")
    }

    @Test("IPv6 literals")
    func ipv6() throws {
        let withPort = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(withPort.host == "::1")
        #expect(withPort.port == 6390)
        #expect(withPort.database == 1)

        let noPort = try RedisConfiguration(url: "redis://:pw@[2001:db8::7]")
        #expect(noPort.host == "2001:db8::7")
        #expect(noPort.port == 6379)
        #expect(noPort.password == "pw")
    }

    @Test("invalid URLs are refused with .invalidConfiguration", arguments: [
        "rediss://h:6379", "http://h", "localhost:6379", "redis://h:0", "redis://h:70000", "redis://h:abc",
        "redis://h:", "redis://h/-1", "redis://h/x", "redis://[::1", "redis://[::1]:0",
    ])
    func invalid(url: String) {
        do {
            _ = try RedisConfiguration(url: url)
            Issue.record("'\(url)' was accepted")
        } catch {
            #expect(error.kind == .invalidConfiguration)
            #expect(error.message.isEmpty == false)
        }
    }

    @Test("description masks the password")
    func description() throws {
        #expect(try RedisConfiguration(url: "redis://alice:s3cret@h:7/2").description == "redis://alice:***@h:7/2")
        #expect(try RedisConfiguration(url: "redis://:s3cret@h").description == "redis://:***@h:6379/0")
        #expect(try RedisConfiguration(url: "redis://h:7").description == "redis://h:7/0")
        #expect(RedisConfiguration().description == "redis://127.0.0.1:6379/0")
    }

    @Test("memberwise defaults")
    func defaults() {
        let configuration = RedisConfiguration(reconnectBaseDelay: .milliseconds(5), reconnectMaxDelay: .milliseconds(50))
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 6379)
        #expect(configuration.connectTimeout == .seconds(5))
        #expect(configuration.reconnectBaseDelay == .milliseconds(5))
        #expect(configuration.reconnectMaxDelay == .milliseconds(50))
    }

    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    @Test("RedisPubSubMessage(push:)")
    func pubSubMessages() throws {
        let message = try #require(RedisPubSubMessage(push: .array([Self.bulk("message"), Self.bulk("orders"), Self.bulk("{\"a\":1}")])))
        #expect(message.pattern == nil)
        #expect(message.channel == "orders")
        #expect(String(buffer: message.payload) == "{\"a\":1}")

        let pmessage = try #require(RedisPubSubMessage(push: .array([Self.bulk("pmessage"), Self.bulk("laravel_*"), Self.bulk("laravel_orders"), .bulkString(ByteBuffer(bytes: [0, 255]))])))
        #expect(pmessage.pattern == "laravel_*")
        #expect(pmessage.channel == "laravel_orders")
        #expect(Array(pmessage.payload.readableBytesView) == [0, 255])

        #expect(RedisPubSubMessage(push: .array([Self.bulk("psubscribe"), Self.bulk("laravel_*"), .integer(1)])) == nil)
        #expect(RedisPubSubMessage(push: .array([Self.bulk("subscribe"), Self.bulk("orders"), .integer(1)])) == nil)
        #expect(RedisPubSubMessage(push: .array([Self.bulk("message"), Self.bulk("orders")])) == nil)
        #expect(RedisPubSubMessage(push: .array([Self.bulk("pmessage"), Self.bulk("p"), Self.bulk("c")])) == nil)
        #expect(RedisPubSubMessage(push: .array([Self.bulk("message"), Self.bulk("orders"), .integer(1)])) == nil)
        #expect(RedisPubSubMessage(push: .array([Self.bulk("message"), .null, Self.bulk("x")])) == nil)
        #expect(RedisPubSubMessage(push: .integer(1)) == nil)
        #expect(RedisPubSubMessage(push: .simpleString("message")) == nil)
    }
}
