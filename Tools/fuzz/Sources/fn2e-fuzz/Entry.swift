// libFuzzer's entry points: each input goes to the reader FN2E_FUZZ_TARGET names (Driver's
// FuzzTargets). SwiftPM links an executable's entry under the module's own name, so that function
// hands the command line to libFuzzer's driver.
import Driver
import Foundation

private let target: @Sendable (Data) -> Void = {
    let name = ProcessInfo.processInfo.environment["FN2E_FUZZ_TARGET"] ?? ""
    guard let run = FuzzTargets.all[name] else {
        FileHandle.standardError.write(Data("set FN2E_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return run
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    target(data)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                       _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("fn2e_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc, args = argv
    return runDriver(&count, &args) { fuzzOne($0, $1) }
}
