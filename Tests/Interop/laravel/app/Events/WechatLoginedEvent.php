<?php

namespace App\Events;

use Illuminate\Broadcasting\Channel;
use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Broadcasting\PresenceChannel;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;
use Illuminate\Foundation\Events\Dispatchable;
use Illuminate\Queue\SerializesModels;

/**
 * The seed application's event: a WeChat QR login finished, tell the page
 * waiting on `$channel`. Broadcast synchronously (no queue worker).
 *
 * Payload (public properties + the trait's $socket):
 *   {"event":"App\\Events\\WechatLoginedEvent",
 *    "data":{"token":..,"channel":..,"socket":null},"socket":null}
 */
class WechatLoginedEvent implements ShouldBroadcastNow
{
    use Dispatchable, InteractsWithSockets, SerializesModels;

    public $token;

    public $channel;

    /**
     * 'public' | 'private' | 'presence'. Protected so it stays out of the payload.
     *
     * @var string
     */
    protected $kind;

    public function __construct($token, $channel, $kind = 'public')
    {
        $this->token = $token;
        $this->channel = $channel;
        $this->kind = $kind;
    }

    public function broadcastOn()
    {
        switch ($this->kind) {
            case 'private':
                return new PrivateChannel($this->channel);   // private-<channel>
            case 'presence':
                return new PresenceChannel($this->channel);  // presence-<channel>
            default:
                return new Channel($this->channel);
        }
    }
}
