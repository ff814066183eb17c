/// Unguessable identifiers: login codes, one-time tokens and session ids.
///
/// 32 bytes (256 bits) from the system's cryptographically secure generator (`getrandom` on
/// Linux), written as unpadded base64url: 43 characters, safe in paths, query strings,
/// cookies, HTML attributes and Herald channel names.
struct Secret: Sendable, Hashable {
    /// Random bytes per secret.
    static let byteCount = 32
    /// Characters of the text form.
    static let length = 43

    /// The raw random bytes.
    let bytes: [UInt8]
    /// The base64url text.
    let text: String

    /// A fresh secret.
    static func random() -> Secret {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Secret(bytes: bytes, text: base64url(bytes))
    }

    /// Whether `text` has the shape of a secret (43 base64url characters). Checked before any
    /// path or query input is looked up or echoed.
    static func isWellFormed(_ text: Substring) -> Bool {
        text.utf8.count == length && text.utf8.allSatisfy { alphabet.contains($0) }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Unpadded base64url (RFC 4648 §5).
    static func base64url(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            let chunk = UInt32(b0) << 16 | UInt32(b1) << 8 | UInt32(b2)
            let remaining = bytes.count - index
            let produced = remaining >= 3 ? 4 : remaining + 1
            for k in 0..<produced {
                out.append(alphabet[Int((chunk >> UInt32(18 - 6 * k)) & 0x3F)])
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
