import XCTest
final class IRTestsPlaceholder: XCTestCase { func testBuilds() {} }
