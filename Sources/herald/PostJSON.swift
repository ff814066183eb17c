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
