/**
 * herald-client.js: a small browser client for Herald (and laravel-echo-server), written for
 * Herald's QRLogin example. No dependencies, no build step.
 *
 * It speaks Engine.IO 4 over a WebSocket only (no long-polling), Socket.IO 5 on the default
 * namespace, and laravel-echo-server's channel dialect, exactly as Laravel Echo's socket.io
 * connector does (PROTOCOLS.md A, B, C.3):
 *
 *   const client = new HeraldClient('ws://127.0.0.1:6001');
 *   client.subscribe('orders');        // → 42["subscribe",{"channel":"orders","auth":{"headers":{}}}]
 *   client.on('order.shipped', (channel, data) => console.log(channel, data));
 *                                      // ← 42["order.shipped","orders",{"id":1}]
 *
 * Herald pings every `pingInterval` ("2"); the client answers at once ("3"). When the
 * connection drops, or the server stays silent for longer than pingInterval + pingTimeout, the
 * client reconnects with exponential backoff and jitter and subscribes to every channel again.
 * Public channels only: private and presence channels need Echo's auth headers (`auth` option).
 */
(function (global) {
  'use strict';

  // Engine.IO packet types (text form: one digit, then the data).
  const OPEN = '0', CLOSE = '1', PING = '2', PONG = '3', MESSAGE = '4', NOOP = '6';
  // Socket.IO packet types (the first character of an Engine.IO message).
  const CONNECT = '0', DISCONNECT = '1', EVENT = '2', CONNECT_ERROR = '4';

  class HeraldClient {
    /**
     * Connects at once.
     * @param {string} url Herald's address: `ws://host:6001`, `wss://…`, or `http(s)://…`.
     * @param {object} [options]
     * @param {string} [options.path='/socket.io/'] the Socket.IO endpoint.
     * @param {object} [options.auth={headers:{}}] sent with every subscribe (Echo's `auth`).
     * @param {number} [options.reconnectDelay=500] first reconnect delay in ms; doubles per failure.
     * @param {number} [options.reconnectDelayMax=10000] longest reconnect delay in ms.
     */
    constructor(url, options = {}) {
      this.url = HeraldClient.endpoint(url, options.path || '/socket.io/');
      this.auth = options.auth || { headers: {} };
      this.reconnectDelay = options.reconnectDelay ?? 500;
      this.reconnectDelayMax = options.reconnectDelayMax ?? 10000;
      /** `connecting`, `connected`, `reconnecting` or `closed`. */
      this.state = 'connecting';
      /** The Socket.IO socket id of the current connection (Laravel's X-Socket-ID), or null. */
      this.socketId = null;
      /** Pings answered and connections made, over the client's life. */
      this.pings = 0;
      this.connects = 0;
      this.channels = new Set();
      this.handlers = new Map();
      this.anyHandlers = [];
      this.statusHandlers = [];
      this.failures = 0;
      this.silence = 45000; // pingInterval + pingTimeout, until the handshake says otherwise
      this.ws = null;
      this.watchdog = null;
      this.retry = null;
      this.open();
    }

    /** The WebSocket URL of Herald's Engine.IO 4 endpoint for `url` and `path`. */
    static endpoint(url, path) {
      const u = new URL(url, global.location ? global.location.href : undefined);
      if (u.protocol === 'http:') u.protocol = 'ws:';
      if (u.protocol === 'https:') u.protocol = 'wss:';
      u.pathname = path;
      u.search = '?EIO=4&transport=websocket';
      return u.toString();
    }

    /** Subscribes to `channel` now (when connected) and after every reconnect. */
    subscribe(channel) {
      if (this.channels.has(channel)) return this;
      this.channels.add(channel);
      if (this.state === 'connected') this.emit('subscribe', { channel, auth: this.auth });
      return this;
    }

    /** Leaves `channel`. */
    unsubscribe(channel) {
      if (this.channels.delete(channel) && this.state === 'connected') {
        this.emit('unsubscribe', { channel, auth: this.auth });
      }
      return this;
    }

    /** Calls `handler(channel, data)` for every `event` Herald relays (and `subscription_error`). */
    on(event, handler) {
      if (!this.handlers.has(event)) this.handlers.set(event, []);
      this.handlers.get(event).push(handler);
      return this;
    }

    /** Calls `handler(event, args)` for every event received, whatever its name. */
    onAny(handler) {
      this.anyHandlers.push(handler);
      return this;
    }

    /** Calls `handler(status)` now and whenever the state changes or a ping is answered. */
    onStatus(handler) {
      this.statusHandlers.push(handler);
      handler(this.status());
      return this;
    }

    /** `{state, socketId, pings, connects}`. */
    status() {
      return { state: this.state, socketId: this.socketId, pings: this.pings, connects: this.connects };
    }

    /** Sends a Socket.IO event (`42[event,data]`); dropped while not connected. */
    emit(event, data) {
      if (this.state === 'connected') this.send(MESSAGE + EVENT + JSON.stringify([event, data]));
    }

    /** Closes the connection for good: no reconnect. */
    close() {
      this.state = 'closed';
      clearTimeout(this.retry);
      this.detach();
      this.notify();
    }

    // Internals.

    open() {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onmessage = (message) => {
        if (this.ws === ws && typeof message.data === 'string') this.receive(message.data);
      };
      ws.onclose = () => {
        if (this.ws === ws) this.dropped();
      };
    }

    send(text) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    }

    receive(text) {
      try {
        switch (text[0]) {
          case OPEN: {
            const handshake = JSON.parse(text.slice(1));
            this.silence = handshake.pingInterval + handshake.pingTimeout;
            this.arm();
            this.send(MESSAGE + CONNECT);
            break;
          }
          case PING:
            this.arm();
            this.send(PONG + text.slice(1));
            this.pings += 1;
            this.notify();
            break;
          case MESSAGE:
            this.arm();
            this.receiveSocketIO(text.slice(1));
            break;
          case CLOSE:
            this.dropped();
            break;
          case PONG:
          case NOOP:
            break;
          default:
            throw new Error('unknown Engine.IO packet');
        }
      } catch (error) {
        console.warn('herald-client: protocol error, reconnecting', error);
        this.dropped();
      }
    }

    receiveSocketIO(text) {
      if (text[1] === '/') return; // another namespace: Herald serves `/` only
      switch (text[0]) {
        case CONNECT:
          this.socketId = JSON.parse(text.slice(1) || '{}').sid || null;
          this.state = 'connected';
          this.failures = 0;
          this.connects += 1;
          for (const channel of this.channels) this.emit('subscribe', { channel, auth: this.auth });
          this.notify();
          break;
        case EVENT: {
          // `2[name,…args]`, or `2<ack id>[…]`: Herald never asks for acks, skip the id anyway.
          const args = JSON.parse(text.slice(1).replace(/^\d+/, ''));
          if (Array.isArray(args) && typeof args[0] === 'string') this.dispatch(args[0], args.slice(1));
          break;
        }
        case CONNECT_ERROR:
          throw new Error('connection refused: ' + text.slice(1));
        case DISCONNECT: // the server closed the socket on purpose: do not come back
          this.close();
          break;
      }
    }

    dispatch(event, args) {
      for (const handler of [...this.anyHandlers]) this.call(handler, [event, args]);
      for (const handler of [...(this.handlers.get(event) || [])]) this.call(handler, args);
    }

    call(handler, args) {
      try {
        handler(...args);
      } catch (error) {
        console.error('herald-client: handler failed', error);
      }
    }

    notify() {
      const status = this.status();
      for (const handler of [...this.statusHandlers]) this.call(handler, [status]);
    }

    /** Restarts the silence watchdog: no packet for pingInterval + pingTimeout means a dead link. */
    arm() {
      clearTimeout(this.watchdog);
      this.watchdog = setTimeout(() => this.dropped(), this.silence);
    }

    detach() {
      const ws = this.ws;
      this.ws = null;
      this.socketId = null;
      clearTimeout(this.watchdog);
      if (ws) {
        ws.onmessage = ws.onclose = null;
        try { ws.close(); } catch (_) { /* already closed */ }
      }
    }

    /** The connection is gone: reconnect after 0.5–1× the current backoff. */
    dropped() {
      this.detach();
      if (this.state === 'closed' || this.retry !== null) return;
      this.state = 'reconnecting';
      const delay = Math.min(this.reconnectDelayMax, this.reconnectDelay * 2 ** this.failures);
      this.failures += 1;
      this.retry = setTimeout(() => {
        this.retry = null;
        if (this.state !== 'closed') this.open();
      }, delay / 2 + Math.random() * delay / 2);
      this.notify();
    }
  }

  global.HeraldClient = HeraldClient;
})(typeof window !== 'undefined' ? window : globalThis);
