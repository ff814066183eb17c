<?php

namespace App\Http;

use Illuminate\Foundation\Http\Kernel as HttpKernel;

class Kernel extends HttpKernel
{
    /**
     * The skeleton's list minus LoadEnvironmentVariables: configuration comes
     * from the process environment only, never from a stray .env file.
     */
    protected $bootstrappers = [
        \Illuminate\Foundation\Bootstrap\LoadConfiguration::class,
        \Illuminate\Foundation\Bootstrap\HandleExceptions::class,
        \Illuminate\Foundation\Bootstrap\RegisterFacades::class,
        \Illuminate\Foundation\Bootstrap\RegisterProviders::class,
        \Illuminate\Foundation\Bootstrap\BootProviders::class,
    ];

    protected $middleware = [];

    /**
     * Broadcast::routes() puts /broadcasting/auth in the "web" group. Here it
     * is empty: no session, no cookie encryption, no CSRF check. Users come
     * from the request itself (see AppServiceProvider).
     */
    protected $middlewareGroups = [
        'web' => [],
    ];

    protected $routeMiddleware = [];
}
