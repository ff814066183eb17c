import Crypto
import Foundation
import NIOCore

/// Pusher's signatures: lowercase hex HMAC-SHA256 keyed by the app secret (PROTOCOLS.md D.10,
/// D.12, D.14). Every comparison is constant time.
public enum PusherSignature {
    /// Lowercase hex HMAC-SHA256 of `message` keyed by `secret`.
    public static func hmacHex(secret: String, message: String) -> String {
        hmacHex(secret: secret, bytes: Array(message.utf8))
    }

    /// Lowercase hex HMAC-SHA256 of raw bytes keyed by `secret`.
    public static func hmacHex(secret: String, bytes: [UInt8]) -> String {
        let key = SymmetricKey(data: Array(secret.utf8))
        return PusherJSON.hex(HMAC<SHA256>.authenticationCode(for: bytes, using: key))
    }

    // MARK: Channel and user authentication

    /// The string signed for a channel subscription: `<socket_id>:<channel>` (private and
    /// encrypted) or `<socket_id>:<channel>:<channel_data>` (presence).
    public static func channelStringToSign(socketID: String, channel: String, channelData: String? = nil) -> String {
        if let channelData { return "\(socketID):\(channel):\(channelData)" }
        return "\(socketID):\(channel)"
    }

    /// The string signed for a user signin: `<socket_id>::user::<user_data>`.
    public static func signinStringToSign(socketID: String, userData: String) -> String {
        "\(socketID)::user::\(userData)"
    }

    /// The `auth` value an app's auth endpoint returns for a channel: `<key>:<hex>`.
    public static func channelAuth(key: String, secret: String, socketID: String, channel: String, channelData: String? = nil) -> String {
        "\(key):" + hmacHex(secret: secret, message: channelStringToSign(socketID: socketID, channel: channel, channelData: channelData))
    }

    /// The `auth` value for a user signin: `<key>:<hex>`.
    public static func signinAuth(key: String, secret: String, socketID: String, userData: String) -> String {
        "\(key):" + hmacHex(secret: secret, message: signinStringToSign(socketID: socketID, userData: userData))
    }

    /// Checks a client's `auth` against `stringToSign`.
    ///
    /// Accepts the whole string `<key>:<hex>` (Soketi) and the part after the first `:`
    /// (Reverb; a value without `:` is compared whole). Both comparisons always run, in constant
    /// time, so the answer's timing does not depend on where the input differs.
    public static func verify(auth: String, key: String, secret: String, stringToSign: String) -> Bool {
        let expectedHex = Array(hmacHex(secret: secret, message: stringToSign).utf8)
        let expectedWhole = Array(key.utf8) + [UInt8(ascii: ":")] + expectedHex
        let given = Array(auth.utf8)
        let afterColon: ArraySlice<UInt8>
        if let colon = given.firstIndex(of: UInt8(ascii: ":")) {
            afterColon = given[(colon + 1)...]
        } else {
            afterColon = given[...]
        }
        let wholeMatches = constantTimeEquals(given, expectedWhole)
        let hexMatches = constantTimeEquals(afterColon, expectedHex)
        return wholeMatches || hexMatches
    }

    /// Checks a `pusher:subscribe` `auth` for a private, encrypted or presence channel.
    public static func verifyChannelAuth(
        _ auth: String, key: String, secret: String, socketID: String, channel: String, channelData: String? = nil
    ) -> Bool {
        verify(auth: auth, key: key, secret: secret,
               stringToSign: channelStringToSign(socketID: socketID, channel: channel, channelData: channelData))
    }

    /// Checks a `pusher:signin` `auth`.
    public static func verifySignin(_ auth: String, key: String, secret: String, socketID: String, userData: String) -> Bool {
        verify(auth: auth, key: key, secret: secret, stringToSign: signinStringToSign(socketID: socketID, userData: userData))
    }

    /// Byte equality whose running time depends only on the lengths.
    public static func constantTimeEquals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        let a = Array(lhs), b = Array(rhs)
        let length = Swift.max(a.count, b.count)
        for i in 0..<length {
            let x: UInt8 = i < a.count ? a[i] : 0
            let y: UInt8 = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0
    }

    // MARK: Webhooks

    /// `X-Pusher-Signature` for a webhook body: hex HMAC-SHA256 of the raw body.
    public static func webhookSignature(secret: String, body: ByteBuffer) -> String {
        hmacHex(secret: secret, bytes: Array(body.readableBytesView))
    }

    /// Checks an `X-Pusher-Signature` against a webhook body, in constant time.
    public static func verifyWebhook(signature: String, secret: String, body: ByteBuffer) -> Bool {
        constantTimeEquals(Array(signature.lowercased().utf8), Array(webhookSignature(secret: secret, body: body).utf8))
    }

    // MARK: HTTP API requests (D.12)

    /// The auth parameters a signed request carries, besides the request's own.
    public static let authParameterNames: Set<String> = ["auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"]

    /// Lowercase hex MD5 of a raw body (`body_md5`).
    public static func bodyMD5(_ body: ByteBuffer) -> String {
        PusherJSON.hex(Insecure.MD5.hash(data: Array(body.readableBytesView)))
    }

    /// The canonical query: decoded values, keys lowercased, `auth_signature` left out, repeated
    /// keys joined by `,` (in order), sorted by key, `k=v` joined by `&`.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        var grouped: [String: [String]] = [:]
        for item in query {
            let name = item.name.lowercased()
            if name == "auth_signature" { continue }
            grouped[name, default: []].append(item.value)
        }
        let names = grouped.keys.sorted { Array($0.utf8).lexicographicallyPrecedes($1.utf8) }
        return names.map { "\($0)=\(grouped[$0, default: []].joined(separator: ","))" }.joined(separator: "&")
    }

    /// The string signed for an HTTP API request: `METHOD\npath\ncanonical query`.
    public static func requestStringToSign(method: String, path: String, query: [(name: String, value: String)]) -> String {
        "\(method.uppercased())\n\(path)\n\(canonicalQuery(query))"
    }

    /// Signs an HTTP API request as the server SDKs do: adds `auth_key`, `auth_timestamp`,
    /// `auth_version=1.0`, `body_md5` (non-empty body only) and `auth_signature` to `query`.
    public static func signedQuery(
        method: String, path: String, query: [(name: String, value: String)] = [], body: ByteBuffer? = nil,
        key: String, secret: String, timestamp: Int64
    ) -> [(name: String, value: String)] {
        var items = query.filter { !authParameterNames.contains($0.name.lowercased()) }
        items.append(("auth_key", key))
        items.append(("auth_timestamp", String(timestamp)))
        items.append(("auth_version", "1.0"))
        if let body, body.readableBytes > 0 { items.append(("body_md5", bodyMD5(body))) }
        let signature = hmacHex(secret: secret, message: requestStringToSign(method: method, path: path, query: items))
        items.append(("auth_signature", signature))
        return items
    }

    /// Verifies a signed HTTP API request (D.12).
    ///
    /// - Parameters:
    ///   - path: the path as signed, `/apps/<id>/…` (any mount prefix already stripped).
    ///   - query: the decoded query items (see ``PusherHTTPAPI/parseQuery(_:)``).
    ///   - body: the raw body; when non-empty its MD5 is recomputed and used in place of the
    ///     given `body_md5`, so a body that does not match what was signed fails.
    ///   - now: the current time, seconds since 1970.
    ///   - timestampWindow: how far `auth_timestamp` may be from `now`, in seconds.
    /// - Throws: ``PusherHTTPAPIError`` with status 401 and the reason.
    public static func verifyRequest(
        method: String, path: String, query: [(name: String, value: String)], body: ByteBuffer?,
        key: String, secret: String, now: Int64, timestampWindow: Int64 = 600
    ) throws(PusherHTTPAPIError) {
        var items: [(name: String, value: String)] = []
        var authKey: String? = nil, timestamp: String? = nil, version: String? = nil, signature: String? = nil
        for item in query {
            switch item.name.lowercased() {
            case "auth_key": authKey = item.value
            case "auth_timestamp": timestamp = item.value
            case "auth_version": version = item.value
            case "auth_signature": signature = item.value; continue
            case "body_md5": if let body, body.readableBytes > 0 { continue }
            default: break
            }
            items.append(item)
        }
        guard let signature else { throw .unauthorized("Missing auth_signature") }
        guard let authKey, constantTimeEquals(Array(authKey.utf8), Array(key.utf8)) else {
            throw .unauthorized("Invalid auth_key")
        }
        guard version == "1.0" else { throw .unauthorized("Unsupported auth_version, expected 1.0") }
        guard let timestamp, timestamp.utf8.count <= 19, let seconds = Int64(timestamp) else {
            throw .unauthorized("Missing or invalid auth_timestamp")
        }
        let (delta, overflow) = now.subtractingReportingOverflow(seconds)
        guard !overflow, delta.magnitude <= timestampWindow.magnitude else {
            throw .unauthorized("Timestamp expired: given \(seconds), now \(now), window \(timestampWindow) s")
        }
        if let body, body.readableBytes > 0 { items.append(("body_md5", bodyMD5(body))) }
        let expected = hmacHex(secret: secret, message: requestStringToSign(method: method, path: path, query: items))
        guard constantTimeEquals(Array(signature.lowercased().utf8), Array(expected.utf8)) else {
            throw .unauthorized("Invalid signature")
        }
    }
}

/// Pusher socket ids: two decimal integers joined by `.` (D.1).
public enum PusherSocketID {
    /// Longest socket id ``isValid(_:)`` accepts (a bound on hostile input; generated ids are ≤ 21).
    public static let maxLength = 64

    /// A fresh id, `<1…9999999999>.<1…9999999999>` (Soketi's range).
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    /// A fresh id drawn from `generator` (tests pass a seeded one).
    public static func generate(using generator: inout some RandomNumberGenerator) -> String {
        let a = UInt64.random(in: 1...9_999_999_999, using: &generator)
        let b = UInt64.random(in: 1...9_999_999_999, using: &generator)
        return "\(a).\(b)"
    }

    /// Whether `id` matches `^\d+\.\d+$` (ASCII digits) and is at most ``maxLength`` bytes.
    public static func isValid(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard utf8.count <= maxLength, let dot = utf8.firstIndex(of: UInt8(ascii: ".")) else { return false }
        let head = utf8[..<dot], tail = utf8[utf8.index(after: dot)...]
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        return !head.isEmpty && !tail.isEmpty && head.allSatisfy(isDigit) && tail.allSatisfy(isDigit)
    }
}
