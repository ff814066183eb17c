// The types an embedding app needs (Event, EventPlugin, JSONValue, RedisConfiguration) come
// with `import Herald`.
@_exported import HeraldCore
@_exported import struct HeraldRedis.RedisConfiguration
