import XCTest
final class CaffeImportTestsPlaceholder: XCTestCase { func testBuilds() {} }
