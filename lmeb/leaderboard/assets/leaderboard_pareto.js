/* LMEB leaderboard: quality against cost drawn from D.pareto (lmeb.leaderboard.pareto computes the points and
 * marks the front; this only draws them). An SVG scatter per cost, the front joined by a step line; a point's
 * tooltip names the run and its numbers, a click opens its panel. Strings reach the page through textContent. */
window.LMEB_PARETO = function (D, el, showModel) {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const W = 470, H = 300, L = 56, R = 18, T = 16, B = 42;  // size and margins of one chart
  const box = document.getElementById("pareto");
  const P = D.pareto || { costs: [], left_out: {} };
  const runs = D.rows.filter(r => !r.published);
  if (!runs.length) { box.remove(); return; }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    });
    children.flat(Infinity).forEach(c => { if (c) node.appendChild(c); });
    return node;
  }
  const short = v => {  // 335000000 -> 335M, 0.2441 -> 0.244
    const a = Math.abs(v);
    if (a >= 1e9) return +(v / 1e9).toPrecision(3) + "B";
    if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(3));
  };
  /* A scale [lo, hi] -> [a, b] and its ticks; log when the costs span more than 20x (as the PNG figure). */
  function scale(values, a, b, log) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (log) {
      lo = Math.log10(lo) - 0.15; hi = Math.log10(hi) + 0.15;
      const ticks = [];
      for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) ticks.push(10 ** e);
      const f = v => a + (b - a) * (Math.log10(v) - lo) / (hi - lo);
      return { f, ticks: ticks.length >= 2 ? ticks : [10 ** lo, 10 ** hi].map(v => +v.toPrecision(2)) };
    }
    const pad = (hi - lo) * 0.15 || Math.abs(hi) * 0.15 || 1;
    lo -= pad; hi += pad;
    const step = 10 ** Math.floor(Math.log10((hi - lo) / 4));
    const nice = [1, 2, 5, 10].map(m => m * step).find(s => (hi - lo) / s <= 6);
    const ticks = [];
    for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-9; v += nice) ticks.push(+v.toPrecision(6));
    return { f: v => a + (b - a) * (v - lo) / (hi - lo), ticks };
  }
  const label = p => p.model + " · " + (D.settings[p.setting] || p.setting);

  function chart(cost) {
    const pts = cost.points;
    const log = pts.every(p => p.cost > 0) && Math.max(...pts.map(p => p.cost)) / Math.min(...pts.map(p => p.cost)) > 20;
    const x = scale(pts.map(p => p.cost), L, W - R, log), y = scale(pts.map(p => p.quality), H - B, T, false);
    const place = placer();
    const on = pts.filter(p => p.front).sort((a, b) => a.cost - b.cost);
    const step = on.map((p, i) => (i ? "H" + x.f(p.cost) + "V" : "M" + x.f(p.cost) + " ") + y.f(p.quality)).join("");
    return svg("svg", { class: "pareto", "data-cost": cost.key, viewBox: "0 0 " + W + " " + H, width: W, height: H,
                        role: "img", "aria-label": D.pareto.quality + " against " + cost.label },
      svg("g", { class: "axis" },
        svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B }), svg("line", { x1: L, y1: T, x2: L, y2: H - B }),
        x.ticks.map(t => svg("text", { x: x.f(t), y: H - B + 14, "text-anchor": "middle", text: short(t) })),
        y.ticks.map(t => svg("text", { x: L - 5, y: y.f(t) + 3, "text-anchor": "end", text: short(t) })),
        svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle",
                      text: cost.label + (log ? " (log scale)" : "") + ", lower is cheaper" }),
        svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle",
                      transform: "rotate(-90 12 " + (T + H - B) / 2 + ")", text: D.pareto.quality })),
      on.length > 1 ? svg("path", { class: "front", d: step }) : null,
      pts.map(p => svg("g", { class: "run" },
        svg("circle", { class: "point" + (p.front ? " front" : ""), "data-row": p.row, cx: x.f(p.cost),
                        cy: y.f(p.quality), r: 5, onclick: () => showModel(p.row) },
          svg("title", { text: label(p) + ": " + short(p.cost) + " " + cost.label + ", quality " + p.quality.toFixed(2)
                              + (p.front ? " (on the Pareto front)" : "") })),
        svg("text", Object.assign({ class: "plabel", text: label(p) }, place(p, x.f(p.cost), y.f(p.quality)))))));
  }
  /* A point's label: right of it, or left near the right edge; moved down past labels placed before it. */
  function placer() {
    const placed = [];
    return (p, px, py) => {
      const w = 5 * label(p).length, left = px + 7 + w > W - R;
      const x0 = left ? px - 7 - w : px + 7;
      let ty = py - 6;
      while (placed.some(q => Math.abs(q.y - ty) < 11 && x0 < q.x0 + q.w && q.x0 < x0 + w)) ty += 11;
      placed.push({ x0, y: ty, w });
      return { x: left ? px - 7 : px + 7, y: ty, "text-anchor": left ? "end" : "start" };
    };
  }

  const leftOut = Object.keys(P.left_out || {}).map(id => D.rows.find(r => r.id === id)).filter(Boolean);
  // append writes a null child as the text "null": the optional paragraphs are filtered out first
  box.append(...[el("h2", { text: "Quality against cost" }),
    P.costs.length ? el("p", { class: "legend", text: D.pareto.quality + (P.quality_over ? " " + P.quality_over : "")
      + ". Orange: the Pareto front, the runs no other run beats in both (cheaper or as cheap, and better). "
      + "Click a point for its run." }) : el("p", { class: "legend", id: "pareto-note", text: P.note || "" }),
    el("div", { class: "paretogrid" }, P.costs.map(c => el("figure", {}, chart(c),
      el("figcaption", { text: c.points.length + " runs against " + c.label })))),
    leftOut.length ? el("p", { class: "legend", id: "pareto-left-out", text: "Not plotted (no efficiency record): "
      + leftOut.map(r => r.model + " · " + (D.settings[r.setting] || r.setting)).join(", ") }) : null].filter(Boolean));
};
