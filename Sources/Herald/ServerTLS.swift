import NIOCore
import NIOSSL
import Synchronization

/// Where Herald's TLS certificate and key are: PEM files, read at start-up and again on
/// ``Relay/reloadCertificates()`` (the `herald` binary calls it on SIGHUP).
public struct TLSFiles: Sendable, Hashable {
    /// The certificate chain, PEM, leaf first (Let's Encrypt's `fullchain.pem`).
    public var certificateChainPath: String
    /// The private key, PEM (`privkey.pem`).
    public var privateKeyPath: String

    /// - Parameters: see the properties.
    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

/// Why TLS could not be set up; names the file and what is wrong with it.
public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    /// The file that could not be used.
    public var path: String
    /// What went wrong.
    public var reason: String
    public var description: String { "TLS: cannot use \(path): \(reason)" }
}

/// The server's current TLS context. New connections take the current one; a reload swaps it
/// without touching connections that already finished their handshake.
final class ServerTLS: Sendable {
    let files: TLSFiles
    private let context: Mutex<NIOSSLContext>

    init(files: TLSFiles) throws(TLSSetupError) {
        self.files = files
        self.context = Mutex(try Self.load(files))
    }

    var current: NIOSSLContext { context.withLock { $0 } }

    /// Reads the files again; on any error the running context stays.
    func reload() throws(TLSSetupError) {
        let fresh = try Self.load(files)
        context.withLock { $0 = fresh }
    }

    static func load(_ files: TLSFiles) throws(TLSSetupError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChainPath)
        } catch {
            throw TLSSetupError(path: files.certificateChainPath, reason: "not a readable PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else {
            throw TLSSetupError(path: files.certificateChainPath, reason: "holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
        } catch {
            throw TLSSetupError(path: files.privateKeyPath, reason: "not a readable PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSSetupError(path: files.privateKeyPath, reason: "the key does not fit the certificate, or TLS setup failed (\(error))")
        }
    }
}
