<?php

use Monolog\Handler\NullHandler;
use Monolog\Handler\StreamHandler;

return [
    // Reported exceptions go to stderr (the php -S console), never to a file.
    'default' => env('LOG_CHANNEL', 'stderr'),

    'channels' => [
        'stderr' => [
            'driver' => 'monolog',
            'handler' => StreamHandler::class,
            'with' => ['stream' => 'php://stderr'],
        ],
        'null' => [
            'driver' => 'monolog',
            'handler' => NullHandler::class,
        ],
    ],
];
