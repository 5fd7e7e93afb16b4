// swift-tools-version:6.0
// The module graph is fixed: each target imports only the targets listed as its dependencies.
import PackageDescription

let package = Package(
    name: "jobworker",
    products: [
        .executable(name: "jobd", targets: ["jobd"]),
        .executable(name: "jobctl", targets: ["jobctl"]),
    ],
    targets: [
        .target(name: "CSystem", path: "Sources/CSystem"),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CURing", path: "Sources/CURing", pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]),
        .systemLibrary(
            name: "CNghttp2", path: "Sources/CNghttp2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),

        .target(name: "Reactor", dependencies: ["CSystem", "CURing"]),
        .target(name: "Cgroups", dependencies: ["CSystem"]),
        .target(name: "Jobs", dependencies: ["Reactor", "Cgroups", "CSystem"]),
        .target(name: "GRPCLite", dependencies: ["Reactor", "COpenSSL", "CNghttp2"]),
        .target(name: "JobAPI", dependencies: ["GRPCLite"]),
        .executableTarget(
            name: "jobd",
            dependencies: ["Reactor", "Cgroups", "Jobs", "GRPCLite", "JobAPI", "CSystem", "COpenSSL"]),
        .executableTarget(name: "jobctl", dependencies: ["GRPCLite", "JobAPI"]),
        .executableTarget(name: "jobworker-loadgen", dependencies: ["GRPCLite", "JobAPI", "Reactor"], path: "perf/loadgen"),

        // Blocks SIGHUP before the test process starts its threads, so the signalfd test
        // receives a process-directed signal instead of the default action ending the run.
        .target(name: "CTestSignalMask", path: "Tests/CTestSignalMask"),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CSystem", "CTestSignalMask"]),
        .testTarget(name: "CgroupsTests", dependencies: ["Cgroups", "CSystem"]),
        .testTarget(name: "JobsTests", dependencies: ["Jobs", "Reactor", "Cgroups"]),
        // Runs the Python fixture scripts (protobuf, grpcio) of the interop tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "GRPCLiteTests", dependencies: ["GRPCLite", "Reactor", "COpenSSL", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "JobAPITests", dependencies: ["JobAPI", "GRPCLite", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "EndToEndTests", dependencies: ["JobAPI", "GRPCLite", "Reactor", "CSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
