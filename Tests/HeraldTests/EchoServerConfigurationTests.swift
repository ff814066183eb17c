import Herald
import HeraldRedis
import Testing

/// `laravel-echo-server init` output with every wizard default accepted (plus one API client),
/// byte for byte as the wizard writes it (tab-indented `JSON.stringify(config, null, '\t')`).
let wizardFile = """
{
\t"authHost": "http://localhost",
\t"authEndpoint": "/broadcasting/auth",
\t"clients": [
\t\t{
\t\t\t"appId": "a1b2c3d4e5f60718",
\t\t\t"key": "00112233445566778899aabbccddeeff"
\t\t}
\t],
\t"database": "redis",
\t"databaseConfig": {
\t\t"redis": {},
\t\t"sqlite": {
\t\t\t"databasePath": "/database/laravel-echo-server.sqlite"
\t\t}
\t},
\t"devMode": true,
\t"host": null,
\t"port": "6001",
\t"protocol": "http",
\t"socketio": {},
\t"secureOptions": 67108864,
\t"sslCertPath": "",
\t"sslKeyPath": "",
\t"sslCertChainPath": "",
\t"sslPassphrase": "",
\t"subscribers": {
\t\t"http": true,
\t\t"redis": true
\t},
\t"apiOriginAllow": {
\t\t"allowCors": true,
\t\t"allowOrigin": "http://localhost:80",
\t\t"allowMethods": "GET, POST",
\t\t"allowHeaders": "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, X-CSRF-TOKEN, X-Socket-Id"
\t}
}
"""

@Suite("laravel-echo-server configuration file")
struct EchoServerConfigurationTests {
    @Test("the init wizard's file maps onto Herald with no warnings")
    func wizardOutput() throws {
        let les = try EchoServerConfiguration.parse(wizardFile)
        #expect(les.warnings == [])
        #expect(les.devMode)
        let config = les.configuration
        #expect(config.host == "0.0.0.0")
        #expect(config.port == 6001)
        #expect(config.authorization?.hosts == ["http://localhost"])
        #expect(config.authorization?.endpoint == "/broadcasting/auth")
        #expect(config.apiClients == [APIClient(appID: "a1b2c3d4e5f60718", key: "00112233445566778899aabbccddeeff")])
        #expect(config.redis == RedisConfiguration(host: "127.0.0.1", port: 6379))
        #expect(config.keyPrefix == "")
        #expect(config.apiPublishEnabled)
        #expect(config.apiCORS == APICORS(
            allowOrigin: "http://localhost:80",
            allowMethods: "GET, POST",
            allowHeaders: "Origin, Content-Type, X-Auth-Token, X-Requested-With, Accept, Authorization, X-CSRF-TOKEN, X-Socket-Id"
        ))
        #expect(config.extraHeaders.isEmpty)
    }

    @Test("an empty object is laravel-echo-server's defaults")
    func defaults() throws {
        let les = try EchoServerConfiguration.parse("{}")
        #expect(les.warnings == [])
        #expect(!les.devMode)
        #expect(les.configuration.port == 6001)
        #expect(les.configuration.authorization == AuthorizationConfiguration(hosts: ["http://localhost"], endpoint: "/broadcasting/auth"))
        #expect(les.configuration.redis == RedisConfiguration())
        #expect(les.configuration.apiClients.isEmpty)
        #expect(les.configuration.apiCORS == nil)
    }

    @Test("authHost as a list, Redis settings, keyPrefix, headers and host")
    func fullRedisAndHosts() throws {
        let les = try EchoServerConfiguration.parse("""
            {"authHost": ["https://app.example.com", "http://localhost:8000"], "authEndpoint": "/api/broadcasting/auth",
             "host": "127.0.0.1", "port": 6002,
             "databaseConfig": {"redis": {"host": "redis.internal", "port": 6380, "password": "s3cret", "db": 2,
                                          "keyPrefix": "laravel_database_"}},
             "headers": {"X-Frame-Options": "DENY", "X-Version": 3},
             "apiOriginAllow": {"allowCors": false, "allowOrigin": "", "allowMethods": "", "allowHeaders": ""}}
            """)
        let config = les.configuration
        #expect(config.authorization?.hosts == ["https://app.example.com", "http://localhost:8000"])
        #expect(config.authorization?.endpoint == "/api/broadcasting/auth")
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 6002)
        #expect(config.redis == RedisConfiguration(host: "redis.internal", port: 6380, password: "s3cret", database: 2))
        #expect(config.keyPrefix == "laravel_database_")
        #expect(config.redisPattern == "laravel_database_*")
        #expect(config.extraHeaders.map(\.name) == ["X-Frame-Options", "X-Version"])
        #expect(config.extraHeaders.map(\.value) == ["DENY", "3"])
        #expect(config.apiCORS == nil)
        // https authHost: Herald verifies certificates, laravel-echo-server did not.
        #expect(les.warnings.contains { $0.contains("--auth-insecure") })
    }

    @Test("port: trailing non-digits are stripped as laravel-echo-server does", arguments: [
        ("\"6001\"", 6001), ("6003", 6003), ("\"6004abc\"", 6004), ("\"7000/\"", 7000),
    ])
    func port(literal: String, expected: Int) throws {
        let les = try EchoServerConfiguration.parse("{\"port\": \(literal)}")
        #expect(les.configuration.port == expected)
    }

    @Test("LARAVEL_ECHO_SERVER_* variables override the file")
    func environmentOverrides() throws {
        let les = try EchoServerConfiguration.parse(wizardFile, environment: [
            "LARAVEL_ECHO_SERVER_AUTH_HOST": "http://app:8080",
            "LARAVEL_ECHO_SERVER_DEBUG": "false",
            "LARAVEL_ECHO_SERVER_HOST": "127.0.0.1",
            "LARAVEL_ECHO_SERVER_PORT": "6100",
            "LARAVEL_ECHO_SERVER_REDIS_HOST": "redis",
            "LARAVEL_ECHO_SERVER_REDIS_PORT": "6390",
            "LARAVEL_ECHO_SERVER_REDIS_PASSWORD": "pw",
            "UNRELATED": "x",
        ])
        let config = les.configuration
        #expect(!les.devMode)
        #expect(config.authorization?.hosts == ["http://app:8080"])
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 6100)
        #expect(config.redis == RedisConfiguration(host: "redis", port: 6390, password: "pw"))
        #expect(les.warnings == [])
    }

    @Test("https and TLS keys: warned about, each key named")
    func https() throws {
        let les = try EchoServerConfiguration.parse(
            #"{"protocol": "http", "sslCertPath": "/etc/ssl/cert.pem"}"#,
            environment: ["LARAVEL_ECHO_SERVER_PROTO": "https", "LARAVEL_ECHO_SERVER_SSL_KEY": "/etc/ssl/key.pem"]
        )
        let warning = try #require(les.warnings.first { $0.contains("https") })
        for key in ["protocol", "sslCertPath", "sslKeyPath", "sslCertChainPath", "sslPassphrase"] {
            #expect(warning.contains(key))
        }
        #expect(warning.contains("not supported"))

        let http = try EchoServerConfiguration.parse(#"{"sslCertPath": "/etc/ssl/cert.pem"}"#)
        #expect(http.warnings.contains { $0.contains("sslCertPath") })
    }

    @Test("unsupported and unknown keys are all named in warnings")
    func warnings() throws {
        let les = try EchoServerConfiguration.parse("""
            {"database": "sqlite", "socketio": {"pingInterval": 1000},
             "databaseConfig": {"redis": {"sentinels": [], "name": "mymaster"}, "publishPresence": true},
             "subscribers": {"redis": false}, "somethingElse": 1}
            """)
        let text = les.warnings.joined(separator: "\n")
        for needle in ["sqlite", "socketio.pingInterval", "databaseConfig.redis.sentinels", "databaseConfig.redis.name",
                       "publishPresence", "subscribers.http", "subscribers.redis", "somethingElse"] {
            #expect(text.contains(needle), "no warning names \(needle): \(text)")
        }
        // A subscribers object without "http" turns the publish API off (shallow Object.assign).
        #expect(!les.configuration.apiPublishEnabled)
        #expect(les.configuration.redis == nil)
    }

    @Test("bad files fail with the key path", arguments: [
        ("[1,2]", "top level"),
        ("{\"port\": 6001,}", "not valid JSON"),
        ("{\"authHost\": 5}", "authHost: expected a string or a list of strings"),
        ("{\"authHost\": [\"http://a\", 7]}", "authHost[1]: expected a string"),
        ("{\"clients\": [{\"appId\": \"x\"}]}", "clients[0].key: missing"),
        ("{\"clients\": {\"appId\": \"x\"}}", "clients: expected a list"),
        ("{\"databaseConfig\": {\"redis\": {\"port\": true}}}", "databaseConfig.redis.port: expected a number"),
        ("{\"databaseConfig\": {\"redis\": {\"port\": \"abc\"}}}", "databaseConfig.redis.port: expected a port number"),
        ("{\"databaseConfig\": {\"redis\": {\"db\": \"two\"}}}", "databaseConfig.redis.db: expected a number"),
        ("{\"databaseConfig\": {\"redis\": {\"keyPrefix\": 1}}}", "databaseConfig.redis.keyPrefix: expected a string"),
        ("{\"databaseConfig\": []}", "databaseConfig: expected an object"),
        ("{\"devMode\": \"yes\"}", "devMode: expected true or false"),
        ("{\"port\": 70000}", "port: expected a port number"),
        ("{\"protocol\": \"ws\"}", "protocol: expected \"http\" or \"https\""),
        ("{\"database\": \"mysql\"}", "database: expected \"redis\" or \"sqlite\""),
        ("{\"subscribers\": {\"http\": \"on\"}}", "subscribers.http: expected true or false"),
        ("{\"apiOriginAllow\": {\"allowCors\": 1}}", "apiOriginAllow.allowCors: expected true or false"),
        ("{\"headers\": {\"X-A\": {\"b\": 1}}}", "headers.X-A: expected a string"),
        ("{\"headers\": {\"Bad Name\": \"v\"}}", "headers.Bad Name: not a valid HTTP header name"),
    ])
    func badFiles(text: String, expected: String) {
        do {
            _ = try EchoServerConfiguration.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description) does not contain \(expected)")
        }
    }

    @Test("bad LARAVEL_ECHO_SERVER_* values name the variable")
    func badEnvironment() {
        #expect(throws: EchoServerConfigurationError.self) {
            try EchoServerConfiguration.parse("{}", environment: ["LARAVEL_ECHO_SERVER_REDIS_PORT": "x"])
        }
        do {
            _ = try EchoServerConfiguration.parse("{}", environment: ["LARAVEL_ECHO_SERVER_PORT": "port"])
            Issue.record("accepted a bad port")
        } catch {
            #expect(error.path == "LARAVEL_ECHO_SERVER_PORT")
        }
    }
}
