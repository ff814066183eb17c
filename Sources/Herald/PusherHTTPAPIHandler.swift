import HeraldCore
import HeraldProtocols
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Pusher's signed HTTP API (`/apps/{app_id}/…`), what Laravel's `pusher`/`reverb`
/// broadcasters and the Pusher server SDKs call.
///
/// A request is Pusher's when its query carries `auth_signature` (laravel-echo-server's API on
/// the same paths uses a bearer key instead). Every request is verified in constant time
/// (`auth_key`, `auth_timestamp` within 600 s, `auth_version`, `body_md5`, HMAC-SHA256) before
/// anything else; events go to the router exactly like events from Redis.
///
/// Each app publishes to and queries its own channels: the first app the shared ones (with
/// Socket.IO and Redis), every further app its own namespace (``ChannelKey``), so one app's
/// API can neither reach nor see another's channels.
struct PusherHTTPAPIHandler: Sendable {
    let apps: [PusherApp]
    let registry: ChannelRegistry
    let router: Router
    let logger: Logger
    /// The signed-in users' connections (for `terminate_connections`).
    let engine: EngineIOServer

    /// Whether this handler answers `head` (a signed request under `/apps/`, or the app-less
    /// `/users/<id>/terminate_connections` pusher-http-python 3.3 sends).
    func handles(_ head: HTTPRequestHead) -> Bool {
        let path = EngineIOServer.path(head.uri)
        guard !apps.isEmpty, path.hasPrefix("/apps/") || path.hasPrefix("/users/") else { return false }
        return head.uri.contains("auth_signature=")
    }

    func handle(head: HTTPRequestHead, body: ByteBuffer, channel: any Channel, requestID: String) {
        let responder = PollResponder(channel: channel, headers: ["X-Request-Id": requestID], keepAlive: head.isKeepAlive)
        var logger = self.logger
        logger[metadataKey: "herald.request"] = "\(requestID)"
        let requestLogger = logger
        @Sendable func refuse(_ error: PusherHTTPAPIError) {
            if error.status >= 500 || error.status == 401 {
                requestLogger.info("Pusher API request refused", metadata: ["herald.status": "\(error.status)", "herald.reason": "\(error.message)"])
            }
            responder.respond(status: HTTPResponseStatus(statusCode: error.status), contentType: "application/json", body: error.body)
        }
        let answered: Answer
        do {
            answered = try answer(head: head, body: body, logger: logger)
        } catch {
            refuse(error)
            return
        }
        switch answered {
        case .now(let status, let reply):
            responder.respond(status: status, contentType: "application/json", body: reply)
        case .later(let query):
            // Channel queries: the cluster's numbers come from Redis.
            Task {
                do {
                    let (status, reply) = try await query()
                    responder.respond(status: status, contentType: "application/json", body: reply)
                } catch let error as PusherHTTPAPIError {
                    refuse(error)
                } catch {
                    requestLogger.warning("channel query failed: the cluster's channel state is unavailable", metadata: ["error": "\(error)"])
                    refuse(PusherHTTPAPIError(status: 503, message: "The cluster's channel state is unavailable"))
                }
            }
        }
    }

    /// A response, or — for channel queries — the work that makes it.
    private enum Answer {
        case now(HTTPResponseStatus, ByteBuffer)
        case later(@Sendable () async throws -> (HTTPResponseStatus, ByteBuffer))
    }

    private func answer(head: HTTPRequestHead, body: ByteBuffer, logger: Logger) throws(PusherHTTPAPIError) -> Answer {
        let path = String(EngineIOServer.path(head.uri))
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let rawQuery = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) } ?? ""
        let query = PusherHTTPAPI.parseQuery(rawQuery)
        let authKey = query.first(where: { $0.name == "auth_key" })?.value
        let app: PusherApp
        let resource: [String]
        if parts.count == 3, parts[0] == "users", parts[2] == "terminate_connections" {
            // pusher-http-python 3.3's terminate_user_connections leaves out `/apps/<id>`: the
            // app is the one whose key signed the request.
            guard let found = apps.first(where: { $0.key == authKey }) else { throw .unauthorized("Unknown auth_key") }
            app = found
            resource = parts
        } else {
            // ["apps", id, resource...]
            guard parts.count >= 3, parts[0] == "apps" else { throw .notFound("Unknown path") }
            guard let found = apps.first(where: { $0.id == parts[1] }) else { throw .notFound("Unknown app '\(parts[1])'") }
            guard authKey == found.key else { throw .unauthorized("Unknown auth_key") }
            app = found
            resource = Array(parts[2...])
        }
        try PusherSignature.verifyRequest(
            method: head.method.rawValue, path: path, query: query, body: body.readableBytes > 0 ? body : nil,
            key: app.key, secret: app.secret, now: Int64(time(nil))
        )
        let namespace = ChannelKey.namespace(of: app, among: apps)
        let limits = PusherHTTPAPI.Limits(
            maxDataBytes: app.maxEventPayloadBytes,
            maxChannelsPerEvent: 100,
            maxBatchSize: 10,
            maxEventNameLength: app.maxEventNameLength,
            maxChannelNameLength: app.maxChannelNameLength
        )
        switch (head.method, resource.first) {
        case (.POST, "events") where resource.count == 1:
            let trigger = try PusherHTTPAPI.parseEvent(body: body, limits: limits)
            publish(trigger, namespace: namespace)
            guard !trigger.info.isEmpty else { return .now(.ok, PusherHTTPAPI.eventResponse(channels: nil)) }
            return .later { [self] in (.ok, PusherHTTPAPI.eventResponse(channels: try await info(trigger, namespace: namespace))) }
        case (.POST, "batch_events") where resource.count == 1:
            let batch = try PusherHTTPAPI.parseBatch(body: body, limits: limits)
            for trigger in batch { publish(trigger, namespace: namespace) }
            guard batch.contains(where: { !$0.info.isEmpty }) else { return .now(.ok, PusherHTTPAPI.batchResponse(nil)) }
            return .later { [self] in
                var infos: [PusherHTTPAPI.ChannelInfo] = []
                for trigger in batch { infos.append(try await info(trigger, namespace: namespace)?.first?.info ?? .init()) }
                return (.ok, PusherHTTPAPI.batchResponse(infos))
            }
        case (.GET, "channels") where resource.count == 1:
            let prefix = query.first { $0.name == "filter_by_prefix" }?.value ?? ""
            let wanted = Set(PusherHTTPAPI.parseInfo(query.first { $0.name == "info" }?.value ?? ""))
            if wanted.contains("user_count") && !prefix.hasPrefix("presence-") {
                throw .badRequest("info=user_count requires filter_by_prefix=presence-")
            }
            return .later { [registry] in
                let counts = try await registry.queryOccupiedChannels(namespace: namespace)
                var channels: [(String, PusherHTTPAPI.ChannelInfo)] = []
                for name in counts.keys.filter({ $0.hasPrefix(prefix) }).sorted() {
                    channels.append((name, PusherHTTPAPI.ChannelInfo(
                        userCount: wanted.contains("user_count") ? try await registry.queryPresenceMembers(name, namespace: namespace).count : nil,
                        subscriptionCount: wanted.contains("subscription_count") ? counts[name] : nil
                    )))
                }
                return (.ok, PusherHTTPAPI.channelsResponse(channels))
            }
        case (.GET, "channels") where resource.count == 2:
            let name = resource[1]
            let wanted = Set(PusherHTTPAPI.parseInfo(query.first { $0.name == "info" }?.value ?? ""))
            let isPresence = name.hasPrefix("presence-")
            if wanted.contains("user_count") && !isPresence { throw .badRequest("info=user_count is only for presence channels") }
            return .later { [registry] in
                let count = try await registry.querySubscriberCount(name, namespace: namespace)
                return (.ok, PusherHTTPAPI.channelResponse(PusherHTTPAPI.ChannelInfo(
                    occupied: count > 0,
                    userCount: wanted.contains("user_count") ? try await registry.queryPresenceMembers(name, namespace: namespace).count : nil,
                    subscriptionCount: wanted.contains("subscription_count") ? count : nil
                )))
            }
        case (.GET, "channels") where resource.count == 3 && resource[2] == "users":
            let name = resource[1]
            guard name.hasPrefix("presence-") else { throw .badRequest("Users are only available for presence channels") }
            return .later { [registry] in
                (.ok, PusherHTTPAPI.usersResponse(userIDs: try await registry.queryPresenceMembers(name, namespace: namespace).map(\.key)))
            }
        case (.POST, "users") where resource.count == 3 && resource[2] == "terminate_connections":
            let userID = resource[1]
            let closed = engine.terminatePusherUser(appID: app.id, userID: userID)
            // And on the other nodes of a cluster.
            router.cluster?.sendTerminate(appID: app.id, userID: userID)
            logger.info("Pusher user's connections terminated by the app", metadata: ["herald.pusher.user": "\(userID)", "herald.connections": "\(closed)"])
            return .now(.ok, ByteBuffer(string: "{}"))
        default:
            throw .notFound("Unknown API path \(head.method.rawValue) \(path)")
        }
    }

    /// Publishes `trigger` to its channels in `namespace` (the app's).
    private func publish(_ trigger: PusherTriggerRequest, namespace: String?) {
        // `data` arrives as a JSON string. Socket.IO clients get the JSON it holds (as
        // laravel-echo-server did); Pusher clients get the very same string back.
        let data = Self.unwrap(trigger.data)
        for channel in trigger.channels {
            router.publish(Event(channel: channel, name: trigger.name, data: data, excludedSocketID: trigger.socketID, source: .http, namespace: namespace))
        }
    }

    /// The JSON a string literal holds, when it holds JSON; otherwise the literal itself.
    static func unwrap(_ data: ByteBuffer) -> ByteBuffer {
        guard case .string(let text)? = try? JSONReader.parse(data) else { return data }
        let inner = ByteBuffer(string: text)
        return (try? JSONReader.validate(inner)) != nil ? inner : data
    }

    private func info(_ trigger: PusherTriggerRequest, namespace: String?) async throws -> [(name: String, info: PusherHTTPAPI.ChannelInfo)]? {
        guard !trigger.info.isEmpty else { return nil }
        let wanted = Set(trigger.info)
        var result: [(name: String, info: PusherHTTPAPI.ChannelInfo)] = []
        for name in trigger.channels {
            result.append((name, PusherHTTPAPI.ChannelInfo(
                userCount: wanted.contains("user_count") && name.hasPrefix("presence-") ? try await registry.queryPresenceMembers(name, namespace: namespace).count : nil,
                subscriptionCount: wanted.contains("subscription_count") ? try await registry.querySubscriberCount(name, namespace: namespace) : nil
            )))
        }
        return result
    }
}
