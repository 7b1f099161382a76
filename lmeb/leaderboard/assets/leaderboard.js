/* LMEB leaderboard: renders window.LMEB_DATA (inlined by `lmeb leaderboard`) into a sortable table.
 * Vanilla JS, no network: every string from results files reaches the page through textContent,
 * never innerHTML, so names like "<b>" show as text. */
(function () {
  "use strict";
  const D = window.LMEB_DATA;
  const state = { type: "all", setting: "all", published: true, sortKey: null, sortDir: "desc", cost: false,
                  maxCost: null };
  /* Cost columns (the run's efficiency record summed over its datasets); lower is better except texts/s. */
  const COST = { key: "cost", label: "Cost" };
  const COST_COLS = [["seconds_per_1k_texts", "s/1k texts", 1, 2, true], ["texts_per_s", "texts/s", 1, 1, false],
    ["parameters", "Params (M)", 1e-6, 1, true], ["peak_rss_mb", "Peak RSS MB", 1, 0, true]];
  const typeOf = {};
  D.memory_types.forEach(t => t.datasets.forEach(d => { typeOf[d] = t.name; }));

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === null || v === undefined || v === false) return;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    children.flat(Infinity).forEach(c => {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  const fmt = v => (v === null || v === undefined ? "" : Number(v).toFixed(2));
  const settingLabel = s => D.settings[s] || s;

  /* Column groups of the current view: the paper layout, or one memory type's datasets plus its type score.
   * An incomplete group has no number (no mean over fewer parts): parts(r) gives its "n/N" count, shown
   * as "n/N*"; note(r) says why a cell is incomplete or empty. */
  function groups() {
    if (state.type === "all") {
      return D.groups.map(g => ({ key: "g:" + g.key, label: g.label, get: r => r.scores[g.key] || null,
                                  parts: r => groupParts(r, g.key), note: r => groupNote(r, g.key) }));
    }
    const t = D.memory_types.find(m => m.name === state.type);
    const cols = t.datasets.map(d => ({ key: "d:" + d, label: d, dataset: d,
      get: r => (r.datasets[d] ? r.datasets[d].scores : null), parts: r => datasetParts(r, d),
      note: r => datasetNote(r, d) }));
    cols.push({ key: "g:" + t.name, label: t.name + " (type)", get: r => r.scores[t.name] || null,
                parts: r => groupParts(r, t.name), note: r => groupNote(r, t.name) });
    return cols;
  }
  /* r.incomplete[key] is e.g. "7/8 datasets" or "2/4 types": parts complete / parts required. */
  function groupParts(r, key) {
    return r.incomplete[key] ? r.incomplete[key].split(" ")[0] : null;
  }
  function groupNote(r, key) {
    const inc = r.incomplete[key];
    return inc ? "incomplete: only " + inc + " complete, no mean computed" : (r.scores[key] ? null : "not run");
  }
  function datasetParts(r, d) {
    const x = r.datasets[d];
    return x && !x.complete ? x.done + "/" + x.total : null;
  }
  function datasetNote(r, d) {
    if (r.published) return "the paper publishes no per-dataset scores";
    const x = r.datasets[d];
    if (!x) return "not run";
    return x.complete ? null : "incomplete: only " + x.done + "/" + x.total + " subsets present, no mean computed";
  }
  function columns() {
    const cols = [];
    groups().forEach(g => D.metrics.forEach((m, mi) => cols.push({
      key: g.key + ":" + m.key, group: g, metric: m.key, label: m.label, gstart: mi === 0,
      value: r => { const s = g.get(r); return s && s[m.key] !== undefined ? s[m.key] : null; },
      parts: r => g.parts(r), note: r => g.note(r) })));
    if (state.cost) COST_COLS.forEach(([field, label, scale, digits, lower], i) => cols.push({
      key: "e:" + field, group: COST, label: label, gstart: i === 0, digits: digits, lower: lower,
      value: r => (r.efficiency && r.efficiency[field] !== null && r.efficiency[field] !== undefined
                   ? r.efficiency[field] * scale : null),
      parts: () => null, note: r => (r.published ? "the paper publishes no cost" : r.efficiency ? null
                                     : "no efficiency record (results written before lmeb recorded it)") }));
    return cols;
  }
  const costOf = r => (r.efficiency ? r.efficiency.seconds_per_1k_texts : null);
  /* 0 = a number, 1 = incomplete (an "n/N*" count, no number: sorted after the numbers), 2 = nothing. */
  function tier(col, r) {
    if (col.value(r) !== null) return 0;
    return col.parts(r) ? 1 : 2;
  }
  function visibleRows() {
    return D.rows.filter(r => (state.setting === "all" || r.setting === state.setting) && (state.published || !r.published)
      && (state.maxCost === null || (costOf(r) !== null && costOf(r) !== undefined && costOf(r) <= state.maxCost)));
  }
  function sortRows(rows, cols) {
    const dir = state.sortDir === "asc" ? 1 : -1;
    const byName = (a, b) => a.model.localeCompare(b.model) || a.setting.localeCompare(b.setting);
    if (state.sortKey === "model") return rows.slice().sort((a, b) => dir * byName(a, b));
    const col = cols.find(c => c.key === state.sortKey);
    if (!col) return rows.slice();
    return rows.slice().sort((a, b) => (tier(col, a) - tier(col, b)) || dir * ((col.value(a) || 0) - (col.value(b) || 0))
                                       || byName(a, b));
  }
  function defaultSort() {
    state.sortKey = (state.type === "all" ? "g:mean_type:" : "g:" + state.type + ":") + D.metrics[0].key;
    state.sortDir = "desc";
  }

  function onSort(key) {
    if (state.sortKey === key) state.sortDir = state.sortDir === "desc" ? "asc" : "desc";
    else {
      const col = columns().find(c => c.key === key);
      state.sortKey = key; state.sortDir = key === "model" || (col && col.lower) ? "asc" : "desc";
    }
    render();
  }
  function arrow(key) {
    return state.sortKey === key ? el("span", { class: "arrow", text: state.sortDir === "desc" ? "▼" : "▲" }) : null;
  }

  function renderTable() {
    const cols = columns();
    const rows = sortRows(visibleRows(), cols);
    const best = {};
    cols.forEach(c => {
      const vals = rows.filter(r => tier(c, r) === 0).map(c.value);
      if (vals.length > 1) best[c.key] = c.lower ? Math.min(...vals) : Math.max(...vals);
    });
    const gs = groups();
    const head1 = el("tr", { class: "groups" }, el("th", { colspan: 3 }),
      gs.map(g => el("th", { colspan: D.metrics.length, class: "gstart", title: g.dataset ? typeOf[g.dataset] : null },
        g.dataset ? el("button", { class: "link", "data-dataset": g.dataset, text: g.label,
                                   onclick: () => showDataset(g.dataset) }) : g.label)),
      state.cost ? el("th", { colspan: COST_COLS.length, class: "gstart", text: "Cost (summed over its datasets)" }) : null);
    const sortTh = (key, label, cls) => el("th", {
      class: "sortable " + (cls || ""), "data-key": key, "aria-sort": state.sortKey === key
        ? (state.sortDir === "asc" ? "ascending" : "descending") : null, onclick: () => onSort(key) }, label, arrow(key));
    const head2 = el("tr", { class: "metrics" }, el("th", { class: "num", text: "#" }),
      sortTh("model", "Model"), el("th", { text: "Setting" }),
      cols.map(c => sortTh(c.key, c.label, "num" + (c.gstart ? " gstart" : ""))));
    const body = el("tbody", {}, rows.map((r, i) => el("tr", {
      "data-row": r.id, "data-model": r.model, "data-setting": r.setting, class: r.published ? "published" : null },
      el("td", { class: "rank", text: String(i + 1) }),
      el("td", {}, el("button", { class: "link model", text: r.model, onclick: () => showModel(r.id) }),
        r.published ? el("span", { class: "badge", text: "published", title: r.source }) : null,
        !r.published && r.has_incomplete ? el("span", { class: "badge warn", text: "incomplete", title: r.missing || null }) : null,
        r.synthetic ? el("span", { class: "badge synthetic", text: "synthetic", title: r.synthetic }) : null,
        r.scope ? el("span", { class: "badge identity scope", text: "candidates missing", title: r.scope }) : null,
        r.unverified ? el("span", { class: "badge identity unverified", text: "unverified weights",
                                    title: r.unverified }) : null),
      el("td", { text: settingLabel(r.setting) + (r.note ? " †" : ""), title: r.note || null }),
      cols.map(c => {
        const v = c.value(r), t = tier(c, r), note = c.note(r);
        const cls = ["num", c.gstart ? "gstart" : "", ["", "incomplete", "missing"][t],
                     t === 0 && best[c.key] === v ? "best" : ""].join(" ");
        return el("td", { class: cls, "data-key": c.key, title: note,
          text: [c.digits !== undefined ? Number(v).toFixed(c.digits) : fmt(v), c.parts(r) + "*", "–"][t] });
      }))));
    const table = el("table", { class: "board", id: "board" }, el("thead", {}, head1, head2), body);
    const wrap = document.getElementById("tablewrap");
    wrap.replaceChildren(table);
    document.getElementById("rowcount").textContent = rows.length + " of " + D.rows.length + " rows";
  }

  function renderControls() {
    const seg = (name, options, current, set) => el("div", { class: "group" }, el("span", { class: "label", text: name }),
      el("div", { class: "seg", id: "filter-" + name.toLowerCase().replace(/\W+/g, "-") }, options.map(([val, label]) =>
        el("button", { class: val === current ? "active" : null, "data-value": val, text: label,
                       onclick: () => { set(val); render(); } }))));
    const types = [["all", "All (paper layout)"]].concat(D.memory_types.map(t => [t.name, t.name + " (" + t.datasets.length + ")"]));
    const settings = [["all", "Both"]].concat(Object.entries(D.settings));
    const box = el("input", { type: "checkbox", id: "show-published", checked: state.published,
                              onchange: e => { state.published = e.target.checked; render(); } });
    // replaceChildren writes a null child as the text "null": absent controls are filtered out first
    document.getElementById("controls").replaceChildren(...[
      seg("Memory type", types, state.type, v => { state.type = v; defaultSort(); }),
      seg("Setting", settings, state.setting, v => { state.setting = v; }),
      seg("Cost", [["hide", "Hide"], ["show", "Show"]], state.cost ? "show" : "hide", v => { state.cost = v === "show"; }),
      el("label", { class: "check" }, "max s/1k texts ", el("input", { type: "number", min: "0", step: "any",
        id: "max-cost", value: state.maxCost === null ? "" : state.maxCost, onchange: e => {
          const v = parseFloat(e.target.value); state.maxCost = Number.isFinite(v) ? v : null; render(); } })),
      D.rows.some(r => r.published) ? el("label", { class: "check" }, box, " show published rows") : null,
      el("span", { class: "label", id: "rowcount" })].filter(Boolean));
  }

  function render() {
    // a sort column that left the view (cost columns hidden) would leave the rows unsorted: back to the default
    if (state.sortKey !== "model" && !columns().some(c => c.key === state.sortKey)) defaultSort();
    renderControls();
    renderTable();
  }

  function kv(obj) {
    const entries = Object.entries(obj || {});
    if (!entries.length) return el("p", { class: "legend", text: "none recorded" });
    return el("dl", { class: "kv" }, entries.map(([k, v]) => [el("dt", { text: k }),
      el("dd", { text: typeof v === "object" && v !== null ? JSON.stringify(v) : String(v) })]));
  }
  function closeBtn() {
    return el("button", { class: "link close", text: "close ✕", onclick: () => document.getElementById("detail").replaceChildren() });
  }
  function showPanel(panel) {
    const d = document.getElementById("detail");
    d.replaceChildren(panel);
    d.scrollIntoView({ block: "nearest" });
  }
  /* A score per metric: the number, the "n/N*" count of an incomplete group (parts given), or "–". */
  function scoreCells(s, note, parts) {
    return D.metrics.map(m => {
      const v = s && s[m.key] !== undefined ? s[m.key] : null;
      const inc = v === null && parts;
      return el("td", { class: "num" + (inc ? " incomplete" : ""), title: note || null,
                        text: v !== null ? fmt(v) : inc ? parts + "*" : "–" });
    });
  }

  /* Drill-down for one row: per-dataset scores (click a dataset to unfold its subsets), configuration, provenance. */
  function showModel(id) {
    const r = D.rows.find(x => x.id === id);
    const panel = el("div", { class: "panel", id: "model-panel", "data-row": r.id }, closeBtn(),
      el("h2", {}, r.model, el("span", { class: "badge" + (r.published ? "" : " run"), text: r.published ? "published" : settingLabel(r.setting) })));
    if (r.published) {
      panel.append(el("p", { text: r.source + " — " + settingLabel(r.setting) + ". The paper publishes memory-type scores only, not per-dataset scores." }),
        el("h3", { text: "Model" }), kv(r.info));
      showPanel(panel);
      return;
    }
    // provenance that differs between datasets (data fingerprints, dates) gets a column per key
    const pkeys = [...new Set(Object.values(r.datasets).flatMap(x => Object.entries(x.provenance || {})
      .filter(([, v]) => v !== null && typeof v !== "object").map(([k]) => k)))].sort();  // scalars only
    const short = v => { const t = typeof v === "object" ? JSON.stringify(v) : String(v); return t.length > 22 ? t.slice(0, 21) + "…" : t; };
    const provCells = x => pkeys.map(k => { const v = x && x.provenance ? x.provenance[k] : undefined;
      return el("td", { class: "prov", title: v === undefined ? null : (typeof v === "object" ? JSON.stringify(v) : String(v)),
                        text: v === undefined ? "" : short(v) }); });
    const head = el("tr", {}, el("th", { text: "Dataset" }), el("th", { class: "num", text: "Subsets" }),
      D.metrics.map(m => el("th", { class: "num", text: m.label })), pkeys.map(k => el("th", { text: k })));
    const body = el("tbody");
    D.memory_types.forEach(t => {
      body.append(el("tr", { class: "typehead" }, el("td", { text: t.name }), el("td", { class: "num" }),
        scoreCells(r.scores[t.name], groupNote(r, t.name), groupParts(r, t.name)),
        pkeys.map(() => el("td"))));
      t.datasets.forEach(d => {
        const x = r.datasets[d];
        const subRows = [];
        const toggle = () => {
          if (subRows.length) { subRows.forEach(s => s.remove()); subRows.length = 0; return; }
          let after = row;
          Object.entries(x.subsets).forEach(([name, s]) => {
            const sr = el("tr", { class: "subset", "data-subset": name }, el("td", { text: name }), el("td"), scoreCells(s),
              pkeys.map(() => el("td")));
            after.after(sr); after = sr; subRows.push(sr);
          });
        };
        const row = el("tr", { class: "dataset", "data-dataset": d },
          el("td", {}, x ? el("button", { class: "link", text: d, onclick: toggle }) : d),
          el("td", { class: "num" + (x && !x.complete ? " incomplete" : ""), text: x ? x.done + "/" + x.total : "not run" }),
          scoreCells(x ? x.scores : null, datasetNote(r, d), datasetParts(r, d)), provCells(x));
        body.append(row);
      });
    });
    panel.append(el("div", { class: "cols" },
      el("div", {}, el("h3", { text: "Per dataset (click a dataset for its subsets)" }),
        el("table", { class: "detail", id: "model-datasets" }, el("thead", {}, head), body)),
      el("div", { class: "side" },
        el("h3", { text: "Model configuration" }), kv(r.config),
        el("h3", { text: "Provenance (same for every dataset)" }), kv(r.provenance),
        el("h3", { text: "Cost: texts, tokens, model seconds, rates, peak memory (over its datasets)" }), kv(r.efficiency),
        el("h3", { text: "Encoded / cached texts, queries, stage seconds (sum over subsets)" }), kv(r.counts))));
    showPanel(panel);
  }

  /* Drill-down for one dataset: every run row's per-subset scores. */
  function showDataset(d) {
    const rows = sortRows(visibleRows(), columns()).filter(r => !r.published && r.datasets[d]);
    const subsets = D.datasets[d].subsets;
    const m0 = D.metrics[0];
    const head = el("tr", {}, el("th", { text: "Subset" }), rows.map(r => el("th", { class: "num", text: r.model + " · " + settingLabel(r.setting) })));
    const body = el("tbody", {}, subsets.map(s => el("tr", { class: "subset-row", "data-subset": s }, el("td", { text: s }),
      rows.map(r => { const v = (r.datasets[d].subsets[s] || {})[m0.key]; return el("td", { class: "num", text: v === undefined || v === null ? "–" : fmt(v) }); }))),
      el("tr", { class: "typehead" }, el("td", { text: "Dataset (mean of subsets)" }),
        rows.map(r => scoreCells(r.datasets[d].scores, datasetNote(r, d), datasetParts(r, d))[0])));
    const panel = el("div", { class: "panel", id: "dataset-panel", "data-dataset": d }, closeBtn(),
      el("h2", {}, d, el("span", { class: "badge run", text: typeOf[d] })),
      el("h3", { text: m0.label + " per subset (" + subsets.length + " subsets)" }),
      el("table", { class: "detail" }, el("thead", {}, head), body));
    showPanel(panel);
  }

  function renderFigures() {
    const box = document.getElementById("figures");
    if (!D.figures.length) { box.remove(); return; }
    box.append(el("h2", { text: "Figures" }), el("div", { class: "figgrid" }, D.figures.map(f =>
      el("figure", {}, el("a", { href: f.file }, el("img", { src: f.file, alt: f.caption, loading: "lazy" })),
        el("figcaption", { text: f.caption })))));
  }

  document.getElementById("subtitle").textContent = D.subtitle;
  defaultSort();
  render();
  window.LMEB_PARETO(D, el, showModel);
  renderFigures();
  window.LMEB_STATE = state;  // for tests and the curious
})();
