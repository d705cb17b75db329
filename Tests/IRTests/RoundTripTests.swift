import Foundation
import IR
import XCTest

/// `print(parse(s)) == s` for every graph file and print golden, and the canonical (verified) print
/// is a fixed point.
final class RoundTripTests: XCTestCase {
    /// Files that do not print back byte for byte, and why.
    static let notRoundTripping: [String: String] = [
        "print_canonical.fn2e": "written in non-canonical form on purpose: '//' comments, integers for numbers, "
            + "default attributes, a relu split over lines, comment blocks after the last graph",
    ]

    static var files: [String] { Repo.files(in: Repo.graphs) + Repo.files(in: Repo.goldens, prefix: "print_") }

    func testFilesExist() {
        XCTAssertGreaterThanOrEqual(Self.files.count, 8)
        XCTAssert(Self.files.contains { $0.hasSuffix("vgg_face.fn2e") })
    }

    func testParsePrintIsIdentity() throws {
        for file in Self.files {
            let name = (file as NSString).lastPathComponent
            let text = Repo.read(file)
            let printed = Printer.print(try Parser.parse(file: file, text: text))
            if Self.notRoundTripping[name] != nil {
                XCTAssertNotEqual(printed, text, "\(name) round-trips now: remove it from notRoundTripping")
            } else {
                XCTAssertEqual(printed, text, "\(name) does not print back as written")
            }
        }
    }

    /// Graph files and print goldens are written with types, so verifying changes nothing; the
    /// canonical print of the non-canonical golden is a fixed point.
    func testVerifiedPrintIsCanonical() throws {
        for file in Self.files {
            let name = (file as NSString).lastPathComponent
            let printed = Printer.print(try Loader.load(path: file).verifiedRoot)
            if Self.notRoundTripping[name] == nil {
                XCTAssertEqual(printed, Repo.read(file), "\(name): verified print differs from the file")
            }
            let again = Printer.print(try Loader.load(text: printed, file: file).verifiedRoot)
            XCTAssertEqual(again, printed, "\(name): canonical print is not a fixed point")
        }
    }

    func testEveryOpAppearsInPrintGoldens() throws {
        var seen: Set<Op> = []
        var nonDefault: Set<Op> = []
        for file in Repo.files(in: Repo.goldens, prefix: "print_") {
            for g in try Parser.parse(file: file, text: Repo.read(file)).graphs {
                for n in g.nodes {
                    seen.insert(n.op)
                    if !n.attrs.isEmpty { nonDefault.insert(n.op) }
                }
            }
        }
        XCTAssertEqual(Set(Op.allCases).subtracting(seen), [], "ops missing from the print goldens")
        let withAttrs = Set(Op.allCases.filter { !$0.signature.attrs.isEmpty })
        XCTAssertEqual(withAttrs.subtracting(nonDefault), [], "ops never shown with a non-default attribute")
    }
}
