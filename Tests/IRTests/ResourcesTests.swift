import Driver
import Foundation
import XCTest

/// `Resources` finds the checkout's Graphs/ from the running executable, from any working folder.
final class ResourcesTests: XCTestCase {
    func testLocatesGraphsFromAnotherWorkingFolder() throws {
        let fm = FileManager.default
        let before = fm.currentDirectoryPath
        defer { _ = fm.changeCurrentDirectoryPath(before) }
        XCTAssert(fm.changeCurrentDirectoryPath(NSTemporaryDirectory()))
        let home = try XCTUnwrap(Resources.home, "the test runner lies under the checkout's .build")
        XCTAssert(fm.fileExists(atPath: home + "/Graphs/onet.recipe"), home)
        XCTAssertEqual(Resources.locate("Graphs/onet.recipe"), home + "/Graphs/onet.recipe")
        XCTAssertEqual(Resources.locate("/abs/none.recipe"), "/abs/none.recipe")
        XCTAssertEqual(Resources.locate("Graphs/none.recipe"), "Graphs/none.recipe", "a missing resource comes back as given")
    }
}
