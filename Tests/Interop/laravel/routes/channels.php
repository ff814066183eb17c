<?php

use Illuminate\Support\Facades\Broadcast;

/*
 * Channel authorization rules (names without the private-/presence- prefix).
 * Public channels have no rule: auth answers 403 for them.
 */

// The skeleton's own rule (notifications).
Broadcast::channel('App.Models.User.{id}', function ($user, $id) {
    return (int) $user->id === (int) $id;
});

// private-orders.<id>: only user <id>. Answer: true
Broadcast::channel('orders.{id}', function ($user, $id) {
    return (int) $user->id === (int) $id;
});

// presence-chat.<room>: any authenticated user. Answer:
//   {"channel_data":{"user_id":<id>,"user_info":{"id":<id>,"name":"User <id>"}}}
// (private-chat.<room> matches the same rule and gets the same answer.)
Broadcast::channel('chat.{room}', function ($user, $room) {
    return ['id' => $user->id, 'name' => $user->name];
});
