import HeraldProtocols
import NIOCore
import Testing

@Suite("Pusher signatures")
struct PusherSignatureTests {
    let key = "278d425bdf160c739803"
    let secret = "7ad3773142a6692b25b8"
    let socketID = "1234.1234"

    @Test("D.10 private channel vector")
    func privateVector() {
        let hex = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        #expect(PusherSignature.channelStringToSign(socketID: socketID, channel: "private-foobar") == "1234.1234:private-foobar")
        #expect(PusherSignature.channelAuth(key: key, secret: secret, socketID: socketID, channel: "private-foobar") == "\(key):\(hex)")
        #expect(PusherSignature.verifyChannelAuth("\(key):\(hex)", key: key, secret: secret, socketID: socketID, channel: "private-foobar"))
    }

    @Test("D.10 presence channel vector")
    func presenceVector() {
        let data = #"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#
        let hex = "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
        #expect(PusherSignature.channelAuth(key: key, secret: secret, socketID: socketID, channel: "presence-foobar", channelData: data) == "\(key):\(hex)")
        #expect(PusherSignature.verifyChannelAuth("\(key):\(hex)", key: key, secret: secret, socketID: socketID,
                                                  channel: "presence-foobar", channelData: data))
        // The exact string is signed: a re-serialized channel_data fails.
        #expect(!PusherSignature.verifyChannelAuth("\(key):\(hex)", key: key, secret: secret, socketID: socketID,
                                                   channel: "presence-foobar", channelData: #"{"user_id": 10,"user_info":{"name":"Mr. Channels"}}"#))
    }

    @Test("D.10 signin vector")
    func signinVector() {
        let hex = "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
        #expect(PusherSignature.signinStringToSign(socketID: socketID, userData: #"{"id":"12345"}"#) == #"1234.1234::user::{"id":"12345"}"#)
        #expect(PusherSignature.signinAuth(key: key, secret: secret, socketID: socketID, userData: #"{"id":"12345"}"#) == "\(key):\(hex)")
        #expect(PusherSignature.verifySignin("\(key):\(hex)", key: key, secret: secret, socketID: socketID, userData: #"{"id":"12345"}"#))
        #expect(!PusherSignature.verifySignin("\(key):\(hex)", key: key, secret: secret, socketID: "1234.1235", userData: #"{"id":"12345"}"#))
    }

    @Test("auth forms: whole string (Soketi), after-colon and bare hex (Reverb); wrong ones refused")
    func authForms() {
        let hex = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        func ok(_ auth: String) -> Bool {
            PusherSignature.verifyChannelAuth(auth, key: key, secret: secret, socketID: socketID, channel: "private-foobar")
        }
        #expect(ok("\(key):\(hex)"))
        #expect(ok("other-key:\(hex)"))
        #expect(ok(hex))
        #expect(!ok(""))
        #expect(!ok("\(key):"))
        #expect(!ok("\(key):\(hex.dropLast())"))
        #expect(!ok("\(key):\(hex)0"))
        #expect(!ok("\(key):" + String(repeating: "0", count: 64)))
        #expect(!PusherSignature.verifyChannelAuth("\(key):\(hex)", key: key, secret: "wrong", socketID: socketID, channel: "private-foobar"))
        #expect(!PusherSignature.verifyChannelAuth("\(key):\(hex)", key: key, secret: secret, socketID: socketID, channel: "private-foobaz"))
    }

    @Test("constant-time equality")
    func constantTime() {
        #expect(PusherSignature.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!PusherSignature.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!PusherSignature.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!PusherSignature.constantTimeEquals(Array("".utf8), Array("a".utf8)))
        #expect(PusherSignature.constantTimeEquals([UInt8](), [UInt8]()))
    }

    @Test("D.10 HTTP API vector: body_md5, string to sign, signature")
    func httpVector() throws {
        let body = ByteBuffer(string: #"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#)
        #expect(PusherSignature.bodyMD5(body) == "ec365a775a4cd0599faeb73354201b6f")
        let query: [(name: String, value: String)] = [
            ("auth_key", key), ("auth_timestamp", "1353088179"), ("auth_version", "1.0"),
            ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
        ]
        let expected = "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        #expect(PusherSignature.requestStringToSign(method: "POST", path: "/apps/3/events", query: query.reversed()) == expected)
        #expect(PusherSignature.hmacHex(secret: secret, message: expected) == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c")

        let signed = PusherSignature.signedQuery(method: "POST", path: "/apps/3/events", body: body, key: key, secret: secret, timestamp: 1353088179)
        #expect(signed.first { $0.name == "auth_signature" }?.value == "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c")
        #expect(signed.first { $0.name == "body_md5" }?.value == "ec365a775a4cd0599faeb73354201b6f")

        // The same request as it arrives, verified.
        let wire = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        try PusherSignature.verifyRequest(method: "POST", path: "/apps/3/events", query: PusherHTTPAPI.parseQuery(wire), body: body,
                                          key: key, secret: secret, now: 1353088179 + 600)
    }

    @Test("HTTP verification failures are 401")
    func httpVerificationFailures() {
        let body = ByteBuffer(string: #"{"name":"foo","channel":"a","data":"{}"}"#)
        let now: Int64 = 1_700_000_000
        let good = PusherSignature.signedQuery(method: "POST", path: "/apps/1/events", body: body, key: key, secret: secret, timestamp: now)
        func verify(_ query: [(name: String, value: String)], body: ByteBuffer? = nil, path: String = "/apps/1/events",
                    now: Int64 = 1_700_000_000) -> PusherHTTPAPIError? {
            do {
                try PusherSignature.verifyRequest(method: "POST", path: path, query: query, body: body, key: key, secret: secret, now: now)
                return nil
            } catch {
                return error
            }
        }
        #expect(verify(good, body: body) == nil)
        #expect(verify(good, body: body, now: now - 600) == nil)
        #expect(verify(good, body: body, now: now + 601)?.status == 401)
        #expect(verify(good, body: body, now: now - 601)?.status == 401)
        #expect(verify(good, body: ByteBuffer(string: #"{"name":"bar","channel":"a","data":"{}"}"#))?.status == 401)
        #expect(verify(good, body: body, path: "/apps/2/events")?.status == 401)
        #expect(verify(good.filter { $0.name != "auth_signature" }, body: body)?.message == "Missing auth_signature")
        #expect(verify(good.map { $0.name == "auth_key" ? ($0.name, "other") : $0 }, body: body)?.message == "Invalid auth_key")
        #expect(verify(good.map { $0.name == "auth_version" ? ($0.name, "2.0") : $0 }, body: body)?.status == 401)
        #expect(verify(good.map { $0.name == "auth_timestamp" ? ($0.name, "soon") : $0 }, body: body)?.status == 401)
        #expect(verify(good.map { $0.name == "auth_timestamp" ? ($0.name, "-9223372036854775808") : $0 }, body: body)?.status == 401)
        // Uppercase query keys are lowercased before signing; an extra parameter breaks the signature.
        #expect(verify(good.map { ($0.name.uppercased(), $0.value) }, body: body) == nil)
        #expect(verify(good + [("info", "user_count")], body: body)?.message == "Invalid signature")

        // GET with query parameters (decoded values, repeated keys joined by ",").
        let get = PusherSignature.signedQuery(method: "GET", path: "/apps/1/channels",
                                              query: [("filter_by_prefix", "presence-"), ("info", "user_count")],
                                              key: key, secret: secret, timestamp: now)
        #expect(get.first { $0.name == "body_md5" } == nil)
        #expect((try? PusherSignature.verifyRequest(method: "GET", path: "/apps/1/channels", query: get, body: nil,
                                                    key: key, secret: secret, now: now)) != nil)
        #expect(PusherSignature.canonicalQuery([("b", "2"), ("A", "1"), ("b", "3"), ("auth_signature", "x")]) == "a=1&b=2,3")
    }

    @Test("D.14 webhook vector")
    func webhookVector() {
        let body = ByteBuffer(string: #"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"test_channel"}]}"#)
        let hex = "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"
        #expect(PusherSignature.webhookSignature(secret: secret, body: body) == hex)
        #expect(PusherSignature.verifyWebhook(signature: hex, secret: secret, body: body))
        #expect(!PusherSignature.verifyWebhook(signature: String(hex.dropLast()) + "b", secret: secret, body: body))
    }

    @Test("socket ids")
    func socketIDs() {
        for _ in 0..<100 {
            let id = PusherSocketID.generate()
            #expect(PusherSocketID.isValid(id))
        }
        #expect(PusherSocketID.isValid("123456.789012"))
        #expect(PusherSocketID.isValid("1.2"))
        for bad in ["", ".", "1.", ".1", "1", "1.2.3", "a.1", "1.b", " 1.2", "1.2 ", "-1.2", "１.2", "1." + String(repeating: "1", count: 70)] {
            #expect(!PusherSocketID.isValid(bad), "\(bad)")
        }
    }
}
