#!/usr/bin/env python3
"""Render a gmp trace file (Chrome trace-event JSON) as an SVG timeline in
an HTML page: one row per P, one rectangle per poll (coloured by
goroutine), ticks for spawn / ready / steal / park events.

Made for docs/observability.md's picture where Perfetto's UI could not be
used (it needs network access); Perfetto shows the same tracks and slices.

Usage: trace_timeline.py trace.json out.html [window_start_us window_len_us]
Then e.g.: chromium --headless --screenshot=out.png --window-size=1400,560 out.html
"""
import html
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    events = json.load(f)["traceEvents"]

names = {}
for e in events:
    if e.get("ph") == "M" and e.get("name") == "thread_name":
        names[(e["pid"], e["tid"])] = e["args"]["name"]
runs = [e for e in events if e.get("ph") == "X"]
marks = [e for e in events if e.get("ph") == "i"]
t0 = min(e["ts"] for e in runs)
if len(sys.argv) > 4:
    start, span = t0 + float(sys.argv[3]), float(sys.argv[4])
else:
    start, span = t0, max(e["ts"] + e["dur"] for e in runs) - t0
end = start + span
tracks = sorted({(e["pid"], e["tid"]) for e in runs})

W, LEFT, ROW, TOP = 1360, 110, 90, 50
scale = (W - LEFT - 20) / span
H = TOP + ROW * len(tracks) + 70
colours = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
mark_colour = {"spawn": "#2ca02c", "ready": "#1f77b4", "steal": "#d62728", "park": "#7f7f7f"}
out = []
out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="sans-serif" font-size="12">')
out.append(f'<rect width="{W}" height="{H}" fill="white"/>')
out.append(f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">'
           f'{html.escape(src.split("/")[-1])}: {span:g} us from {(start - t0) / 1000:g} ms '
           '(rendered from the JSON by docs/tools/trace_timeline.py, not by Perfetto)</text>')
for i, tr in enumerate(tracks):
    y = TOP + i * ROW
    label = names.get(tr, f"P{tr[1]}")
    out.append(f'<text x="10" y="{y + 30}">runtime {tr[0]} {html.escape(label)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - 20}" y1="{y + 62}" y2="{y + 62}" stroke="#ddd"/>')
    for e in runs:
        if (e["pid"], e["tid"]) != tr or e["ts"] > end or e["ts"] + e["dur"] < start:
            continue
        x = LEFT + (max(e["ts"], start) - start) * scale
        w = max(1.0, (min(e["ts"] + e["dur"], end) - max(e["ts"], start)) * scale)
        c = colours[e["args"]["goid"] % len(colours)]
        title = html.escape(f'{e["name"]} {e["dur"]}us end={e["args"]["end"]}')
        out.append(f'<rect x="{x:.1f}" y="{y + 10}" width="{w:.1f}" height="34" fill="{c}" stroke="white" stroke-width="0.5">'
                   f'<title>{title}</title></rect>')
        if w > 28:
            out.append(f'<text x="{x + 2:.1f}" y="{y + 31}" fill="white">{html.escape(e["name"])}</text>')
    for e in marks:
        if (e["pid"], e["tid"]) != tr or not start <= e["ts"] <= end:
            continue
        x = LEFT + (e["ts"] - start) * scale
        c = mark_colour.get(e.get("cat"), "#000")
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 48}" y2="{y + 60}" stroke="{c}"/>')
y = TOP + ROW * len(tracks) + 10
step = next(m * 10 ** k for k in range(12) for m in (1, 2, 5) if m * 10 ** k >= span / 10)
unit, div = ("us", 1) if span < 2000 else ("ms", 1000)
t = 0.0
while t <= span:
    x = LEFT + t * scale
    out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{y}" stroke="#eee"/>')
    out.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle">'
               f'{(start - t0 + t) / div:g} {unit}</text>')
    t += step
lx = LEFT
for cat, c in mark_colour.items():
    out.append(f'<line x1="{lx}" x2="{lx}" y1="{y + 32}" y2="{y + 44}" stroke="{c}" stroke-width="2"/>')
    out.append(f'<text x="{lx + 6}" y="{y + 43}">{cat}</text>')
    lx += 80
out.append(f'<text x="{lx + 20}" y="{y + 43}">rectangles: one poll of one goroutine '
           '(colour by goroutine id, label Gn)</text>')
out.append('</svg>')
with open(dst, "w") as f:
    f.write("<!doctype html><html><body style='margin:0'>" + "\n".join(out) + "</body></html>")
