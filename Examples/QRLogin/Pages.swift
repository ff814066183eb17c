/// The pages and the browser client. The files in `Assets/` are compiled into the binary
/// (SwiftPM's `.embedInCode`), so the demo is one self-contained executable: nothing to find
/// on disk at run time, no `Bundle`, no Foundation.
enum Pages {
    static let heraldClientJS = String(decoding: PackageResources.herald_client_js, as: UTF8.self)
    private static let style = String(decoding: PackageResources.style_css, as: UTF8.self)
    private static let login = String(decoding: PackageResources.login_html, as: UTF8.self)
    private static let scan = String(decoding: PackageResources.scan_html, as: UTF8.self)
    private static let dashboard = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
    private static let message = String(decoding: PackageResources.message_html, as: UTF8.self)

    /// The login page for `code`. `heraldURL` empty means "the page's host, `heraldPort`".
    static func login(code: Secret, lifetime: Duration, heraldURL: String?, heraldPort: Int, origin: String) -> String {
        fill(login, [
            "code": escape(code.text),
            "qr_svg": qrLikeBlock(code.bytes),
            "herald_url": escape(heraldURL ?? ""),
            "herald_port": String(heraldPort),
            "expires_in_ms": String(lifetime.components.seconds * 1000),
            "origin": escape(origin),
        ])
    }

    /// The "phone" page: a Confirm button for `code`.
    static func scan(code: Substring) -> String {
        fill(scan, ["code": escape(String(code))])
    }

    /// The page a redeemed token opens.
    static func dashboard(sessionLifetime: Duration) -> String {
        fill(dashboard, ["session_minutes": String(sessionLifetime.components.seconds / 60)])
    }

    /// A short page: `result` is a machine-readable word (`data-result`), the rest is for people.
    static func message(result: String, title: String, message text: String) -> String {
        fill(message, ["result": escape(result), "title": escape(title), "message": escape(text)])
    }

    /// Replaces each `{{key}}` of `template` in one pass (values are already HTML, and are
    /// never scanned for placeholders themselves); `{{style}}` is the shared style sheet.
    private static func fill(_ template: String, _ values: [String: String]) -> String {
        var page = ""
        page.reserveCapacity(template.utf8.count + style.utf8.count)
        var rest = template[...]
        while let open = rest.firstRange(of: "{{"), let close = rest[open.upperBound...].firstRange(of: "}}") {
            page += rest[..<open.lowerBound]
            let key = String(rest[open.upperBound..<close.lowerBound])
            page += key == "style" ? style : values[key] ?? ""
            rest = rest[close.upperBound...]
        }
        page += rest
        return page
    }

    /// Escapes text for HTML content and quoted attributes.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A 16×16 block drawn from the code's 256 bits with QR-style finder corners. It only
    /// looks like a QR code (a real one needs Reed–Solomon coding); the link next to it is what
    /// a phone would open.
    static func qrLikeBlock(_ bytes: [UInt8]) -> String {
        let size = 16
        func bit(_ x: Int, _ y: Int) -> Bool {
            let index = y * size + x
            return bytes.count * 8 > index && bytes[index / 8] & (0x80 >> UInt8(index % 8)) != 0
        }
        /// Inside one of the three finder squares: whether the cell is dark; else `nil`.
        func finder(_ x: Int, _ y: Int) -> Bool? {
            for (ox, oy) in [(0, 0), (size - 5, 0), (0, size - 5)] where (ox..<ox + 5).contains(x) && (oy..<oy + 5).contains(y) {
                let dx = x - ox, dy = y - oy
                return dx == 0 || dy == 0 || dx == 4 || dy == 4 || (dx == 2 && dy == 2)
            }
            return nil
        }
        var svg = ##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16" fill="#1d2330" shape-rendering="crispEdges" aria-hidden="true">"##
        for y in 0..<size {
            for x in 0..<size {
                if finder(x, y) ?? bit(x, y) {
                    svg += #"<rect x="\#(x)" y="\#(y)" width="1" height="1"/>"#
                }
            }
        }
        return svg + "</svg>"
    }
}
