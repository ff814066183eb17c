import Herald
import Hummingbird
import Synchronization

/// Every request the app answered (except `/stats` itself), served at `GET /stats` so anyone
/// can see that a waiting login page makes no requests: it only listens to Herald.
///
/// Entries name the matched route (`/scan/{code}`), never the path, so the log gives away no
/// codes or tokens. The newest ``capacity`` entries are kept.
final class RequestLog: Sendable {
    /// One answered request.
    struct Entry: Sendable {
        let method: String
        let route: String
        let status: Int
        let userAgent: String
    }

    let capacity: Int
    private let entries = Mutex<(total: Int, recent: [Entry])>((0, []))

    init(capacity: Int = 1000) {
        self.capacity = capacity
    }

    func record(_ entry: Entry) {
        entries.withLock { log in
            log.total += 1
            if log.recent.count == capacity { log.recent.removeFirst() }
            log.recent.append(entry)
        }
    }

    /// `{"total":N,"requests":[{"method","route","status","userAgent"}…]}`, oldest first.
    var json: JSONValue {
        let (total, recent) = entries.withLock { ($0.total, $0.recent) }
        return .object([
            JSONMember(key: "total", value: .number(String(total))),
            JSONMember(key: "requests", value: .array(recent.map { entry in
                .object([
                    JSONMember(key: "method", value: .string(entry.method)),
                    JSONMember(key: "route", value: .string(entry.route)),
                    JSONMember(key: "status", value: .number(String(entry.status))),
                    JSONMember(key: "userAgent", value: .string(entry.userAgent)),
                ])
            })),
        ])
    }
}

/// Records each request in a ``RequestLog`` once it has been answered.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let log: RequestLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path != "/stats" else { return try await next(request, context) }
        let userAgent = String(request.headers[.userAgent]?.prefix(200) ?? "")
        func record(_ status: HTTPResponse.Status) {
            log.record(.init(method: request.method.rawValue, route: context.endpointPath ?? "(no route)", status: status.code, userAgent: userAgent))
        }
        do {
            let response = try await next(request, context)
            record(response.status)
            return response
        } catch {
            record((error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }
}
