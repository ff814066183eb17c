<?php

/*
 * Front controller, as in the Laravel skeleton:
 *   php -S 127.0.0.1:PORT -t public public/index.php
 */

use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

$app = require __DIR__.'/../bootstrap.php';

$kernel = $app->make(Kernel::class);

$response = $kernel->handle(
    $request = Request::capture()
)->send();

$kernel->terminate($request, $response);
