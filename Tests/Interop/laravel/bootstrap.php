<?php

/*
 * Builds the Laravel Application for Herald's interop tests.
 *
 * The framework comes from Debian's php-laravel-framework (Laravel 8.83), which
 * puts Illuminate on PHP's include path; there is no composer and no vendor/.
 * Every file Laravel would write (provider/package manifests, config/route/event
 * caches, storage/) goes to a temp dir, so running the app leaves the tree clean:
 *
 *   HERALD_LARAVEL_TMP   where to write (default: <sys temp>/herald-laravel-<hash of this dir>)
 *
 * Everything else is read from environment variables in config/*.php
 * (REDIS_HOST, REDIS_PORT, REDIS_CLIENT, REDIS_PREFIX, BROADCAST_DRIVER, APP_KEY, ...).
 *
 * Returns the (not yet bootstrapped) application; public/index.php hands it to
 * the HTTP kernel, publish.php bootstraps it by hand.
 */

require 'Illuminate/autoload.php';

// Our own App\ classes live in app/ (PSR-4, as in the Laravel skeleton).
spl_autoload_register(function (string $class): void {
    if (strncmp($class, 'App\\', 4) === 0) {
        $file = __DIR__.'/app/'.str_replace('\\', '/', substr($class, 4)).'.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

$tmp = getenv('HERALD_LARAVEL_TMP');
if ($tmp === false || $tmp === '') {
    $tmp = sys_get_temp_dir().'/herald-laravel-'.substr(md5(__DIR__), 0, 8);
}
foreach (['cache', 'storage/logs', 'storage/framework/cache', 'storage/framework/views'] as $dir) {
    if (! is_dir("$tmp/$dir")) {
        @mkdir("$tmp/$dir", 0777, true);
    }
}

// Application::normalizeCachePath() reads these through Env (putenv is enough).
// They are forced, not defaulted: nothing may end up in bootstrap/cache here.
foreach ([
    'APP_SERVICES_CACHE' => 'services.php',
    'APP_PACKAGES_CACHE' => 'packages.php',
    'APP_CONFIG_CACHE' => 'config.php',
    'APP_ROUTES_CACHE' => 'routes-v7.php',
    'APP_EVENTS_CACHE' => 'events.php',
] as $name => $file) {
    putenv("$name=$tmp/cache/$file");
    $_ENV[$name] = $_SERVER[$name] = "$tmp/cache/$file";
}

$app = new Illuminate\Foundation\Application(__DIR__);
$app->useStoragePath("$tmp/storage");

$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
