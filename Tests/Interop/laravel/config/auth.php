<?php

return [
    'defaults' => ['guard' => 'web'],

    // 'herald' is registered with Auth::viaRequest in App\Providers\AppServiceProvider.
    'guards' => [
        'web' => ['driver' => 'herald'],
    ],

    'providers' => [],
];
