// swift-tools-version:6.0
// The libFuzzer build of fn2e's readers: one executable, the target chosen by FN2E_FUZZ_TARGET.
// Build and run through Tools/fuzz/run.sh (it passes -sanitize=fuzzer,address).
import PackageDescription

let package = Package(
    name: "fn2e-fuzz",
    dependencies: [.package(name: "fn2e", path: "../..")],
    targets: [
        .executableTarget(name: "fn2e-fuzz", dependencies: [.product(name: "Driver", package: "fn2e")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
