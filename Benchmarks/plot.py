#!/usr/bin/env python3
"""Draws Benchmarks/results.png from the results tables already in BENCHMARKS.md.

    .venv-bench/bin/python Benchmarks/plot.py [BENCHMARKS.md] [Benchmarks/results.png]

Left: CPU per delivery of Herald and the python-socketio peer for every Socket.IO cell (the
table between the RESULTS markers), log scale, with the ratio and the peer's loss. Right: each
Pusher cell (the PUSHER-RESULTS table) against its target, as the share of the target it uses
(measured ÷ target; for a connect-rate target, target ÷ measured), so below 1 is met. Run.sh
calls it after writing the tables; it needs matplotlib (Benchmarks/requirements-plot.txt).
"""
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def block(doc, marker):
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if start not in doc:
        return "", []
    text = doc.split(start, 1)[1].split(end, 1)[0]
    head = next((l.strip() for l in text.splitlines() if l.startswith("Run ")), "")
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(cells)
    if not rows:
        return head, []
    header, body = rows[0], rows[1:]
    return head, [dict(zip(header, r)) for r in body]


def num(text):
    """The first number in a cell ('1.273', '0.0 %', '6.419 / 27.39' -> 6.419), None for '–'."""
    m = re.search(r"-?\d[\d,]*\.?\d*", text or "")
    return float(m.group(0).replace(",", "")) if m else None


def run_line(head):
    """'Run 2026-11-23 21:01 UTC on 2 cores (AMD EPYC), …' -> 'run 2026-11-23 21:01 UTC, 2 cores (AMD EPYC)'."""
    m = re.match(r"Run (.+? UTC) on (\d+) cores \(([^)]*)\)", head)
    return f"run {m.group(1)}, {m.group(2)} cores ({m.group(3)})" if m else head


def socketio_panel(ax, head, rows):
    cells = [r for r in rows if num(r.get("Herald µs/delivery")) and num(r.get("peer µs/delivery"))]
    if not cells:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no Socket.IO results with a peer", ha="center", va="center")
        return
    names = [r["cell (mode:connections:events/s)"] for r in cells]
    herald = [num(r["Herald µs/delivery"]) for r in cells]
    peer = [num(r["peer µs/delivery"]) for r in cells]
    x = range(len(cells))
    w = 0.38
    hb = ax.bar([i - w / 2 for i in x], herald, w, label="Herald", color="#1f6feb")
    pb = ax.bar([i + w / 2 for i in x], peer, w, label="python-socketio (peer)", color="#d1242f", alpha=0.85)
    ax.set_yscale("log")
    ax.set_ylim(min(herald) / 2, max(peer) * 6)
    ax.set_xticks(list(x))
    ax.set_xticklabels([n.replace(":", "\n", 1) for n in names], fontsize=8)
    ax.set_ylabel("relay CPU µs per delivery (log scale, lower is better)")
    ax.set_title(f"Socket.IO: Herald vs python-socketio\n{run_line(head)}", fontsize=10)
    for bar, value in zip(hb, herald):
        ax.annotate(f"{value:.3g}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    for bar, value, r in zip(pb, peer, cells):
        loss = num(r.get("peer loss"))
        ratio = value / num(r["Herald µs/delivery"])
        label = f"{value:.3g}\n{ratio:.0f}× Herald"
        if loss:
            label += f"\nloses {loss:.0f} %"
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.legend(loc="upper left", fontsize=8)
    ax.text(0.99, 0.99, "the peer's µs count only the deliveries it made", transform=ax.transAxes, ha="right", va="top", fontsize=7, style="italic")
    ax.grid(axis="y", which="major", alpha=0.3)


def target_share(row):
    """(share of the target used, short label) for one Pusher row, or None without a target."""
    target = row.get("target", "")
    parts = []
    m = re.search(r"≤\s*([\d.]+)\s*µs", target)
    if m:
        measured = num(row.get("µs/delivery"))
        if measured is not None:
            parts.append((measured / float(m.group(1)), f"{measured:.3g} µs (≤ {m.group(1)})"))
    m = re.search(r"p99\s*≤\s*([\d.]+)\s*ms", target)
    if m:
        lat = row.get("p50 / p99 / p99.9 / max ms", "").split("/")
        if len(lat) > 1 and num(lat[1]) is not None:
            parts.append((num(lat[1]) / float(m.group(1)), f"p99 {num(lat[1]):.3g} ms (≤ {m.group(1)})"))
    m = re.search(r"≤\s*([\d.]+)\s*KiB", target)
    if m:
        measured = num(row.get("KiB/conn"))
        if measured is not None:
            parts.append((measured / float(m.group(1)), f"{measured:.3g} KiB/conn (≤ {m.group(1)})"))
    m = re.search(r"≥\s*([\d,]+)\s*conn/s", target)
    if m:
        measured = num(row.get("connect/s"))
        if measured:
            goal = float(m.group(1).replace(",", ""))
            parts.append((goal / measured, f"{measured:,.0f} conn/s (≥ {goal:,.0f})"))
    if not parts:
        return None
    loss = num(row.get("loss"))
    share = max(p[0] for p in parts)
    label = ", ".join(p[1] for p in parts)
    if "0 % loss" in target and loss is not None:
        label += f", loss {loss:g} %"
        if loss > 0:
            share = max(share, 1.01)
    return share, label


def pusher_panel(ax, head, rows):
    shown = []
    for r in rows:
        t = target_share(r)
        if t:
            shown.append((r["cell (pusher-mode:connections:events/s)"], t[0], t[1], r.get("status", "")))
    if not shown:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no Pusher results", ha="center", va="center")
        return
    shown.reverse()  # first row at the top
    y = range(len(shown))
    colors = ["#1a7f37" if s <= 1 else "#d1242f" for _, s, _, _ in shown]
    bars = ax.barh(list(y), [s for _, s, _, _ in shown], color=colors, height=0.6)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.text(1.0, -0.75, "target ", fontsize=8, ha="right", va="center")
    ax.set_yticks(list(y))
    ax.set_yticklabels([n.replace("pusher-", "") for n, _, _, _ in shown], fontsize=8)
    # Labels sit right of the target line (or of a bar past it), clear of both.
    right = max(1.0, max(s for _, s, _, _ in shown))
    ax.set_xlim(0, right + 1.25)
    ax.set_ylim(-1.1, len(shown) - 0.5)
    ax.set_xlabel("share of the target used (measured ÷ target; connect rate: target ÷ measured)\nbelow 1 = target met", fontsize=8)
    ax.set_title(f"Pusher protocol 7: Herald vs the issue's targets\n{run_line(head)}", fontsize=10)
    for bar, (_, share, label, status) in zip(bars, shown):
        ax.text(max(bar.get_width(), 1.0) + 0.03, bar.get_y() + bar.get_height() / 2, f"{label} — {status}", va="center", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "BENCHMARKS.md"
    out = sys.argv[2] if len(sys.argv) > 2 else "Benchmarks/results.png"
    doc = open(src, encoding="utf-8").read()
    sio_head, sio = block(doc, "RESULTS")
    pus_head, pus = block(doc, "PUSHER-RESULTS")
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [1.1, 1]})
    socketio_panel(left, sio_head, sio)
    pusher_panel(right, pus_head, pus)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
