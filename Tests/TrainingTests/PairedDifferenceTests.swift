import Driver
import Training
import XCTest

/// The recipe's paired comparison: differences run by run, their standard error, a Student-t
/// interval and wins/ties/losses, against numbers worked out by hand.
final class PairedDifferenceTests: XCTestCase {
    /// A run whose accuracy is `correct` out of 10 (a 2-class confusion with `correct` on the diagonal).
    func result(_ method: String, seed: Int, fold: Int, correct: Int) -> Recipe.RunResult {
        var e = Evaluation(split: "test", classes: 2)
        e.confusion = [[correct, 10 - correct], [0, 0]]
        e.count = 10
        return Recipe.RunResult(method: method, classSet: 0, fold: fold, seed: seed, evaluation: e, seconds: 0)
    }

    func testDifferencesStandardErrorIntervalAndCounts() {
        // a − b per (seed, fold): +10, +20, 0, −10 points; b's run (seed 2, fold 1) has no partner in c.
        let a = [(1, 0, 8), (1, 1, 9), (2, 0, 7), (2, 1, 6)].map { result("a", seed: $0.0, fold: $0.1, correct: $0.2) }
        let b = [(1, 0, 7), (1, 1, 7), (2, 0, 7), (2, 1, 7)].map { result("b", seed: $0.0, fold: $0.1, correct: $0.2) }
        let c = [(1, 0, 7), (1, 1, 7), (2, 0, 7)].map { result("c", seed: $0.0, fold: $0.1, correct: $0.2) }
        let d = RecipeReport.pairedDifferences(a + b + c, methods: ["a", "b", "c", "missing"])
        XCTAssertEqual(d.map { "\($0.a)-\($0.b)" }, ["a-b", "a-c", "b-c"])
        let ab = d[0]
        XCTAssertEqual(ab.n, 4)
        XCTAssertEqual(ab.mean, 5, accuracy: 1e-9)
        // sd = sqrt(((5)^2 + 15^2 + 5^2 + 15^2) / 3) = sqrt(500/3); se = sd / 2
        let se = (500.0 / 3).squareRoot() / 2
        XCTAssertEqual(ab.se, se, accuracy: 1e-9)
        XCTAssertEqual(ab.low, 5 - 3.182 * se, accuracy: 1e-9)
        XCTAssertEqual(ab.high, 5 + 3.182 * se, accuracy: 1e-9)
        XCTAssertEqual([ab.wins, ab.ties, ab.losses], [2, 1, 1])
        XCTAssertEqual(d[1].n, 3)
        XCTAssertEqual(d[2].n, 3)
        XCTAssertEqual([d[2].wins, d[2].ties, d[2].losses], [0, 3, 0])
        XCTAssertEqual(d[2].se, 0)

        let report = RecipeReport(a + b + c, classes: ["x", "y"], methods: ["a", "b", "c"])
        XCTAssertTrue(report.text.contains("a − b"), report.text)
        XCTAssertTrue(report.text.contains("2/1/1"), report.text)
    }

    func testStudentTQuantiles() {
        // Published 97.5% quantiles of Student's t.
        for (df, t) in [(1, 12.706), (9, 2.262), (29, 2.045), (40, 2.021), (60, 2.000), (120, 1.980), (100_000, 1.960)] {
            XCTAssertEqual(RecipeReport.studentT975(degrees: df), t, accuracy: 1e-3, "df \(df)")
        }
    }
}
