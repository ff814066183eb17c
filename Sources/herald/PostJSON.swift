import AsyncHTTPClient
import ArgumentParser
import NIOCore
import NIOPosix

/// POSTs a JSON body and returns the status and (at most 64 KiB of) the answer.
func postJSON(url: String, body: ByteBuffer) async throws -> (status: Int, text: String) {
    let configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
    let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    do {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 64 << 10))
        try await client.shutdown()
        return (Int(response.status.code), text)
    } catch {
        try? await client.shutdown()
        if error is ValidationError { throw error }
        throw ValidationError("cannot reach \(url.prefix { $0 != "?" }): \(error)")
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters (query values, URL
/// credentials).
func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF")
            out += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
        }
    }
    return out
}
