<?php

namespace App\Providers;

use Illuminate\Auth\GenericUser;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Auth;
use Illuminate\Support\Facades\Broadcast;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function boot()
    {
        // The "herald" guard (config/auth.php): the user is named by the request,
        //   Authorization: Bearer user-<id>   or   Cookie: herald_user=<id>
        // and is user <id> with name "User <id>". No header/cookie: a guest.
        Auth::viaRequest('herald', function (Request $request) {
            $id = null;
            if (preg_match('/^user-(\d+)$/', (string) $request->bearerToken(), $m)) {
                $id = $m[1];
            } elseif (preg_match('/^\d+$/', (string) $request->cookie('herald_user'))) {
                $id = $request->cookie('herald_user');
            }

            return $id === null ? null : new GenericUser(['id' => (int) $id, 'name' => "User $id"]);
        });

        // GET|POST /broadcasting/auth, in the (empty) "web" middleware group.
        Broadcast::routes();
        require base_path('routes/channels.php');

        Route::middleware('web')->group(base_path('routes/web.php'));
    }
}
