/// The built-in status page (`GET /status`): one self-contained HTML document with its CSS
/// and script inline (no framework, nothing fetched from elsewhere). The script reads the
/// token from the page's own `?token=`, polls `status.json` every 2 s with
/// `Authorization: Bearer`, and redraws the cards and the SVG event-rate chart.
///
/// Every number it shows carries a stable `id` and its raw value in `data-value`; table rows
/// carry `data-channel` and their cells `data-subscribers` / `data-members`; the chart's
/// `<svg id="rate-chart">` carries `data-points`, `data-nonzero`, `data-total` and `data-max`
/// (what the headless-browser test reads). Channel names are inserted with `textContent`,
/// never as markup.
enum StatusPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Herald status</title>
<style>
:root { --bg:#f5f6f8; --card:#fff; --ink:#1c2230; --muted:#687084; --line:#e2e5eb; --accent:#3563e9; --ok:#1e9a52; --bad:#d24343; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#101318; --card:#191e26; --ink:#e5e8ee; --muted:#8f98a8; --line:#29303a; --accent:#6e94ff; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1.25rem; padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.15rem; margin: 0; }
.muted { color: var(--muted); }
main { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 1rem; padding: 1rem 1.5rem 2rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.1rem; min-width: 0; grid-column: span 2; }
.card.half { grid-column: span 3; }
@media (max-width: 900px) { .card, .card.half { grid-column: 1 / -1; } }
.card h2 { font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 .6rem; }
.card.wide { grid-column: 1 / -1; }
.big { font-size: 2rem; font-weight: 650; font-variant-numeric: tabular-nums; margin-bottom: .4rem; }
.unit { font-size: .95rem; font-weight: 400; color: var(--muted); }
dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; overflow-wrap: anywhere; }
.where { color: var(--muted); margin: -.2rem 0 .6rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .3rem .2rem; border-bottom: 1px solid var(--line); }
th { font-weight: 500; color: var(--muted); }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td.name { overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
tr.empty td { color: var(--muted); }
.dot { display: inline-block; width: .65rem; height: .65rem; border-radius: 50%; background: var(--muted); margin-right: .45rem; }
.dot.ok { background: var(--ok); }
.dot.bad { background: var(--bad); }
#error { display: none; background: var(--bad); color: #fff; padding: .55rem 1.5rem; }
#error.shown { display: block; }
#rate-chart { width: 100%; height: 170px; display: block; }
#rate-chart .axis { stroke: var(--line); stroke-width: 1; }
#rate-chart text { fill: var(--muted); font-size: 11px; }
#rate-line { fill: none; stroke: var(--accent); stroke-width: 1.6; stroke-linejoin: round; }
#rate-area { fill: var(--accent); opacity: .13; }
</style>
</head>
<body>
<header>
  <h1>Herald</h1>
  <span class="muted">up <span id="uptime" data-value="">–</span></span>
  <span class="muted">memory <span id="memory" data-value="">–</span></span>
  <span class="muted">tail clients <span id="tail-clients" data-value="">–</span></span>
  <span class="muted">updated <span id="updated">never</span></span>
</header>
<div id="error" role="alert"></div>
<main>
  <section class="card" id="connections">
    <h2>Connections</h2>
    <div class="big" id="conn-total" data-value="">–</div>
    <dl>
      <dt>Socket.IO v4</dt><dd id="conn-socketio-v4" data-value="">–</dd>
      <dt>Socket.IO v3</dt><dd id="conn-socketio-v3" data-value="">–</dd>
      <dt>Pusher</dt><dd id="conn-pusher" data-value="">–</dd>
    </dl>
  </section>
  <section class="card" id="events">
    <h2>Events</h2>
    <div class="big"><span id="rate-minute" data-value="">–</span> <span class="unit">events/s, last minute</span></div>
    <dl>
      <dt>Last minute</dt><dd id="events-last-minute" data-value="">–</dd>
      <dt>In, total</dt><dd id="events-in" data-value="">–</dd>
      <dt>Deliveries, total</dt><dd id="deliveries" data-value="">–</dd>
      <dt>Dropped (queue full)</dt><dd id="events-dropped" data-value="">–</dd>
      <dt>Slow consumers cut</dt><dd id="slow-consumers" data-value="">–</dd>
    </dl>
  </section>
  <section class="card" id="redis">
    <h2>Redis</h2>
    <div class="big" style="font-size:1.2rem"><span class="dot" id="redis-dot"></span><span id="redis-state" data-value="">–</span></div>
    <div class="where mono"><span id="redis-address">–</span> · <span id="redis-pattern">–</span></div>
    <dl>
      <dt>Reconnects</dt><dd id="redis-reconnects" data-value="">–</dd>
      <dt>Dropped (buffer full)</dt><dd id="redis-dropped" data-value="">–</dd>
      <dt>Not Laravel broadcasts</dt><dd id="redis-not-laravel" data-value="">–</dd>
    </dl>
  </section>
  <section class="card wide">
    <h2>Events per second, last <span id="window">5</span> minutes</h2>
    <svg id="rate-chart" viewBox="0 0 600 170" role="img" aria-label="events per second" data-points="0" data-nonzero="0" data-total="0" data-max="0">
      <line class="axis" x1="0" y1="150" x2="600" y2="150"></line>
      <line class="axis" x1="0" y1="20" x2="600" y2="20" stroke-dasharray="3 4"></line>
      <polygon id="rate-area" points=""></polygon>
      <polyline id="rate-line" points=""></polyline>
      <text id="rate-max" x="4" y="15">0/s</text>
      <text id="rate-start" x="4" y="165">−5 min</text>
      <text id="rate-now" x="596" y="165" text-anchor="end">now</text>
    </svg>
  </section>
  <section class="card half">
    <h2>Busiest channels (<span id="channel-count" data-value="">–</span> in all)</h2>
    <table id="busiest"><thead><tr><th>Channel</th><th class="n">Subscribers</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="card half">
    <h2>Presence channels (<span id="presence-count" data-value="">–</span>)</h2>
    <table id="presence"><thead><tr><th>Channel</th><th class="n">Members</th><th class="n">Connections</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token") || "";
  var byId = function (id) { return document.getElementById(id); };
  function num(n) { return Number(n).toLocaleString("en-US"); }
  function show(id, value, text) {
    var el = byId(id);
    el.setAttribute("data-value", String(value));
    el.textContent = text === undefined ? num(value) : text;
  }
  function duration(s) {
    s = Math.floor(s);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + (s % 60) + "s" : s + "s";
  }
  function bytes(n) {
    return n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : (n / 1024).toFixed(0) + " KiB";
  }
  function rows(table, items, cells) {
    var body = byId(table).tBodies[0];
    body.replaceChildren();
    if (!items.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      tr.className = "empty"; td.colSpan = cells.length + 1; td.textContent = "none";
      tr.appendChild(td); body.appendChild(tr);
      return;
    }
    items.forEach(function (item) {
      var tr = document.createElement("tr"), name = document.createElement("td");
      tr.setAttribute("data-channel", item.channel);
      name.className = "name"; name.textContent = item.channel;
      tr.appendChild(name);
      cells.forEach(function (key) {
        var td = document.createElement("td");
        td.className = "n"; td.setAttribute("data-" + key, String(item[key])); td.textContent = num(item[key]);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function chart(series) {
    // The drawing is as wide as the card, so text keeps its size at any width.
    var svg = byId("rate-chart"), width = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 600), top = 20, bottom = 150;
    svg.setAttribute("viewBox", "0 0 " + width + " 170");
    svg.querySelectorAll("line.axis").forEach(function (line) { line.setAttribute("x2", String(width)); });
    byId("rate-now").setAttribute("x", String(width - 4));
    var max = 0, total = 0, nonzero = 0;
    series.forEach(function (v) { if (v > max) max = v; total += v; if (v > 0) nonzero++; });
    var scale = Math.max(1, max), step = series.length > 1 ? width / (series.length - 1) : width;
    var points = series.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (bottom - (v / scale) * (bottom - top)).toFixed(1);
    });
    byId("rate-line").setAttribute("points", points.join(" "));
    byId("rate-area").setAttribute("points", points.length ? "0," + bottom + " " + points.join(" ") + " " + width + "," + bottom : "");
    byId("rate-max").textContent = num(scale) + "/s";
    svg.setAttribute("data-points", String(points.length));
    svg.setAttribute("data-nonzero", String(nonzero));
    svg.setAttribute("data-total", String(total));
    svg.setAttribute("data-max", String(max));
  }
  function render(s) {
    show("uptime", s.uptime_seconds, duration(s.uptime_seconds));
    show("memory", s.memory_rss_bytes, bytes(s.memory_rss_bytes));
    show("tail-clients", s.tail.clients);
    show("conn-total", s.connections.total);
    show("conn-socketio-v4", s.connections.socketio_v4);
    show("conn-socketio-v3", s.connections.socketio_v3);
    show("conn-pusher", s.connections.pusher);
    var e = s.events;
    show("rate-minute", e.last_minute / 60, (e.last_minute / 60).toFixed(e.last_minute < 600 ? 2 : 0));
    show("events-last-minute", e.last_minute);
    show("events-in", e.in_total);
    show("deliveries", e.deliveries_total);
    show("events-dropped", e.dropped_total);
    show("slow-consumers", s.slow_consumer_disconnects);
    byId("window").textContent = String(Math.round(e.window_seconds / 60));
    byId("rate-start").textContent = "−" + Math.round(e.window_seconds / 60) + " min";
    chart(e.per_second);
    var r = s.redis, state = !r.configured ? "standalone (no Redis)" : r.subscribed ? "subscribed" : "not connected";
    show("redis-state", r.configured ? (r.subscribed ? "subscribed" : "disconnected") : "off", state);
    byId("redis-dot").className = "dot" + (r.configured ? (r.subscribed ? " ok" : " bad") : "");
    byId("redis-address").textContent = r.address || "–";
    byId("redis-pattern").textContent = r.pattern || "–";
    show("redis-reconnects", r.reconnects);
    show("redis-dropped", r.dropped_messages);
    show("redis-not-laravel", r.not_laravel);
    show("channel-count", s.channels.count);
    rows("busiest", s.channels.busiest, ["subscribers"]);
    show("presence-count", s.presence.count);
    rows("presence", s.presence.channels, ["members", "subscribers"]);
    byId("updated").textContent = new Date().toLocaleTimeString();
  }
  function refresh() {
    fetch("status.json", { headers: { Authorization: "Bearer " + token }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) throw new Error("the status token was refused (401); open this page as /status?token=<token>");
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (status) { render(status); byId("error").className = ""; })
      .catch(function (error) {
        byId("error").textContent = "Cannot refresh: " + error.message;
        byId("error").className = "shown";
      });
  }
  refresh();
  setInterval(refresh, 2000);
})();
</script>
</body>
</html>
"""#
}
