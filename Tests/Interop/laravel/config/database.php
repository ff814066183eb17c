<?php

use Illuminate\Support\Str;

return [
    // Only Redis: RedisBroadcaster publishes through it.
    'redis' => [
        // phpredis (extension) or predis (library); both are installed.
        'client' => env('REDIS_CLIENT', 'phpredis'),

        'options' => [
            'cluster' => env('REDIS_CLUSTER', 'redis'),
            // Exactly the skeleton's default: "laravel_database_". Because env()
            // returns '' for a variable set to the empty string, REDIS_PREFIX=
            // gives an empty prefix. RedisBroadcaster prepends this to channels.
            'prefix' => env('REDIS_PREFIX', Str::slug(env('APP_NAME', 'laravel'), '_').'_database_'),
        ],

        'default' => [
            'url' => env('REDIS_URL'),
            'host' => env('REDIS_HOST', '127.0.0.1'),
            'password' => env('REDIS_PASSWORD', null),
            'port' => env('REDIS_PORT', '6379'),
            'database' => env('REDIS_DB', '0'),
        ],
    ],
];
