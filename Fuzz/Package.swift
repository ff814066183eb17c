// swift-tools-version:5.4
//
// Herald's fuzz targets (issue #7): a nested package, so the main package's build, tests and CI
// never see `-sanitize=fuzzer`. Build and run them with `scripts/fuzz.sh` (see FUZZING.md).
//
// Tools version 5.4 on purpose: from 5.5 on SwiftPM renames an executable's entry point and
// links `main` to `<Target>_main`, which a libFuzzer target (`-parse-as-library`, libFuzzer's
// own `main`) does not have, so linking fails. 5.4 also still accepts `.package(name:path:)`,
// which keeps the dependency's name `Herald` whatever the checkout directory is called. The
// targets are compiled in Swift 6 mode all the same (`-swift-version 6`).
import PackageDescription

let swift6: [SwiftSetting] = [.unsafeFlags(["-swift-version", "6"])]

/// One libFuzzer executable per parser, each `Sources/<name>/<name>.swift`.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport"] + dependencies,
        swiftSettings: swift6
    )
}

let core: Target.Dependency = .product(name: "HeraldCore", package: "Herald")
let protocols: Target.Dependency = .product(name: "HeraldProtocols", package: "Herald")
let redis: Target.Dependency = .product(name: "HeraldRedis", package: "Herald")
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")

let package = Package(
    name: "HeraldFuzz",
    dependencies: [
        .package(name: "Herald", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [nioCore], swiftSettings: swift6),
        fuzzTarget("FuzzJSON", [core, nioCore]),
        fuzzTarget("FuzzEngineIOv4", [protocols, nioCore]),
        fuzzTarget("FuzzEngineIOv3", [protocols, nioCore]),
        fuzzTarget("FuzzSocketIO", [protocols, core, nioCore]),
        fuzzTarget("FuzzWebSocketFrame", [
            protocols, core, nioCore,
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        fuzzTarget("FuzzPusherMessage", [protocols, core, nioCore]),
        fuzzTarget("FuzzPusherChannelName", [protocols]),
        fuzzTarget("FuzzPusherHTTPAPI", [protocols, core, nioCore]),
        fuzzTarget("FuzzLaravelPayload", [protocols, core, nioCore]),
        fuzzTarget("FuzzRESP", [redis, protocols, nioCore]),
    ]
)
