"""A python-socketio 4.x (socket.io 2.x, Engine.IO 3) client driven over stdin/stdout.

Runs in the `.venv-sio4` virtualenv (python-socketio 4 cannot share a virtualenv with 5).
Reads one JSON command per line on stdin and writes one JSON record per line on stdout:

  {"op": "connect", "url": U, "transports": [...], "headers": {...}}
        -> {"type": "connected", "sid": S, "transport": T}  |  {"type": "error", "message": M}
  {"op": "emit", "event": E, "data": D}        -> nothing (events arrive as they come)
  {"op": "transport"}                           -> {"type": "transport", "value": T}
  {"op": "disconnect"}                          -> {"type": "closed"}, then the process exits
  every Socket.IO event received                -> {"type": "event", "event": E, "args": [...]}
  namespace connect / disconnect                -> {"type": "connect"} / {"type": "disconnect"}

EOF on stdin disconnects and exits.
"""

import json
import sys
import threading

import socketio

_lock = threading.Lock()


def out(record):
    with _lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Recorder(socketio.Client):
    def _trigger_event(self, event, namespace, *args):
        if event == "connect":
            out({"type": "connect", "sid": self.sid})
        elif event == "disconnect":
            out({"type": "disconnect"})
        else:
            out({"type": "event", "event": event, "args": list(args)})


def main():
    sio = Recorder(reconnection=False)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "connect":
                sio.connect(command["url"], headers=command.get("headers") or {},
                            transports=command.get("transports"), socketio_path="socket.io")
                out({"type": "connected", "sid": sio.sid, "transport": sio.transport()})
            elif op == "emit":
                sio.emit(command["event"], command.get("data"))
            elif op == "transport":
                out({"type": "transport", "value": sio.transport()})
            elif op == "disconnect":
                break
            else:
                out({"type": "error", "message": f"unknown op {op!r}"})
        except Exception as error:  # reported to the test, which fails on it
            out({"type": "error", "message": f"{type(error).__name__}: {error}"})
    try:
        sio.disconnect()
    except Exception:
        pass
    out({"type": "closed"})


if __name__ == "__main__":
    main()
