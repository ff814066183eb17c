// swift-tools-version: 6.1
import PackageDescription

// Herald's micro-benchmarks (ordo-one/benchmark), a package of their own so the main package
// never depends on the benchmark library.
//
//   Benchmarks/micro.sh                     # release build, run, results into BENCHMARKS.md
//   swift build --package-path Benchmarks/Micro --scratch-path .build-micro-debug   # build only (CI)
//
// Besides the public products, RegistryAndFanOut.swift uses Herald's `@_spi(Benchmarks)` entries
// (Sources/Herald/BenchmarkSupport.swift), which are not API.
//
// The benchmark plugin finds its targets under `Benchmarks/` in this package's root, hence
// `Benchmarks/Micro/Benchmarks/HeraldMicro`.
let package = Package(
    name: "HeraldMicroBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Herald", path: "../.."),
        // MallocInterposer only: the malloc counters (the package's other default trait needs
        // a package this machine does not have).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "HeraldMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Herald", package: "Herald"),
                .product(name: "HeraldCore", package: "Herald"),
                .product(name: "HeraldProtocols", package: "Herald"),
                .product(name: "HeraldRedis", package: "Herald"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/HeraldMicro",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
