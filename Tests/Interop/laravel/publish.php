<?php

/*
 * Publishes one broadcast event through Laravel itself (event()/broadcast()
 * -> BroadcastManager -> RedisBroadcaster -> Redis EVAL/PUBLISH).
 *
 *   php publish.php WechatLoginedEvent <channel> [--token=T] [--private|--presence] [--socket=ID]
 *   php publish.php OrderShipped <id | orders.<id>> [--as=order.shipped] [--socket=ID]
 *
 * WechatLoginedEvent goes to Channel(<channel>), or PrivateChannel/PresenceChannel
 * (private-<channel> / presence-<channel>) with --private/--presence.
 * OrderShipped goes to PrivateChannel('orders.<id>'); --as sets broadcastAs().
 * --socket=ID sends with broadcast($event)->toOthers() from a request carrying
 * `X-Socket-ID: ID`, so the payload's "socket" is ID (data.socket too).
 *
 * Redis comes from the environment (REDIS_HOST, REDIS_PORT, REDIS_CLIENT,
 * REDIS_PREFIX; see config/database.php). Prints nothing on success; on error,
 * a message on stderr and a non-zero exit (2: usage, 1: failure).
 */

use App\Events\OrderShipped;
use App\Events\WechatLoginedEvent;
use Illuminate\Foundation\Bootstrap;
use Illuminate\Http\Request;

function fail(string $message, int $status = 1)
{
    fwrite(STDERR, "publish.php: $message\n");
    exit($status);
}

$positional = [];
$options = [];
foreach (array_slice($argv, 1) as $arg) {
    if (preg_match('/^--([a-z]+)(?:=(.*))?$/s', $arg, $m)) {
        $options[$m[1]] = $m[2] ?? true;
    } else {
        $positional[] = $arg;
    }
}
$unknown = array_diff(array_keys($options), ['token', 'socket', 'private', 'presence', 'as']);
if (count($positional) !== 2 || $unknown) {
    fail('usage: php publish.php <WechatLoginedEvent|OrderShipped> <channel> '
        .'[--token=T] [--private|--presence] [--as=NAME] [--socket=SOCKET_ID]', 2);
}
[$eventName, $channel] = $positional;

// Warnings must fail loudly, but through our handler, not on stdout.
ini_set('display_errors', 'stderr');

try {
    $app = require __DIR__.'/bootstrap.php';
    $app->bootstrapWith([
        Bootstrap\LoadConfiguration::class,
        Bootstrap\HandleExceptions::class,   // PHP errors -> ErrorException
        Bootstrap\RegisterFacades::class,
        Bootstrap\RegisterProviders::class,
        Bootstrap\BootProviders::class,
    ]);

    switch ($eventName) {
        case 'WechatLoginedEvent':
            $kind = isset($options['presence']) ? 'presence' : (isset($options['private']) ? 'private' : 'public');
            $event = new WechatLoginedEvent($options['token'] ?? 'test-token', $channel, $kind);
            break;
        case 'OrderShipped':
            if (! preg_match('/^(?:(?:private-)?orders\.)?(\d+)$/', $channel, $m)) {
                fail("OrderShipped wants an order id or orders.<id>, got '$channel'", 2);
            }
            $as = $options['as'] ?? null;
            $event = new OrderShipped((int) $m[1], is_string($as) ? $as : null);
            break;
        default:
            fail("unknown event '$eventName' (WechatLoginedEvent, OrderShipped)", 2);
    }

    if (isset($options['socket'])) {
        // What a real request from Echo looks like: Broadcast::socket() reads
        // X-Socket-ID from the container's request when toOthers() is called.
        $app->instance('request', Request::create('/', 'POST', [], [], [], [
            'HTTP_X_SOCKET_ID' => (string) $options['socket'],
        ]));
        // PendingBroadcast dispatches in its destructor; unset() makes that
        // happen here, inside the try.
        $pending = broadcast($event)->toOthers();
        unset($pending);
    } else {
        event($event);
    }
} catch (Throwable $e) {
    fail(get_class($e).': '.$e->getMessage());
}
