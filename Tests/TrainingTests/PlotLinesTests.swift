import Driver
import Foundation
import Tensors
import XCTest

/// `fn2e-run plot --lines`: a line chart from a CSV of series,x,y with an optional low,high spread.
final class PlotLinesTests: XCTestCase {
    func testLinesWithSpreadAndErrors() throws {
        let csv = Toy.dir + "/lines.csv", png = Toy.dir + "/lines.png"
        try? FileManager.default.removeItem(atPath: png)
        try "series,x,y,low,high\na,1,10,8,12\na,2,20,18,22\nb,1,5,,\nb,2,6,,\n".write(toFile: csv, atomically: true, encoding: .utf8)
        try plotLines(csv: csv, png: png, title: "t", xLabel: "x", yLabel: "y")
        let image = try Images.load(path: png, channels: 3)
        XCTAssertEqual(image.shape, [3, 500, 800])
        // Both series are drawn in the palette's first two colours.
        let n = 500 * 800
        func count(_ hex: UInt32) -> Int {
            let (r, g, b) = (Float(hex >> 16 & 0xFF), Float(hex >> 8 & 0xFF), Float(hex & 0xFF))
            return (0..<n).filter { image.data[$0] == r && image.data[n + $0] == g && image.data[2 * n + $0] == b }.count
        }
        XCTAssertGreaterThan(count(0x1f77b4), 100)
        XCTAssertGreaterThan(count(0xff7f0e), 100)

        // A bad number names the file, line and column, and leaves no PNG behind.
        try? FileManager.default.removeItem(atPath: png)
        try "series,x,y\na,1,10\na,2,zz\n".write(toFile: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try plotLines(csv: csv, png: png, title: "t", xLabel: "x", yLabel: "y")) { e in
            XCTAssertTrue("\(e)".contains("lines.csv:3:5: error: 'zz' is not a number"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: png))
        XCTAssertFalse(FileManager.default.fileExists(atPath: png + ".tmp.png"))
    }
}
