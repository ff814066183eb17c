<?php

namespace App\Events;

use Illuminate\Broadcasting\InteractsWithSockets;
use Illuminate\Broadcasting\PrivateChannel;
use Illuminate\Contracts\Broadcasting\ShouldBroadcastNow;
use Illuminate\Foundation\Events\Dispatchable;
use Illuminate\Queue\SerializesModels;

/**
 * The docs' example event, on the private channel `private-orders.<id>`
 * (authorized by routes/channels.php for user <id> only).
 *
 * Payload: {"event":"App\\Events\\OrderShipped","data":{"order":{"id":1},"socket":null},"socket":null}
 * or, given a name, {"event":"order.shipped",...} (Echo: listen('.order.shipped')).
 */
class OrderShipped implements ShouldBroadcastNow
{
    use Dispatchable, InteractsWithSockets, SerializesModels;

    public $order;

    /** @var string|null the broadcastAs() name; null keeps the class name. */
    protected $name;

    public function __construct($id, $name = null)
    {
        $this->order = ['id' => $id];
        $this->name = $name;
    }

    public function broadcastOn()
    {
        return new PrivateChannel('orders.'.$this->order['id']);
    }

    /** Without a name this is what Laravel uses anyway: the class name. */
    public function broadcastAs()
    {
        return $this->name ?? static::class;
    }
}
