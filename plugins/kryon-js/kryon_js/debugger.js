// The debugger's side of a script loaded in debug mode (see probes.py and
// debugging.py). It defines the probes the rewritten source calls, keeps the
// stack of probed frames (each entry: the frame's identity, its last probe,
// its last evaluator), and answers the host's questions while the script's
// thread is stopped. Values go to the host as JSON text; nothing here hands
// the script a host function.
(function () {
  "use strict";
  const G = globalThis;
  const LINE = G.__kryon_dbgline, SYNC = G.__kryon_dbgsync, RAISED = G.__kryon_dbgraised;
  delete G.__kryon_dbgline; delete G.__kryon_dbgsync; delete G.__kryon_dbgraised;
  const stringify = JSON.stringify, parse = JSON.parse, isArray = Array.isArray;
  const getOwnDesc = Object.getOwnPropertyDescriptor, ownNames = Object.getOwnPropertyNames;
  const getProto = Object.getPrototypeOf, defineProperty = Object.defineProperty;
  const MapC = Map, SetC = Set, SyntaxErrorC = SyntaxError, ErrorC = Error, call = Function.prototype.call;
  const mapEntries = call.bind(Map.prototype.entries), setValues = call.bind(Set.prototype.values);
  const mapSize = call.bind(getOwnDesc(Map.prototype, "size").get);
  const setSize = call.bind(getOwnDesc(Set.prototype, "size").get);
  const symToString = call.bind(Symbol.prototype.toString), fnToString = call.bind(Function.prototype.toString);
  const S = [], I = [], E = [];  // frames (null marks where a host entry began), last probe ids, evaluators
  const R = [];                  // structured values shown while stopped (their refs are indexes + 1)
  const POLL = 256;              // probes between two polls of the host for a changed wish
  const NONE = {};
  let mode = 0, B = [], gen = -1, count = 0, reported = NONE;

  function apply(wish) {  // "generation;mode;id,id,..."
    const parts = wish.split(";");
    gen = +parts[0]; mode = +parts[1];
    B = [];
    if (parts[2]) for (const id of parts[2].split(",")) B[+id] = 1;
  }

  function sync() {
    const wish = SYNC(gen);   // "" when unchanged
    if (wish) apply(wish);
  }

  function base() {
    let k = S.length - 1;
    while (k >= 0 && S[k] !== null) k--;
    return k + 1;
  }

  // Frames are unique per call, so a frame found anywhere on the stack is the running one: whatever is
  // above it has returned (a host entry that ended, a suspended generator); a frame not found is new.
  function probe(f, id, ev) {
    let n = S.length;
    if (n === 0 || S[n - 1] !== f) {
      let k = n - 1;
      while (k >= 0 && S[k] !== f) k--;
      n = k >= 0 ? k + 1 : n + 1;
      S.length = I.length = E.length = n;
      S[n - 1] = f;
    }
    I[n - 1] = id; E[n - 1] = ev;
    if (reported !== NONE) reported = NONE;  // a statement ran: a throw from here on is a new raise
    if (--count <= 0) { count = POLL; sync(); }
    if (mode === 2 || (mode === 1 && B[id] === 1)) {
      try { LINE(id, n - base()); } finally { R.length = 0; }
      sync();  // the debugger's answer (go on, step) applies from the next statement
    }
  }

  function exit(f) {
    let k = S.length - 1;
    while (k >= 0 && S[k] !== f) k--;
    if (k >= 0) S.length = I.length = E.length = k;
  }

  // an error passing a function's end or a catch clause: reported once, while its frames are still here
  function raised(f, x) {
    if (x === reported || mode === 0) return;
    reported = x;
    let name = "Error", message = "", stack = "";
    const data = (k) => { try { const d = getOwnDesc(x, k); return d && "value" in d ? String(d.value) : ""; } catch (_) { return ""; } };
    if (typeof x === "object" && x !== null) {
      message = data("message");
      if (x instanceof ErrorC) { try { stack = String(x.stack || ""); } catch (_) { /* no position */ } }
      try { name = className(x); } catch (_) { /* shown as Error */ }
    } else {
      name = "thrown value"; message = short(x);
    }
    const n = S.length;
    try { RAISED(stringify([name, message, stack, n - base()])); } finally { R.length = 0; }
    sync();
  }

  defineProperty(G, "__kryon_dbt", { value: raised, writable: false, enumerable: false, configurable: false });
  defineProperty(G, "__kryon_dbg", { value: probe, writable: false, enumerable: false, configurable: false });
  defineProperty(G, "__kryon_dbx", { value: exit, writable: false, enumerable: false, configurable: false });

  // -- shown values -------------------------------------------------------------------
  function className(v) {
    try {
      const proto = getProto(v);
      if (proto === null) return "Object";
      const d = getOwnDesc(proto, "constructor");
      const c = d && d.value;
      const name = typeof c === "function" ? getOwnDesc(c, "name") : undefined;
      return name && typeof name.value === "string" && name.value ? name.value : "Object";
    } catch (_) { return "Object"; }
  }

  function short(v) {
    const t = typeof v;
    if (v === null) return "null";
    if (t === "string") return stringify(v.length > 200 ? v.slice(0, 200) + "…" : v);
    if (t === "bigint") return String(v) + "n";
    if (t === "symbol") return symToString(v);
    if (t === "function") return "ƒ " + (getOwnDesc(v, "name") || {}).value + "()";
    if (t === "object") return isArray(v) ? "Array(" + v.length + ")" : className(v);
    return String(v);
  }

  function entry(name, v) {
    const t = typeof v;
    let text = short(v), type = v === null ? "null" : t, ref = 0, count = null;
    if (t === "object" && v !== null) {
      R.push(v); ref = R.length;
      if (isArray(v)) {
        type = "Array"; count = v.length;
        const shown = [];
        for (let i = 0; i < v.length && i < 10; i++) {
          const d = getOwnDesc(v, i);
          const x = d ? d.value : undefined;
          shown.push(typeof x === "object" && x !== null ? (isArray(x) ? "[…]" : "{…}") : short(x));
        }
        text = "[" + shown.join(", ") + (v.length > 10 ? ", …" : "") + "]";
      } else if (v instanceof MapC) {
        type = "Map"; count = mapSize(v); text = "Map(" + count + ")";
      } else if (v instanceof SetC) {
        type = "Set"; count = setSize(v); text = "Set(" + count + ")";
      } else {
        type = className(v); text = type + " {…}";
      }
    }
    return { n: name, v: text, t: type, r: ref, c: count };
  }

  function children(v) {
    const out = [];
    if (v instanceof MapC) {
      for (const [k, x] of mapEntries(v)) { out.push(entry(short(k), x)); if (out.length >= 1000) break; }
      return out;
    }
    if (v instanceof SetC) {
      let i = 0;
      for (const x of setValues(v)) { out.push(entry(String(i++), x)); if (out.length >= 1000) break; }
      return out;
    }
    for (const k of ownNames(v)) {
      if (isArray(v) && k === "length") continue;
      const d = getOwnDesc(v, k);
      if (!d) continue;
      out.push("value" in d ? entry(k, d.value) : { n: k, v: "<accessor>", t: "accessor", r: 0, c: null });
      if (out.length >= 1000) break;
    }
    const proto = getProto(v);
    if (proto !== null && proto !== Object.prototype && proto !== Array.prototype) out.push(entry("[[Prototype]]", proto));
    return out;
  }

  const fail = (e) => { try { return String(e); } catch (_) { return "error"; } };

  const API = {
    // a host entry, ``level`` entries deep into this script on this thread (entries above it ended)
    enter(level, wish) {
      let k = 0, seen = 0;
      for (; k < S.length; k++) if (S[k] === null && seen++ === level) break;
      S.length = I.length = E.length = k;
      S.push(null); I.push(0); E.push(null);
      if (wish) apply(wish);
    },
    frames() {  // [[[stack index, probe id], ...] per host entry, innermost first]
      const out = []; let group = [];
      for (let k = S.length - 1; k >= 0; k--) {
        if (S[k] === null) { out.push(group); group = []; } else group.push([k, I[k]]);
      }
      out.push(group);
      return stringify(out);
    },
    scope(k, names) {
      const ev = E[k], out = [];
      for (const name of parse(names)) {
        let v;
        try { v = ev(name); } catch (_) { continue; }  // not initialized yet (a let before its line)
        out.push(entry(name, v));
      }
      return stringify(out);
    },
    children(ref) { const v = R[ref - 1]; return stringify(v === undefined ? [] : children(v)); },
    evaluate(k, expression) {
      try { return stringify({ ok: true, entry: entry("result", E[k]("(" + expression + "\n)")) }); }
      catch (e) {
        if (!(e instanceof SyntaxErrorC)) return stringify({ ok: false, error: fail(e) });
        try { return stringify({ ok: true, entry: entry("result", E[k](expression)) }); }  // a statement
        catch (_) { return stringify({ ok: false, error: fail(e) }); }
      }
    },
  };
  return (name) => API[name];
})()
