// swift-tools-version:6.0
import PackageDescription

/// Settings every Herald target shares: Swift 6 language mode (strict concurrency) is the
/// tools-version default; `ExistentialAny` keeps existential costs visible.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "Herald",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Herald", targets: ["Herald"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldRedis", targets: ["HeraldRedis"]),
        .library(name: "HeraldProtocols", targets: ["HeraldProtocols"]),
        .executable(name: "herald", targets: ["herald"]),
        .executable(name: "SampleRelay", targets: ["SampleRelay"]),
        .executable(name: "herald-load", targets: ["herald-load"]),
        .executable(name: "CustomPlugin", targets: ["CustomPlugin"]),
        .library(name: "HeraldFilter", targets: ["HeraldFilter"]),
        .library(name: "HeraldRewrite", targets: ["HeraldRewrite"]),
        .library(name: "HeraldEnrich", targets: ["HeraldEnrich"]),
        .library(name: "HeraldHummingbird", targets: ["HeraldHummingbird"]),
        .executable(name: "EmbeddedHummingbird", targets: ["EmbeddedHummingbird"]),
        .executable(name: "QRLogin", targets: ["QRLogin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // hiredis from Debian/Ubuntu (`libhiredis-dev`). Only HeraldRedis imports it.
        .systemLibrary(
            name: "CHiredis",
            path: "Sources/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "HeraldRedis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldProtocols",
            dependencies: [
                "HeraldCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Herald",
            dependencies: [
                "HeraldCore",
                "HeraldProtocols",
                "HeraldRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Herald inside a Hummingbird 2 application: routes for the app's router (publish API,
        // channel queries, /broadcasting/auth answered in Swift) beside Herald's own listener.
        .target(
            name: "HeraldHummingbird",
            dependencies: [
                "Herald",
                "HeraldCore",
                "HeraldProtocols",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "EmbeddedHummingbird",
            dependencies: [
                "Herald",
                "HeraldHummingbird",
                "HeraldRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/EmbeddedHummingbird",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "QRLogin",
            dependencies: [
                "Herald",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/QRLogin",
            exclude: ["README.md"],
            // Compiled into the binary (`PackageResources.*`): one self-contained executable,
            // no Bundle lookup at run time.
            resources: [
                .embedInCode("Assets/herald-client.js"),
                .embedInCode("Assets/login.html"),
                .embedInCode("Assets/scan.html"),
                .embedInCode("Assets/dashboard.html"),
                .embedInCode("Assets/message.html"),
                .embedInCode("Assets/style.css"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "CustomPlugin",
            dependencies: [
                "Herald",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/CustomPlugin",
            swiftSettings: swiftSettings
        ),
        // The benchmark load generator (see BENCHMARKS.md); built with everything else so
        // CI proves it compiles, run only on demand.
        .executableTarget(
            name: "herald-load",
            dependencies: [
                "HeraldRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/LoadGenerator",
            swiftSettings: swiftSettings
        ),
        // Bundled event plugins: each depends on HeraldCore's public plugin API only.
        .target(
            name: "HeraldFilter",
            dependencies: ["HeraldCore"],
            path: "Plugins/HeraldFilter",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldRewrite",
            dependencies: [
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Plugins/HeraldRewrite",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldEnrich",
            dependencies: [
                "HeraldCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Plugins/HeraldEnrich",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "Herald",
                "HeraldFilter",
                "HeraldRewrite",
                "HeraldEnrich",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SampleRelay",
            dependencies: [
                "Herald",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/SampleRelay",
            swiftSettings: swiftSettings
        ),
        // Shared by the integration tests: a real redis-server on a free loopback port.
        .target(
            name: "HeraldTestSupport",
            path: "Tests/HeraldTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldProtocolsTests",
            dependencies: ["HeraldProtocols", "HeraldCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldRedisTests",
            dependencies: [
                "HeraldRedis",
                "HeraldTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldTests",
            dependencies: [
                "Herald",
                "HeraldRedis",
                "HeraldTestSupport",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldFilterTests",
            dependencies: [
                "HeraldFilter",
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldRewriteTests",
            dependencies: [
                "HeraldRewrite",
                "HeraldFilter",
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldHummingbirdTests",
            dependencies: [
                "HeraldHummingbird",
                "Herald",
                "HeraldProtocols",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldEnrichTests",
            dependencies: [
                "HeraldEnrich",
                "HeraldRewrite",
                "HeraldFilter",
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
