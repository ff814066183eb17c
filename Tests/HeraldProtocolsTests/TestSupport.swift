import NIOCore

/// A buffer holding `text` as UTF-8.
func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

/// A buffer holding `bytes`.
func buffer(bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

/// The readable bytes of `buffer` as a string.
func text(_ buffer: ByteBuffer?) -> String? { buffer.map { String(buffer: $0) } }

/// The readable bytes of `buffer`.
func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
