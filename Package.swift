// swift-tools-version:6.0
// rram-edge: topology optimization of random resistive-memory networks, frozen into
// bit-exact integer programs for FPGAs, chips and small boards. See docs/ARCHITECTURE.md.
import PackageDescription

// Release builds drop exclusivity checks in the hot loops; the default build stays portable
// (no -target-cpu). `edgecli bench` documents how to add `-Xswiftc -target-cpu -Xswiftc native`.
let speed: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "rram-edge",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "edgecli", targets: ["edgecli"]),
        .library(name: "Kernels", targets: ["Kernels"]),
    ],
    targets: [
        // System zlib (gzip'd IDX data sets); Debian: zlib1g-dev.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Layer 0: integer semantics and reproducible randomness. No Foundation.
        .target(name: "FixedPoint", swiftSettings: speed),
        .target(name: "Randomness", swiftSettings: speed),
        // Layer 1: data sets and arrays on disk.
        .target(name: "DataIO", dependencies: ["CZlib"]),
        // Layer 2: the physics (device model, target profiles, crossbar mapping).
        .target(name: "Device", dependencies: ["Randomness", "DataIO"], swiftSettings: speed),
        // Layer 3: the float pipeline: topology optimization over random conductances.
        .target(name: "Training", dependencies: ["Randomness", "DataIO", "Device"], swiftSettings: speed),
        // Layer 3': the integer program (the hardware datapath), Foundation-free.
        .target(name: "Kernels", dependencies: ["FixedPoint"], swiftSettings: speed),
        // Layer 4: freeze a trained run into an integer program.
        .target(name: "Quant", dependencies: ["FixedPoint", "Kernels", "Training", "Device", "DataIO", "ModelFile", "CZlib"], swiftSettings: speed),
        // Layer 4': the model file (versioned, checksummed container of an integer program).
        .target(name: "ModelFile", dependencies: ["FixedPoint", "Kernels", "DataIO", "Randomness"]),
        // Layer 5: FPGA/firmware/chip images, golden vectors and verification.
        .target(name: "Export", dependencies: ["FixedPoint", "Kernels", "ModelFile", "DataIO"]),
        .target(name: "Verify", dependencies: ["Kernels", "ModelFile", "DataIO"]),
        // The command line.
        .executableTarget(name: "edgecli",
                          dependencies: ["FixedPoint", "Randomness", "DataIO", "Device", "Training",
                                         "Kernels", "Quant", "ModelFile", "Export", "Verify"],
                          swiftSettings: speed),

        .testTarget(name: "FixedPointTests", dependencies: ["FixedPoint", "Randomness"]),
        .testTarget(name: "RandomnessTests", dependencies: ["Randomness"]),
        .testTarget(name: "DataIOTests", dependencies: ["DataIO", "Randomness"]),
        .testTarget(name: "DeviceTests", dependencies: ["Device", "Randomness", "DataIO"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Randomness", "DataIO", "Device"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "FixedPoint", "Randomness"]),
        .testTarget(name: "QuantTests", dependencies: ["Quant", "Kernels", "Training", "Randomness", "ModelFile", "DataIO", "Device", "FixedPoint"]),
        .testTarget(name: "ModelFileTests", dependencies: ["ModelFile", "Kernels", "Randomness", "DataIO"]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "ModelFile", "Kernels", "FixedPoint", "Randomness", "Device", "DataIO"]),
        .testTarget(name: "VerifyTests", dependencies: ["Verify", "Kernels", "ModelFile", "Randomness", "DataIO"]),
    ]
)
