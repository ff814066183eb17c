import ArgumentParser
import AsyncHTTPClient
import HeraldCore
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `herald status`: a running node's state, read from its `/status.json`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running node's connections, channels, presence, event rate and Redis state.",
        discussion: """
            Reads GET /status.json from the node. The node must run with --status-token (or
            HERALD_STATUS_TOKEN, or status.token in herald.yaml); pass the same token here.
            The same numbers, live, are on the node's status page: <url>/status?token=<token>.
            """
    )

    @Option(help: ArgumentHelp("The node's base URL. [env: HERALD_URL] (default: http://127.0.0.1:6001)", valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("The node's status token. [env: HERALD_STATUS_TOKEN]", valueName: "token"))
    var token: String?

    @Option(help: "Rows of the busiest-channel table, 1 to 100.")
    var top: Int = 10

    @Flag(help: "Print the raw status document (JSON) instead of the summary.")
    var json = false

    func validate() throws {
        guard (1...100).contains(top) else { throw ValidationError("--top must be from 1 to 100") }
    }

    func run() async throws {
        let node = try NodeClient(url: url, token: token, readTimeout: .seconds(10))
        let body = try await node.get(path: "/status.json", query: [("top", String(top))]) { response, client in
            try await response.body.collect(upTo: 16 << 20)
        }
        if json {
            writeOut(String(buffer: body) + "\n")
            return
        }
        let document: JSONValue
        do {
            document = try JSONReader.parse(body)
        } catch {
            throw NodeClientError("\(node.base)/status.json did not answer with JSON (\(error)); is --url a Herald node?")
        }
        writeOut(StatusSummary.render(document, base: node.base))
    }
}

/// `herald tail`: the events flowing through a running node, one line each.
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print the events flowing through a running node, one line per event, until Ctrl-C.",
        discussion: """
            Streams GET /tail (Server-Sent Events) from the node: every event after the plugins
            and before delivery, whatever its source (Redis, HTTP API, client events). Filter
            with globs: --channel 'orders.*' --event 'App\\Events\\*' ('*' any run, '?' one
            character). Payloads longer than 2 KiB are cut (marked with …). If this terminal
            reads more slowly than events arrive, the node drops lines for it and says how many.
            The node must run with --status-token; pass the same token here.
            """
    )

    @Option(help: ArgumentHelp("The node's base URL. [env: HERALD_URL] (default: http://127.0.0.1:6001)", valueName: "url"))
    var url: String?

    @Option(help: ArgumentHelp("The node's status token. [env: HERALD_STATUS_TOKEN]", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Only events on channels matching this glob.", valueName: "glob"))
    var channel: String?

    @Option(help: ArgumentHelp("Only events whose name matches this glob.", valueName: "glob"))
    var event: String?

    @Flag(help: "Print each event as the node's JSON line instead of the readable form.")
    var json = false

    func run() async throws {
        let node = try NodeClient(url: url, token: token, readTimeout: .seconds(60))
        var query: [(String, String)] = []
        if let channel { query.append(("channel", channel)) }
        if let event { query.append(("event", event)) }
        let json = self.json
        let filter = "channel=\(channel ?? "*") event=\(event ?? "*")"
        try await node.get(path: "/tail", query: query) { response, _ in
            var parser = ServerSentEvents()
            for try await chunk in response.body {
                for message in parser.feed(chunk) {
                    switch message {
                    case .comment(let text) where text.hasPrefix("herald tail"):
                        writeError("tailing \(node.base) (\(filter)); Ctrl-C to stop\n")
                    case .comment(let text) where text.hasPrefix("dropped"):
                        writeError("… \(text)\n")
                    case .comment:
                        break
                    case .data(let line):
                        writeOut((json ? line : TailFormat.render(line)) + "\n")
                    }
                }
            }
            writeError("the node closed the stream (it is shutting down?)\n")
        }
    }
}

// MARK: - HTTP

/// What went wrong talking to a node, said for a person.
struct NodeClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A status-endpoint client for one node: base URL, token, and the errors a person understands.
struct NodeClient {
    /// `http(s)://host:port`, no trailing slash.
    let base: String
    let token: String?
    let readTimeout: TimeAmount

    init(url: String?, token: String?, readTimeout: TimeAmount) throws {
        var base = url ?? environment("URL") ?? "http://127.0.0.1:6001"
        guard base.hasPrefix("http://") || base.hasPrefix("https://") else {
            throw ValidationError("--url '\(base)' must start with http:// or https:// (e.g. http://127.0.0.1:6001)")
        }
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.token = (token ?? environment("STATUS_TOKEN")).flatMap { $0.isEmpty ? nil : $0 }
        self.readTimeout = readTimeout
    }

    /// GETs `path` and hands a 200 response to `body`; any other answer becomes a
    /// ``NodeClientError`` that says what to do.
    func get<T: Sendable>(
        path: String,
        query: [(String, String)],
        _ body: (HTTPClientResponse, HTTPClient) async throws -> T
    ) async throws -> T {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: readTimeout))
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        do {
            let result = try await request(client: client, path: path, query: query, body)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func request<T: Sendable>(
        client: HTTPClient,
        path: String,
        query: [(String, String)],
        _ body: (HTTPClientResponse, HTTPClient) async throws -> T
    ) async throws -> T {
        let queryText = query.map { "\($0.0)=\(percentEncoded($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: base + path + (queryText.isEmpty ? "" : "?" + queryText))
        request.method = .GET
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(10))
        } catch {
            throw NodeClientError("cannot reach Herald at \(base): \(Self.explain(error)). Is the node running, and is --url (HERALD_URL) right?")
        }
        switch response.status.code {
        case 200:
            do {
                return try await body(response, client)
            } catch let error as NodeClientError {
                throw error
            } catch {
                throw NodeClientError("lost the connection to \(base): \(Self.explain(error))")
            }
        case 401:
            if token == nil {
                throw NodeClientError("\(base) wants a status token (401): pass the node's token with --token or HERALD_STATUS_TOKEN")
            }
            throw NodeClientError("\(base) refused the status token (401): pass the token the node was started with (its --status-token / HERALD_STATUS_TOKEN)")
        case 404:
            throw NodeClientError("the status endpoints are off on \(base) (404): start the node with --status-token <token> (or HERALD_STATUS_TOKEN, or status.token in herald.yaml)")
        default:
            let text = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            let message = (try? JSONReader.parse(text))?["error"]?.stringValue ?? String(text.prefix(200))
            throw NodeClientError("\(base)\(path) answered \(response.status.code) \(response.status.reasonPhrase)\(message.isEmpty ? "" : ": \(message)")")
        }
    }

    /// A connection error in a few words ("connection refused", "timed out", …).
    static func explain(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return explain(first.error) }
            if let resolution = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve \(connection.host): \(resolution)" }
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable"
            default: return String(cString: strerror(io.errnoCode)).lowercased()
            }
        }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout: return "timed out connecting"
            case .readTimeout: return "the node stopped answering (read timed out)"
            case .deadlineExceeded: return "timed out"
            case .remoteConnectionClosed: return "the node closed the connection"
            default: return "\(client)"
            }
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError { return "timed out connecting" }
        return "\(error)"
    }
}

/// A Server-Sent Events reader for Herald's stream: `data:` lines and `:` comments.
struct ServerSentEvents {
    enum Message: Equatable {
        case data(String)
        case comment(String)
    }

    private var pending: [UInt8] = []
    /// Longest line kept (longer ones are cut; Herald's lines are far shorter).
    static let maxLine = 1 << 20

    /// Feeds bytes; returns the complete messages they finish.
    mutating func feed(_ chunk: ByteBuffer) -> [Message] {
        var messages: [Message] = []
        for byte in chunk.readableBytesView {
            guard byte == UInt8(ascii: "\n") else {
                if pending.count < Self.maxLine { pending.append(byte) }
                continue
            }
            if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
            let line = String(decoding: pending, as: UTF8.self)
            pending.removeAll(keepingCapacity: true)
            if line.hasPrefix(":") {
                messages.append(.comment(String(line.dropFirst().drop { $0 == " " })))
            } else if line.hasPrefix("data:") {
                messages.append(.data(String(line.dropFirst(5).drop { $0 == " " })))
            }
        }
        return messages
    }
}

// MARK: - Rendering

/// One tail line, readable: `12:34:56.789  orders  App\Events\OrderShipped  redis  14 B  {"id":1}`.
enum TailFormat {
    static func render(_ line: String) -> String {
        guard let value = try? JSONReader.parse(line) else { return line }
        let time = value["time"].flatMap(number).map(clock) ?? "--:--:--.---"
        let channel = value["channel"]?.stringValue ?? "?"
        let event = value["event"]?.stringValue ?? "?"
        let source = value["source"]?.stringValue ?? "?"
        let size = value["size"].flatMap(number) ?? 0
        var payload = value["payload"]?.stringValue ?? ""
        if value["truncated"] == .bool(true) { payload += "…" }
        var out = "\(time)  \(channel)  \(event)  \(source)  \(size) B"
        if let socket = value["socket"]?.stringValue { out += "  except \(socket)" }
        return out + "  " + payload
    }

    private static func number(_ value: JSONValue) -> Int64? {
        if case .number(let text) = value { return Int64(text) }
        return nil
    }

    /// Local wall-clock time of Unix milliseconds, `HH:MM:SS.mmm`.
    private static func clock(_ millis: Int64) -> String {
        var seconds = time_t(millis / 1_000)
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return "--:--:--.---" }
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int(millis % 1_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)"
    }
}

/// `herald status`'s summary of a status document.
enum StatusSummary {
    static func render(_ s: JSONValue, base: String) -> String {
        func int(_ value: JSONValue?) -> Int {
            if case .number(let text)? = value { return Int(text) ?? Int(Double(text) ?? 0) }
            return 0
        }
        func double(_ value: JSONValue?) -> Double {
            if case .number(let text)? = value { return Double(text) ?? 0 }
            return 0
        }
        var out = ""
        let uptime = Self.duration(double(s["uptime_seconds"]))
        let rss = Double(int(s["memory_rss_bytes"])) / 1_048_576
        out += "Herald at \(base), up \(uptime), \(Self.fixed(rss, 1)) MiB resident\n\n"

        let c = s["connections"]
        out += "Connections     \(Self.grouped(int(c?["total"]))): \(Self.grouped(int(c?["socketio_v4"]))) Socket.IO v4, "
        out += "\(Self.grouped(int(c?["socketio_v3"]))) Socket.IO v3, \(Self.grouped(int(c?["pusher"]))) Pusher\n"

        let e = s["events"]
        let lastMinute = int(e?["last_minute"])
        out += "Events          \(Self.grouped(lastMinute)) in the last minute (\(Self.fixed(Double(lastMinute) / 60, 2))/s), "
        out += "\(Self.grouped(int(e?["in_total"]))) in total, \(Self.grouped(int(e?["deliveries_total"]))) deliveries, "
        out += "\(Self.grouped(int(e?["dropped_total"]))) dropped\n"
        if case .array(let series)? = e?["per_second"], !series.isEmpty {
            out += "Rate            \(Self.sparkline(series.map { int($0) }))  (last \(series.count / 60) min)\n"
        }

        let r = s["redis"]
        if r?["configured"] == .bool(true) {
            let state = r?["subscribed"] == .bool(true) ? "subscribed" : "NOT CONNECTED"
            out += "Redis           \(state), \(r?["address"]?.stringValue ?? "?") (pattern \(r?["pattern"]?.stringValue ?? "?")), "
            out += "\(Self.grouped(int(r?["reconnects"]))) reconnects, \(Self.grouped(int(r?["dropped_messages"]))) dropped, "
            out += "\(Self.grouped(int(r?["not_laravel"]))) not Laravel\n"
        } else {
            out += "Redis           off (standalone)\n"
        }
        out += "Slow consumers  \(Self.grouped(int(s["slow_consumer_disconnects"]))) disconnected\n"
        out += "Tail clients    \(Self.grouped(int(s["tail"]?["clients"])))\n"

        let channels = s["channels"]
        out += "\nChannels: \(Self.grouped(int(channels?["count"])))\n"
        if case .array(let busiest)? = channels?["busiest"], !busiest.isEmpty {
            out += "  SUBSCRIBERS  CHANNEL\n"
            for row in busiest {
                out += "  \(Self.pad(Self.grouped(int(row["subscribers"])), 11))  \(row["channel"]?.stringValue ?? "?")\n"
            }
        }
        let presence = s["presence"]
        out += "\nPresence channels: \(Self.grouped(int(presence?["count"])))\n"
        if case .array(let rows)? = presence?["channels"], !rows.isEmpty {
            out += "      MEMBERS  CONNECTIONS  CHANNEL\n"
            for row in rows {
                out += "  \(Self.pad(Self.grouped(int(row["members"])), 11))  \(Self.pad(Self.grouped(int(row["subscribers"])), 11))  \(row["channel"]?.stringValue ?? "?")\n"
            }
        }
        return out
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        guard decimals > 0 else { return "\(scaled)" }
        let whole = scaled / Int64(scale), fraction = String(scaled % Int64(scale))
        return "\(whole).\(String(repeating: "0", count: max(0, decimals - fraction.count)))\(fraction)"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds)
        let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60)
        if d > 0 { return "\(d)d \(h)h" }
        if h > 0 { return "\(h)h \(m)m" }
        if m > 0 { return "\(m)m \(s % 60)s" }
        return "\(s)s"
    }

    /// 60 bars for 5 minutes (5 s each), scaled to the busiest bar.
    static func sparkline(_ series: [Int]) -> String {
        let bars = Array("▁▂▃▄▅▆▇█")
        let width = 60
        let bucket = max(1, series.count / width)
        var sums: [Int] = []
        var index = 0
        while index < series.count {
            sums.append(series[index..<min(series.count, index + bucket)].reduce(0, +))
            index += bucket
        }
        let peak = sums.max() ?? 0
        return String(sums.map { value in
            guard peak > 0, value > 0 else { return bars[0] }
            return bars[min(bars.count - 1, max(1, value * (bars.count - 1) / peak))]
        })
    }
}

/// Writes to standard output at once (no buffering: `herald tail | grep` sees each line).
func writeOut(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(1, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Writes to standard error at once.
func writeError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        _ = write(2, bytes.baseAddress, bytes.count)
    }
}
