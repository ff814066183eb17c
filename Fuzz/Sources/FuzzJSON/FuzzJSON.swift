import FuzzSupport
import HeraldCore
import NIOCore

// JSONReader: every entry point, the agreement between the building and the validating
// scanner, and serialize(parse(x)) == parse(x).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzInput(data, count)
    let buffer = input.buffer

    let parsed = Result { () throws(JSONError) in try JSONReader.parse(buffer) }
    let validated = Result { () throws(JSONError) in try JSONReader.validate(buffer) }
    // The validating scanner (what keeps relayed payloads verbatim) and the parser must agree.
    switch (parsed, validated) {
    case (.success, .failure(let error)):
        fuzzCheck(false, "parse accepts what validate rejects (\(error))")
    case (.failure(let error), .success):
        fuzzCheck(false, "validate accepts what parse rejects (\(error))")
    default:
        break
    }
    // The reader index must not matter.
    let offsetParsed = try? JSONReader.parse(input.offsetBuffer)
    fuzzCheck(offsetParsed == (try? parsed.get()), "parse depends on the reader index")

    if case .success(let value) = parsed {
        // serialized → parse is the identity on values.
        let again = try? JSONReader.parse(value.serialized)
        fuzzCheck(again == value, "serialize/parse round trip: \(value.serialized.debugDescription)")
    }

    if let members = try? JSONReader.objectMembers(buffer) {
        guard case .success(.object(let parsedMembers)) = parsed else {
            fuzzCheck(false, "objectMembers accepts what parse does not read as an object")
            return 0
        }
        fuzzCheck(members.count == parsedMembers.count, "objectMembers count")
        for (member, parsedMember) in zip(members, parsedMembers) {
            fuzzCheck(member.key == parsedMember.key, "objectMembers key")
            let raw = buffer.getSlice(at: buffer.readerIndex + member.range.lowerBound, length: member.range.count)
            fuzzCheck(raw.flatMap { try? JSONReader.parse($0) } == parsedMember.value, "objectMembers range")
        }
        let offsetMembers = try? JSONReader.objectMembers(input.offsetBuffer)
        fuzzCheck(offsetMembers?.map(\.range) == members.map(\.range), "objectMembers ranges depend on the reader index")
    } else if case .success(.object) = parsed {
        fuzzCheck(false, "parse reads an object that objectMembers rejects")
    }

    if let elements = try? JSONReader.arrayElements(buffer) {
        guard case .success(.array(let items)) = parsed else {
            fuzzCheck(false, "arrayElements accepts what parse does not read as an array")
            return 0
        }
        fuzzCheck(elements.count == items.count, "arrayElements count")
        for (range, item) in zip(elements, items) {
            let raw = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)
            fuzzCheck(raw.flatMap { try? JSONReader.parse($0) } == item, "arrayElements range")
        }
    } else if case .success(.array) = parsed {
        fuzzCheck(false, "parse reads an array that arrayElements rejects")
    }

    // Any text, quoted, reads back as itself.
    let text = String(decoding: input.bytes, as: UTF8.self)
    var quoted = ByteBuffer()
    JSONValue.writeQuoted(text, into: &quoted)
    fuzzCheck((try? JSONReader.parse(quoted)) == .string(text), "writeQuoted round trip")
    return 0
}
