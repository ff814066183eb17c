import Herald
import Testing

@Suite("slow-consumer settings in herald.yaml")
struct SlowConsumerConfigurationTests {
    @Test("defaults: a 128 KiB kernel send buffer and a 2 s close grace")
    func defaults() {
        let config = HeraldConfiguration()
        #expect(config.socketSendBufferBytes == 128 * 1024)
        #expect(config.slowConsumerCloseGrace == .seconds(2))
    }

    @Test("server.send_buffer_bytes and server.slow_consumer_grace, and their HERALD_* overrides")
    func fileAndEnvironment() throws {
        let text = """
            server:
              send_buffer_bytes: 0
              slow_consumer_grace: 500ms
            """
        let file = try HeraldConfigurationFile.parse(text).configuration
        #expect(file.socketSendBufferBytes == 0)
        #expect(file.slowConsumerCloseGrace == .milliseconds(500))

        let overridden = try HeraldConfigurationFile.parse(text, environment: [
            "HERALD_SEND_BUFFER_BYTES": "262144", "HERALD_SLOW_CONSUMER_GRACE": "5s",
        ]).configuration
        #expect(overridden.socketSendBufferBytes == 262_144)
        #expect(overridden.slowConsumerCloseGrace == .seconds(5))
    }

    @Test("out-of-range values name the key")
    func rejected() {
        #expect(throws: ConfigurationFileError.self) {
            _ = try HeraldConfigurationFile.parse("server: { send_buffer_bytes: -1 }")
        }
        #expect(throws: ConfigurationFileError.self) {
            _ = try HeraldConfigurationFile.parse("server: { slow_consumer_grace: soon }")
        }
        do {
            _ = try HeraldConfigurationFile.parse("server: { send_buffer_bytes: 2_000_000_000 }")
            Issue.record("an oversized send buffer was accepted")
        } catch {
            #expect("\(error)".contains("server.send_buffer_bytes"))
        }
    }
}
