#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOSSL

/// How a WebSocket connection cut off as a slow consumer is closed (``EngineSession`` and
/// ``PusherSession`` call it once their session has left every channel and presence, so nobody
/// waits for it).
///
/// The frames that say why (the close frame, for Pusher `pusher:error` before it) are written
/// behind what is already queued — up to `maxOutboundBytes` in NIO plus the kernel's send
/// buffer — because TCP is ordered and a frame cut in half cannot be taken back. Then:
///
/// * the write completes (the client read its backlog): an ordinary close, so the client gets
///   the close code and then a FIN;
/// * or ``HeraldConfiguration/slowConsumerCloseGrace`` passes first (the client still does not
///   read, so it could not receive anything anyway): an abortive close — `SO_LINGER` 0, a
///   reset — which frees the kernel's send queue at once instead of leaving a FIN-WAIT-1
///   socket holding it for as long as the client answers zero-window probes.
enum SlowConsumerClose {
    /// Writes `frames`, flushes, and closes `channel` when the write completes or after
    /// `grace`, whichever comes first. Call on the channel's event loop.
    static func close(_ channel: any Channel, frames: [ByteBuffer], grace: TimeAmount) {
        channel.eventLoop.preconditionInEventLoop()
        guard channel.isActive else {
            channel.close(promise: nil)
            return
        }
        let deadline = channel.eventLoop.scheduleTask(in: grace) { abort(channel) }
        channel.closeFuture.whenComplete { _ in deadline.cancel() }
        for frame in frames.dropLast() { channel.write(frame, promise: nil) }
        let done = channel.eventLoop.makePromise(of: Void.self)
        done.futureResult.whenComplete { _ in
            deadline.cancel()
            channel.close(promise: nil)
        }
        if let last = frames.last {
            channel.writeAndFlush(last, promise: done)
        } else {
            channel.flush()
            done.succeed()
        }
    }

    /// Resets the connection: `SO_LINGER` 0, then close. With TLS the close skips the TLS
    /// handler, whose `close_notify` would wait behind the same unread bytes for its own
    /// shutdown timeout.
    static func abort(_ channel: any Channel) {
        guard channel.isActive else { return }
        if let sockets = channel as? any SocketOptionProvider {
            // On the channel's loop this applies at once; a failure (socket already gone) is moot.
            _ = sockets.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        if let tls = try? channel.pipeline.syncOperations.context(handlerType: NIOSSLServerHandler.self) {
            tls.close(promise: nil)  // from the TLS handler towards the socket, past its close_notify
        } else {
            channel.close(promise: nil)
        }
    }
}
