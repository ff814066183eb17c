<?php

namespace App\Exceptions;

use Illuminate\Foundation\Exceptions\Handler as ExceptionHandler;
use Throwable;

class Handler extends ExceptionHandler
{
    /**
     * Always answer JSON: there is no view layer, and the HTML error pages
     * would need one. A denied channel is then a clean `403 {"message":""}`.
     */
    protected function shouldReturnJson($request, Throwable $e)
    {
        return true;
    }
}
