"use strict";
// The report page: every section is drawn from the JSON in #report-data; nothing is fetched.
// The data is a run's, so it is hostile: it only ever becomes text (textContent) or an attribute
// value (setAttribute), and a src or href only when it is a relative, percent-encoded file path.
const DATA = JSON.parse(document.getElementById("report-data").textContent);
const PAGE = 50; // gallery rows added per "show more"
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];

// the URLs the report writes: "./" or "../", then percent-encoded path segments (no scheme, query or fragment)
const FILE_URL = /^(\.\/|\.\.\/)([A-Za-z0-9._~%-]+\/)*[A-Za-z0-9._~%-]+$/;
function fileUrl(value) { return typeof value === "string" && FILE_URL.test(value) ? value : null; }
function own(object, key) { // object[key] when object holds it itself ("constructor" is no cell)
  return object !== null && typeof object === "object" && Object.prototype.hasOwnProperty.call(object, key)
    ? object[key] : undefined;
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if ((key === "src" || key === "href") && fileUrl(value) === null) throw new Error(`not a file of the run: ${value}`);
    node.setAttribute(key, value);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}
function svgElement(tag, attributes) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  return node;
}
function number(value, digits) { return value === null || value === undefined ? "–" : value.toFixed(digits); }
function colourOf(method) { return COLOURS[Math.max(0, DATA.methods.indexOf(method)) % COLOURS.length]; }
function betterOf(metric) { const text = own(DATA.better, metric); return typeof text === "string" ? text : ""; }
function withBetter(metric) { const text = betterOf(metric); return text ? `${metric} (${text})` : metric; }

// ---- notes and configuration
for (const note of DATA.notes) document.getElementById("notes").appendChild(element("li", {}, note));
document.getElementById("config").textContent = JSON.stringify(DATA.config, null, 2);

// ---- summary table, sortable by any column
const SUMMARY_COLUMNS = [["method", "method"], ["metric", "metric"], ["better", "which way is better"],
  ["mean", "mean [95% interval]"], ["n", "n"],
  ["skipped", "skipped"], ["failed", "failed"], ["note", "note"]];
const summaryState = { key: "metric", ascending: true };
function drawSummary() {
  const rows = DATA.summary.slice().sort((a, b) => compare(a[summaryState.key], b[summaryState.key], summaryState.ascending));
  const body = document.querySelector("#summary tbody");
  body.replaceChildren();
  for (const row of rows) {
    const line = element("tr");
    for (const [key] of SUMMARY_COLUMNS) {
      let text = row[key];
      if (key === "mean") text = row.mean === null ? "–" : `${number(row.mean, 4)} [${number(row.low, 4)}, ${number(row.high, 4)}]`;
      line.appendChild(element("td", { class: ["mean", "n", "skipped", "failed"].includes(key) ? "num" : "" }, String(text ?? "")));
    }
    body.appendChild(line);
  }
  document.querySelectorAll("#summary th").forEach((th) => {
    th.className = th.dataset.key === summaryState.key ? (summaryState.ascending ? "sorted-asc" : "sorted-desc") : "";
  });
}
function compare(a, b, ascending) {
  const missing = (v) => v === null || v === undefined || Number.isNaN(v);
  if (missing(a) || missing(b)) return missing(a) - missing(b); // missing values last either way
  const order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
  return ascending ? order : -order;
}
const summaryHead = document.querySelector("#summary thead tr");
for (const [key, label] of SUMMARY_COLUMNS) {
  const th = element("th", { "data-key": key }, label);
  th.addEventListener("click", () => {
    summaryState.ascending = summaryState.key === key ? !summaryState.ascending : true;
    summaryState.key = key;
    drawSummary();
  });
  summaryHead.appendChild(th);
}
drawSummary();

// ---- mean deletion/insertion curves, one SVG per metric
function drawCurves() {
  const holder = document.getElementById("curves");
  const metrics = Object.keys(DATA.curves);
  if (!metrics.length) { holder.appendChild(element("p", { class: "hint" }, "No deletion or insertion records in this run.")); return; }
  const [W, H, L, B, T, R] = [430, 250, 40, 30, 10, 180];
  for (const metric of metrics) {
    const figure = element("figure", { class: "curve-figure" });
    figure.appendChild(element("figcaption", {}, betterOf(metric) ? `${metric}: AUC, ${betterOf(metric)}` : metric));
    const svg = svgElement("svg", { class: "curve", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
    const x = (f) => L + f * (W - L - R), y = (p) => T + (1 - p) * (H - T - B);
    svg.appendChild(svgElement("path", { class: "axis", d: `M${L},${T}V${H - B}H${W - R}` }));
    for (const tick of [0, 0.5, 1]) {
      const label = svgElement("text", { class: "tick", x: L - 4, y: y(tick) + 3, "text-anchor": "end" }); label.textContent = tick;
      const xlabel = svgElement("text", { class: "tick", x: x(tick), y: H - B + 12, "text-anchor": "middle" });
      xlabel.textContent = tick;
      svg.append(label, xlabel);
    }
    const caption = svgElement("text", { class: "tick", x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" });
    caption.textContent = "fraction of pixels changed";
    svg.appendChild(caption);
    Object.entries(DATA.curves[metric]).forEach(([method, curve], index) => {
      const points = curve.fractions.map((f, i) => `${x(f).toFixed(1)},${y(Math.min(1, Math.max(0, curve.scores[i]))).toFixed(1)}`);
      const line = svgElement("polyline", { points: points.join(" "), stroke: colourOf(method), "data-method": method });
      const title = svgElement("title"); title.textContent = `${method}: AUC ${curve.auc.toFixed(4)} (n=${curve.n})`;
      line.appendChild(title);
      svg.appendChild(line);
      // the legend's key: a swatch and the text, both in the curve's colour
      const [kx, ky] = [W - R + 8, T + 12 + 14 * index];
      const swatch = svgElement("line", { class: "swatch", x1: kx, x2: kx + 14, y1: ky - 4, y2: ky - 4,
        stroke: colourOf(method), "data-method": method });
      const key = svgElement("text", { class: "key", x: kx + 18, y: ky, fill: colourOf(method), "data-method": method });
      key.textContent = `${method} ${curve.auc.toFixed(3)} (n=${curve.n})`;
      svg.append(swatch, key);
    });
    figure.appendChild(svg);
    holder.appendChild(figure);
    // a long method name would run past the panel's right edge: squeeze its key into the margin
    for (const key of svg.querySelectorAll("text.key")) {
      if (key.getComputedTextLength() > R - 30) {
        key.setAttribute("textLength", R - 30);
        key.setAttribute("lengthAdjust", "spacingAndGlyphs");
      }
    }
  }
}
drawCurves();

// ---- gallery: a row per photo, a column per method; filter, sort, and rows added a page at a time
const metricNames = [...new Set(DATA.images.flatMap((im) => Object.values(im.c).flatMap((c) => Object.keys(c.v))))].sort();
const classes = [...new Set(DATA.images.map((im) => im.l))].sort();
const shownMethods = new Set(DATA.methods);
const state = { className: "", metric: metricNames[0] || "", sort: "name", a: DATA.methods[0] || "",
  b: DATA.methods[1] || DATA.methods[0] || "", order: "desc", limit: PAGE };
function options(select, values, labels, chosen) {
  select.replaceChildren();
  values.forEach((value, i) => {
    const option = element("option", { value }, labels ? labels[i] : value);
    if (value === chosen) option.selected = true;
    select.appendChild(option);
  });
}
options(document.getElementById("f-class"), [""].concat(classes), ["all classes"].concat(classes), "");
options(document.getElementById("f-metric"), metricNames, metricNames.map(withBetter), state.metric);
options(document.getElementById("f-a"), DATA.methods, null, state.a);
options(document.getElementById("f-b"), DATA.methods, null, state.b);
for (const method of DATA.methods) {
  const box = element("input", { type: "checkbox", value: method, "data-method": method });
  box.checked = true;
  box.addEventListener("change", () => { box.checked ? shownMethods.add(method) : shownMethods.delete(method); drawGallery(); });
  const label = element("label", {}); label.append(box, " " + method);
  document.getElementById("f-methods").appendChild(label);
}
const controls = { "f-class": "className", "f-metric": "metric", "f-sort": "sort", "f-a": "a", "f-b": "b", "f-order": "order" };
for (const [id, key] of Object.entries(controls)) {
  document.getElementById(id).addEventListener("change", (event) => { state[key] = event.target.value; state.limit = PAGE; drawGallery(); });
}
document.getElementById("g-more").addEventListener("click", () => { state.limit += PAGE; appendRows(); });

function valueOf(image, method) {
  const cell = own(image.c, method);
  const value = cell ? own(cell.v, state.metric) : undefined;
  return typeof value === "number" ? value : null;
}
function sortKey(image) {
  if (state.sort === "value") return valueOf(image, state.a);
  if (state.sort === "difference") {
    const a = valueOf(image, state.a), b = valueOf(image, state.b);
    return a === null || b === null ? null : Math.abs(a - b);
  }
  return image.n;
}
function chosenImages() {
  const chosen = DATA.images.filter((im) => !state.className || im.l === state.className);
  const ascending = state.sort === "name" || state.order === "asc";
  return chosen.map((im) => [sortKey(im), im]).sort((p, q) => compare(p[0], q[0], ascending)).map((pair) => pair[1]);
}
function drawCell(image, method) {
  const td = element("td", { "data-method": method });
  const cell = own(image.c, method);
  if (!cell) { td.appendChild(element("div", { class: "missing" }, "not run")); return td; }
  if (fileUrl(cell.t)) {
    const picture = element("img", { src: cell.t, loading: "lazy", alt: `${method} on ${image.n}`, title: cell.k || "" });
    if (fileUrl(cell.f)) {
      const link = element("a", { href: cell.f, target: "_blank", rel: "noopener noreferrer" });
      link.appendChild(picture);
      td.appendChild(link);
    } else td.appendChild(picture);
  } else {
    td.appendChild(element("div", { class: "missing" }, cell.x || "map not kept"));
  }
  if (cell.k) td.appendChild(element("div", { class: "caption" }, cell.k));
  for (const [metric, value] of Object.entries(cell.v)) {
    td.appendChild(element("div", { class: metric === state.metric ? "chosen" : "" }, `${metric}: ${number(value, 4)}`));
  }
  if (cell.s !== "ok") td.appendChild(element("div", { class: cell.s }, `${cell.s}: ${cell.r || ""}`));
  return td;
}
let listed = [], drawn = 0; // the filtered, sorted photos, and how many rows of them are on the page
function drawGallery() {
  const methods = DATA.methods.filter((m) => shownMethods.has(m));
  const head = document.querySelector("#gallery thead tr");
  head.replaceChildren(element("th", {}, "photo"), ...methods.map((m) => element("th", { "data-method": m }, m)));
  listed = chosenImages();
  drawn = 0;
  document.querySelector("#gallery tbody").replaceChildren();
  appendRows();
}
function appendRows() { // rows are added, never redrawn, as "show more" grows the page
  const methods = DATA.methods.filter((m) => shownMethods.has(m));
  const body = document.querySelector("#gallery tbody");
  const rows = document.createDocumentFragment();
  for (const image of listed.slice(drawn, state.limit)) {
    const row = element("tr", { "data-image": image.n });
    const first = element("td", { class: "photo" });
    first.append(element("b", {}, image.n), element("div", {}, image.l || "(no class)"));
    if (state.sort !== "name") first.appendChild(element("div", { class: "chosen" }, `sort key: ${number(sortKey(image), 4)}`));
    row.appendChild(first);
    for (const method of methods) row.appendChild(drawCell(image, method));
    rows.appendChild(row);
  }
  body.appendChild(rows);
  drawn = Math.min(state.limit, listed.length);
  document.getElementById("g-count").textContent = `${drawn} of ${listed.length} photos shown (${DATA.images.length} in the run)`;
  document.getElementById("g-more").hidden = drawn >= listed.length;
}
if (!DATA.images.some((im) => Object.values(im.c).some((c) => c.t))) document.getElementById("gallery").classList.add("no-maps");
drawGallery();

// ---- failed and skipped items, grouped by their reason
function drawProblems() {
  const groups = new Map();
  for (const p of DATA.problems) {
    const key = [p.status, p.method, p.metric, p.reason].join("\u0000");
    if (!groups.has(key)) groups.set(key, { ...p, images: [] });
    groups.get(key).images.push(p.image);
  }
  const body = document.querySelector("#problems tbody");
  for (const g of groups.values()) {
    const row = element("tr");
    const listed = g.images.slice(0, 8).join(", ") + (g.images.length > 8 ? `, … (${g.images.length - 8} more)` : "");
    for (const text of [g.status, g.method, g.metric, g.reason || "", String(g.images.length), listed]) row.appendChild(element("td", {}, text));
    body.appendChild(row);
  }
  document.getElementById("p-count").textContent = DATA.problems.length
    ? `${DATA.problems.length} records failed or were skipped, in ${groups.size} groups.` : "None: every record was scored.";
}
drawProblems();
