// The inspector panel: engines, scripts (with reload buttons), calls, memory
// over time, output and errors, redrawn from each "inspector" push.
// Everything a script produced is set as text, never parsed as HTML.
"use strict";
const COLORS = {lua: "#2a5db0", javascript: "#c9a400", python: "#3a7", wren: "#a3c", lisp: "#d55"};
const FALLBACK_COLORS = ["#555", "#08a", "#a60", "#6a0", "#a06"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "className") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("data")) node.dataset[k.slice(4, 5).toLowerCase() + k.slice(5)] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}
function bytes(n) {
  if (n === null || n === undefined) return "-";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}
function micros(us) { return us >= 1000 ? (us / 1000).toFixed(2) + " ms" : us.toFixed(1) + " µs"; }
function where(e) { return e.file ? [e.file, e.line, e.column].filter((x) => x !== null && x !== undefined).join(":") : ""; }
function colorOf(lang, i) { return COLORS[lang] || FALLBACK_COLORS[i % FALLBACK_COLORS.length]; }
function fill(tbody, rows) { tbody.replaceChildren(...rows); }

function showEngines(engines) {
  fill(document.querySelector("#k-engines tbody"), engines.map((e) => el("tr", {dataLanguage: e.language},
    el("td", {text: e.language}),
    el("td", {text: e.started ? e.version : "not started"}),
    el("td", {className: "num", text: e.started ? bytes(e.memory_bytes) + (e.memory_limit ? " / " + bytes(e.memory_limit) : "") : "-"}),
    el("td", {text: (e.capabilities || []).join(", ")}))));
}

const reloadResults = {};
function showScripts(scripts, skipped) {
  fill(document.querySelector("#k-scripts tbody"), scripts.map((s) => {
    const button = el("button", {className: "k-reload", type: "button", text: "reload", title: "reload " + (s.file || s.id) + " from disk"});
    button.addEventListener("click", () => reload(s.id));
    const result = el("span", {className: "k-reload-result", text: reloadResults[s.id] || ""});
    return el("tr", {dataScript: s.id},
      el("td", {title: s.file || ""}, el("span", {className: "k-mono", text: s.id})),
      el("td", {text: s.language}),
      el("td", {className: s.policy.startsWith("sandboxed") ? "k-policy-sandboxed" : "k-policy-trusted", text: s.policy}),
      el("td", {className: "num reloads", text: String(s.reloads)}),
      el("td", {}, button, result));
  }));
  document.getElementById("k-skipped").textContent = skipped.length ? "skipped: " + skipped.join("; ") : "";
}
function reload(id) {
  reloadResults[id] = "reloading...";
  post("/reload", {script: id}).then((r) => r.json()).then((answer) => {
    reloadResults[id] = answer.ok ? "reloaded" : "failed: old version kept";
    refresh();
  });
}

function showFunctions(functions) {
  fill(document.querySelector("#k-functions tbody"), functions.map((f) => el("tr", {dataFunction: f.name, className: f.hot ? "hot" : ""},
    el("td", {}, el("span", {className: "k-mono", text: f.name + " "}), f.hot ? el("span", {className: "k-hot", text: "hot"}) : ""),
    el("td", {className: "num calls", text: String(f.calls)}),
    el("td", {className: "num mean", text: micros(f.mean_us)}),
    el("td", {className: "num", text: micros(f.max_us)}),
    el("td", {className: "num", text: String(f.errors)}))));
}

// Memory: one line per engine over the sampled window (at least 10 s wide, so a
// young app's first samples spread out), scaled to the largest sample.
function showMemory(memory, now) {
  const svg = document.getElementById("k-memory-chart");
  const langs = Object.keys(memory).sort();
  const all = langs.flatMap((l) => memory[l]);
  const span = Math.max(10, now - Math.min(now, ...all.map((s) => s[0])));
  const top = Math.max(1, ...all.map((s) => s[1]));
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren(...langs.map((lang, i) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", memory[lang].map(([t, b]) =>
      `${(300 * (1 - (now - t) / span)).toFixed(1)},${(88 - 84 * b / top).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", colorOf(lang, i)); line.setAttribute("stroke-width", "1.5");
    line.dataset.language = lang; line.dataset.samples = memory[lang].length;
    return line;
  }));
  fill(document.getElementById("k-memory-legend"), langs.map((lang, i) => {
    const last = memory[lang][memory[lang].length - 1];
    const swatch = el("i"); swatch.style.background = colorOf(lang, i);
    return el("li", {dataLanguage: lang}, swatch, lang + " " + bytes(last ? last[1] : null));
  }));
}

function showOutput(lines) {
  const list = document.getElementById("k-output-lines");
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  fill(list, lines.map((o) => el("li", {}, el("span", {className: "k-source", text: o.source}), o.text)));
  if (atEnd) list.scrollTop = list.scrollHeight;
}

function showErrors(errors) {
  fill(document.getElementById("k-error-list"), errors.slice().reverse().map((e) => {
    const item = el("li", {}, el("span", {className: "k-where", text: where(e) ? where(e) + ": " : ""}),
                    (e.language ? "[" + e.language + "] " : "") + e.message);
    if (e.summary && e.summary !== e.message) item.title = e.summary;
    if (e.stack && e.stack.length) {
      item.append(el("details", {}, el("summary", {text: "stack (" + e.stack.length + " frames)"}),
        ...e.stack.slice(0, 50).map((f) => el("div", {text: "at " + (where(f) || "?") + " in " + f.function}))));
    }
    return item;
  }));
}

function showInspector(data) {
  showEngines(data.engines);
  showScripts(data.scripts, data.skipped);
  showFunctions(data.functions);
  showMemory(data.memory, data.time);
  showOutput(data.output);
  showErrors(data.errors);
  document.getElementById("k-inspector").dataset.updated = data.time;
}
function refresh() { return fetch("/inspector").then((r) => r.json()).then(showInspector); }
const status = document.getElementById("k-status");
events.addEventListener("inspector", (m) => { status.textContent = "live"; status.className = "live"; showInspector(JSON.parse(m.data)); });
events.addEventListener("error", () => { status.textContent = "reconnecting"; status.className = ""; });
refresh();
