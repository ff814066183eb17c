<?php

use Illuminate\Support\Facades\Route;

// Readiness probe for test harnesses.
Route::get('/', function () {
    return 'herald-laravel ok';
});
