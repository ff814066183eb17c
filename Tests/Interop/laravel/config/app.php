<?php

return [
    'name' => env('APP_NAME', 'laravel'),
    'env' => env('APP_ENV', 'production'),
    // true: error responses carry the exception and trace (JSON).
    'debug' => (bool) env('APP_DEBUG', false),
    'url' => env('APP_URL', 'http://localhost'),
    'timezone' => 'UTC',
    'locale' => 'en',
    // A fixed test key (only needed if something encrypts; nothing here does).
    'key' => env('APP_KEY', 'base64:SGVyYWxkSW50ZXJvcFRlc3RLZXkwMTIzNDU2Nzg5YWI='),
    'cipher' => 'AES-256-CBC',

    // Only what broadcasting and its auth endpoint need.
    'providers' => [
        Illuminate\Auth\AuthServiceProvider::class,
        Illuminate\Broadcasting\BroadcastServiceProvider::class,
        Illuminate\Bus\BusServiceProvider::class,
        Illuminate\Encryption\EncryptionServiceProvider::class,
        Illuminate\Filesystem\FilesystemServiceProvider::class,
        Illuminate\Redis\RedisServiceProvider::class,
        App\Providers\AppServiceProvider::class,
    ],

    'aliases' => [],
];
