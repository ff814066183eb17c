import HeraldCore
import HeraldFilter
import HeraldRewrite
import Logging
import NIOCore
import Testing

@Suite struct EventRewriterTests {
    let logger = Logger(label: "test")

    func event(_ channel: String = "orders", _ name: String = "App\\Events\\OrderShipped", data: String = "{}") -> Event {
        Event(channel: channel, name: name, data: ByteBuffer(string: data), source: .redis)
    }

    func rewrite(_ rules: [RewriteRule], _ event: Event) throws -> Event {
        try EventRewriter(rules: rules).rewrite(event, logger: logger)
    }

    func payload(_ rules: [RewriteRule], _ data: String) throws -> String {
        String(buffer: try rewrite(rules, event(data: data)).data)
    }

    // MARK: names and channels

    @Test func renameExactAndGlob() throws {
        let exact: [RewriteRule] = [.renameEvent(from: "App\\Events\\OrderShipped", to: "order.shipped")]
        #expect(try rewrite(exact, event()).name == "order.shipped")
        #expect(try rewrite(exact, event("orders", "App\\Events\\OrderShippedLate")).name == "App\\Events\\OrderShippedLate")

        let glob: [RewriteRule] = [.renameEvent(from: "App\\Events\\*", to: "legacy")]
        #expect(try rewrite(glob, event()).name == "legacy")
        #expect(try rewrite(glob, event("orders", "order.created")).name == "order.created")

        let suffix: [RewriteRule] = [.renameEvent(from: "App\\Events\\*", to: "app.*")]
        #expect(try rewrite(suffix, event()).name == "app.OrderShipped")
    }

    @Test func channelGlobMapping() throws {
        let rules: [RewriteRule] = [.mapChannel(from: "legacy.*", to: "orders.*")]
        #expect(try rewrite(rules, event("legacy.1")).channel == "orders.1")
        #expect(try rewrite(rules, event("legacy.")).channel == "orders.")
        #expect(try rewrite(rules, event("legacy.a.b")).channel == "orders.a.b")
        #expect(try rewrite(rules, event("legacy")).channel == "legacy")
        #expect(try rewrite(rules, event("xlegacy.1")).channel == "xlegacy.1")

        let exact: [RewriteRule] = [.mapChannel(from: "old", to: "new")]
        #expect(try rewrite(exact, event("old")).channel == "new")
        #expect(try rewrite(exact, event("older")).channel == "older")

        // A wildcard before the trailing `*`: the trailing `*` carries the longest suffix.
        let wild: [RewriteRule] = [.mapChannel(from: "private-?.*", to: "private-orders.*")]
        #expect(try rewrite(wild, event("private-x.1.2")).channel == "private-orders.1.2")
        #expect(try rewrite(wild, event("private-xy.1")).channel == "private-xy.1")

        // Glob `from`, literal `to`: everything matching collapses onto one channel.
        let collapse: [RewriteRule] = [.mapChannel(from: "tenant-*.orders", to: "orders")]
        #expect(try rewrite(collapse, event("tenant-42.orders")).channel == "orders")
    }

    @Test func rulesApplyInOrder() throws {
        let chained: [RewriteRule] = [.mapChannel(from: "a", to: "b"), .mapChannel(from: "b", to: "c")]
        #expect(try rewrite(chained, event("a")).channel == "c")
        let reversed: [RewriteRule] = [.mapChannel(from: "b", to: "c"), .mapChannel(from: "a", to: "b")]
        #expect(try rewrite(reversed, event("a")).channel == "b")

        let setThenRemove: [RewriteRule] = [.setField(path: "x", value: .number("1")), .removeField(path: "x")]
        #expect(try payload(setThenRemove, #"{"a":1}"#) == #"{"a":1}"#)
        let removeThenSet: [RewriteRule] = [.removeField(path: "x"), .setField(path: "x", value: .number("1"))]
        #expect(try payload(removeThenSet, #"{"x":0,"a":1}"#) == #"{"a":1,"x":1}"#)
        let setThenRedact: [RewriteRule] = [.setField(path: "secret", value: .string("s")), .redactField(path: "secret")]
        #expect(try payload(setThenRedact, #"{}"#) == #"{"secret":"[redacted]"}"#)
    }

    // MARK: payload edits

    @Test func setField() throws {
        let role: [RewriteRule] = [.setField(path: "user.role", value: .string("guest"))]
        // Replaced in place, order kept.
        #expect(try payload(role, #"{"user":{"role":"admin","id":7},"n":1.50}"#) == #"{"user":{"role":"guest","id":7},"n":1.50}"#)
        // Appended to an existing object.
        #expect(try payload(role, #"{"user":{"id":7}}"#) == #"{"user":{"id":7,"role":"guest"}}"#)
        // Missing intermediate objects are created.
        #expect(try payload(role, #"{"id":1}"#) == #"{"id":1,"user":{"role":"guest"}}"#)
        // Any JSON value.
        let object: [RewriteRule] = [.setField(path: "meta", value: .object([JSONMember(key: "v", value: .array([.bool(true), .null]))]))]
        #expect(try payload(object, #"{"id":1}"#) == #"{"id":1,"meta":{"v":[true,null]}}"#)
        // Escaped dots address a member whose name contains a dot.
        let dotted: [RewriteRule] = [.setField(path: #"a\.b"#, value: .number("2"))]
        #expect(try payload(dotted, #"{"a.b":1,"a":{"b":1}}"#) == #"{"a.b":2,"a":{"b":1}}"#)
    }

    @Test func removeField() throws {
        let rules: [RewriteRule] = [.removeField(path: "user.token")]
        #expect(try payload(rules, #"{"user":{"id":7,"token":"t"},"x":[1]}"#) == #"{"user":{"id":7},"x":[1]}"#)
        // Every duplicate goes.
        #expect(try payload([.removeField(path: "a")], #"{"a":1,"b":2,"a":3}"#) == #"{"b":2}"#)
    }

    @Test func redactField() throws {
        let rules: [RewriteRule] = [.redactField(path: "customer.email")]
        #expect(try payload(rules, #"{"customer":{"email":"a@b.c","name":"Ann"}}"#) == #"{"customer":{"email":"[redacted]","name":"Ann"}}"#)
        // Objects and duplicates are redacted whole.
        #expect(try payload([.redactField(path: "card")], #"{"card":{"n":"4111"},"card":"x"}"#) == #"{"card":"[redacted]","card":"[redacted]"}"#)
    }

    @Test func untouchedDataIsTheSameBuffer() throws {
        let original = #"{ "id" : 1 ,"email":"a\u0040b", "n": 1e3 }"#
        let rules: [RewriteRule] = [
            .renameEvent(from: "nothing*", to: "x"),
            .mapChannel(from: "legacy.*", to: "orders.*"),
            .removeField(path: "missing"),
            .redactField(path: "missing.deeper"),
            .setField(path: "id", value: .number("1")),  // already 1
            .setField(path: "email.x", value: .null),  // `email` is not an object
        ]
        let input = event(data: original)
        let output = try rewrite(rules, input)
        #expect(output.data == input.data)
        #expect(String(buffer: output.data) == original)
        #expect(output.channel == "orders")
        #expect(output.name == input.name)
    }

    @Test func nonObjectPayloadsPassUnchanged() throws {
        let rules: [RewriteRule] = [.setField(path: "a", value: .null), .mapChannel(from: "orders", to: "o")]
        for text in ["[1, 2]", "\"text\"", "42", "null", "{not json"] {
            let input = event(data: text)
            let output = try rewrite(rules, input)
            #expect(output.data == input.data)
            #expect(output.channel == "o")
        }
    }

    @Test func onlyTheEditedPayloadIsReserialized() throws {
        // Whitespace is normalized, number literals kept verbatim.
        let rules: [RewriteRule] = [.removeField(path: "b")]
        #expect(try payload(rules, "{ \"a\" : 1.0e+2 , \"b\" : 2 }") == #"{"a":1.0e+2}"#)
    }

    // MARK: configuration

    @Test func parsesConfiguration() throws {
        let json = try JSONReader.parse(#"""
        [
          {"op": "rename_event", "from": "App\\Events\\*", "to": "app.*"},
          {"op": "map_channel", "from": "legacy.*", "to": "orders.*"},
          {"op": "set", "path": "user.role", "value": {"name": "guest"}},
          {"op": "remove", "path": "internal"},
          {"op": "redact", "path": "user.email"}
        ]
        """#)
        let rules = try RewriteRule.parseList(json)
        #expect(rules == [
            .renameEvent(from: "App\\Events\\*", to: "app.*"),
            .mapChannel(from: "legacy.*", to: "orders.*"),
            .setField(path: "user.role", value: .object([JSONMember(key: "name", value: .string("guest"))])),
            .removeField(path: "internal"),
            .redactField(path: "user.email"),
        ])
        let rewriter = try EventRewriter(configuration: json)
        let out = rewriter.rewrite(event("legacy.9", data: #"{"user":{"email":"e"},"internal":1}"#), logger: logger)
        #expect(out.name == "app.OrderShipped")
        #expect(out.channel == "orders.9")
        #expect(String(buffer: out.data) == #"{"user":{"email":"[redacted]","role":{"name":"guest"}}}"#)
    }

    func configError(_ text: String) -> String? {
        do {
            _ = try RewriteRule.parseList(try JSONReader.parse(text))
            return nil
        } catch let error as RewriteConfigurationError {
            return error.description
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func configurationErrorsNameTheRule() {
        let ok = #"{"op":"remove","path":"a"}"#
        #expect(configError(#"{"op":"remove"}"#) == "rewrite rules: expected an array of rules")
        #expect(configError("[\(ok), 3]") == "rewrite rule 1: expected an object")
        #expect(configError(#"[{"path":"a"}]"#) == "rewrite rule 0: missing 'op'")
        #expect(configError(#"[{"op":1}]"#) == "rewrite rule 0: 'op' must be a string")
        #expect(configError("[\(ok), \(ok), {\"op\":\"frob\"}]") == "rewrite rule 2: unknown op 'frob' (expected rename_event, map_channel, set, remove or redact)")
        #expect(configError(#"[{"op":"rename_event","from":"a"}]"#) == "rewrite rule 0: missing 'to'")
        #expect(configError(#"[{"op":"map_channel","from":"a","to":7}]"#) == "rewrite rule 0: 'to' must be a string")
        #expect(configError(#"[{"op":"set","path":"a"}]"#) == "rewrite rule 0: missing 'value'")
        #expect(configError(#"[{"op":"remove","path":"a","value":1}]"#) == "rewrite rule 0: unknown key 'value' for op 'remove'")
        #expect(configError("[\(ok), {\"op\":\"redact\",\"path\":\"a..b\"}]") == "rewrite rule 1: empty segment in path 'a..b'")
        #expect(configError(#"[{"op":"redact","path":""}]"#) == "rewrite rule 0: empty segment in path ''")
        #expect(configError(#"[{"op":"redact","path":"a\\"}]"#) == #"rewrite rule 0: path 'a\' ends with a lone '\'"#)
        #expect(configError(#"[{"op":"map_channel","from":"a.*","to":"*.b"}]"#) == "rewrite rule 0: 'to' may contain a wildcard only as one trailing '*' (got '*.b')")
        #expect(configError(#"[{"op":"map_channel","from":"a","to":"b.*"}]"#) == "rewrite rule 0: 'to' ends with '*' but 'from' does not (got 'a' → 'b.*')")
        #expect(configError(#"[{"op":"rename_event","from":"","to":"b"}]"#) == "rewrite rule 0: 'from' must not be empty")
    }

    @Test func initValidatesRules() {
        #expect(throws: RewriteConfigurationError(ruleIndex: 1, message: "empty segment in path 'a.'")) {
            try EventRewriter(rules: [.removeField(path: "a"), .setField(path: "a.", value: .null)])
        }
    }

    // MARK: chain

    @Test func worksInAChainWithTheFilter() async {
        let rewriter: EventRewriter
        do {
            rewriter = try EventRewriter(rules: [
                .mapChannel(from: "legacy.*", to: "orders.*"),
                .redactField(path: "email"),
            ])
        } catch {
            Issue.record("\(error)")
            return
        }
        // The filter sees the rewritten channel.
        let chain = PluginChain([rewriter, EventFilter(allowChannels: ["orders.*"])])
        let out = await chain.run(event("legacy.1", data: #"{"email":"a@b.c"}"#), logger: logger)
        #expect(out.map(\.channel) == ["orders.1"])
        #expect(out.map { String(buffer: $0.data) } == [#"{"email":"[redacted]"}"#])
        #expect(await chain.run(event("invoices.1"), logger: logger).isEmpty)

        // Filter first: dropped events never reach the rewriter.
        let filterFirst = PluginChain([EventFilter(denyChannels: ["legacy.*"]), rewriter])
        #expect(await filterFirst.run(event("legacy.1"), logger: logger).isEmpty)
    }
}
