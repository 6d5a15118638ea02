// The Kryon prelude: runs in every script's QuickJS context before the
// script. It captures the host entry points (then removes them from the
// global object), defines the frozen `kryon` object (also `window.kryon`),
// console/print, timers and `require`, and returns `internal`, the one
// function the Python side uses to fetch its helpers. User code runs after
// this and cannot reach anything here but `kryon` and the globals below.
(function () {
  "use strict";
  const G = globalThis;
  const HOST = G.__kryon_host, INVOKE = G.__kryon_invoke, STASH = G.__kryon_stash,
        HOSTERR = G.__kryon_hosterr, OUT = G.__kryon_out, TICK = G.__kryon_tick, MARK = G.__kryon_mark,
        COMPILE = G.__kryon_compile, KCALL = G.__kryon_kcall, ROOM_FREE = G.__kryon_room;
  const CONF = JSON.parse(G.__KRYON_CONF__);        // {guard: the script runs under a time limit, maxSource, room}
  for (const k of ["__kryon_host", "__kryon_invoke", "__kryon_stash", "__kryon_hosterr", "__kryon_out", "__kryon_tick",
                   "__kryon_mark", "__kryon_compile", "__kryon_kcall", "__kryon_room", "__KRYON_CONF__"]) delete G[k];
  // QuickJS's compiler crashes the process when an allocation is refused midway (a parse just under the
  // memory limit): under a limit, every compile at run time first asks the host for room, 64 KiB plus 16
  // bytes a source unit, and fails as out of memory (MemoryLimitError uncaught) when there is none
  const RoomErrorC = G.InternalError;
  function room(units) {
    if (CONF.room && !ROOM_FREE(65536 + 16 * units)) throw new RoomErrorC("out of memory");
  }
  const API = JSON.parse(G.__KRYON_API__);          // [[camelName, index, min arity, max arity (-1: any)], ...]
  const AP = Array.prototype, getOwnDesc = Object.getOwnPropertyDescriptor;
  const apply = Reflect.apply, isArray = Array.isArray, keys = Object.keys, freeze = Object.freeze;
  const create = Object.create, getProto = Object.getPrototypeOf, defineProperty = Object.defineProperty;
  const stringify = JSON.stringify, parse = JSON.parse, geval = eval, Fn = Function;
  const isSafeInteger = Number.isSafeInteger, isInteger = Number.isInteger;
  const call = Fn.prototype.call;
  const isWF = call.bind(String.prototype.isWellFormed), indexOf = call.bind(String.prototype.indexOf);
  const fnToString = call.bind(Fn.prototype.toString), errStack = (e) => { try { return String(e.stack || ""); } catch (_) { return ""; } };
  const PromiseC = Promise, then = call.bind(Promise.prototype.then);
  const isView = ArrayBuffer.isView, U8 = Uint8Array, ABuf = ArrayBuffer;
  const MapC = Map, SetC = Set, DateC = Date, ErrorC = Error, WeakMapC = WeakMap, WeakSetC = WeakSet;
  const T = "\u0001k";
  const objToString = call.bind(Object.prototype.toString), parseIntC = parseInt;
  const BOX = freeze(create(null)), ERR = freeze(create(null));
  const baseline = create(null); for (const n of Object.getOwnPropertyNames(G)) baseline[n] = 1;
  const AsyncFn = getProto(async function () {}).constructor, GenFn = getProto(function* () {}).constructor,
        AsyncGenFn = getProto(async function* () {}).constructor;

  // -- registries -----------------------------------------------------------
  const fns = new MapC(), fnIds = new WeakMapC(); let nextFn = 1;   // script functions the host holds
  const pyFns = new MapC(), pyIds = new WeakMapC();                  // host callables as JS functions
  const handles = new MapC(), handleIds = new WeakMapC();            // host UserData handles
  const promises = new MapC(); let nextPromise = 1;
  const convErrors = new WeakSetC(), sizeErrors = new WeakSetC(), hostErrIds = new WeakMapC();
  const HandleProto = freeze(create(null, { toString: { value: function () { return "[" + (handleLabels.get(this) || "KryonHandle") + "]"; } } }));
  const handleLabels = new WeakMapC();

  function convErr(msg) { const e = new TypeError(msg); convErrors.add(e); return e; }
  function safeStr(s) { return indexOf(s, "\0") < 0 && isWF(s); }

  function regFn(f) {
    let id = fnIds.get(f);
    if (id === undefined) { id = nextFn++; fnIds.set(f, id); fns.set(id, f); }
    else if (!fns.has(id)) fns.set(id, f);
    return id;
  }
  function hex(bytes) { let s = ""; for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); return s; }
  function unhex(s) { const b = new U8(s.length >> 1); for (let i = 0; i < b.length; i++) b[i] = parseIntC(s.substr(2 * i, 2), 16); return b; }

  // -- JS value -> JSON text with tags (the host decodes it) ----------------
  function enc(v, seen, depth) {
    switch (typeof v) {
      case "number":
        if (v !== v || v === Infinity || v === -Infinity || (v === 0 && 1 / v < 0)) return { [T]: "n", v: String(v) };
        if (isInteger(v) && !isSafeInteger(v)) return { [T]: "F", v: String(v) };
        return v;
      case "string": case "boolean": return v;
      case "undefined": return null;
      case "bigint": return { [T]: "b", v: String(v) };
      case "symbol": throw convErr("a Symbol cannot cross to the host");
      case "function": {
        const pid = pyIds.get(v);
        if (pid !== undefined) return { [T]: "p", i: pid };
        let name = ""; try { name = String(v.name || ""); } catch (_) {}
        return { [T]: "f", i: regFn(v), n: name };
      }
    }
    if (v === null) return null;
    const hid = handleIds.get(v);
    if (hid !== undefined) return { [T]: "h", i: hid };
    if (depth > 200) throw convErr("a value nested deeper than 200 levels cannot cross to the host");
    if (seen.has(v)) throw convErr("a cyclic value cannot cross to the host");
    seen.add(v);
    try {
      if (isArray(v)) {
        const n = v.length, out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = enc(v[i], seen, depth + 1);
        return out;
      }
      if (isView(v)) return { [T]: "y", v: hex(new U8(v.buffer, v.byteOffset, v.byteLength)) };
      if (v instanceof ABuf) return { [T]: "y", v: hex(new U8(v)) };
      if (v instanceof PromiseC) throw convErr("a Promise cannot cross to the host inside a value; await it first");
      if (v instanceof DateC) { const t = v.getTime(); return t === t ? v.toISOString() : null; }
      if (v instanceof MapC) { const o = create(null); for (const [k, x] of v) o[String(k)] = enc(x, seen, depth + 1); return o; }
      if (v instanceof SetC) { const o = []; for (const x of v) o.push(enc(x, seen, depth + 1)); return o; }
      if (v instanceof ErrorC) return { name: String(v.name), message: String(v.message), stack: errStack(v) };
      const o = create(null), ks = keys(v);
      for (let i = 0; i < ks.length; i++) o[ks[i]] = enc(v[ks[i]], seen, depth + 1);
      return o;
    } finally { seen.delete(v); }
  }
  function encode(v) { return stringify(enc(v, new SetC(), 0)); }

  // -- JSON text with tags -> JS value ----------------------------------------
  // handles and host functions are held weakly here: the host frees its side
  // of those the script dropped (see sweep below)
  const WeakRefC = WeakRef, deref = call.bind(WeakRef.prototype.deref);
  function makeHandle(id, label) {
    if (id <= 0x7fffffff) id |= 0;   // ids come from JSON as doubles: as int32s they reach the host as ints
    const ref = handles.get(id);
    let h = ref === undefined ? undefined : deref(ref);
    if (h === undefined) { h = freeze(create(HandleProto)); handles.set(id, new WeakRefC(h)); handleIds.set(h, id); handleLabels.set(h, label || "KryonHandle"); }
    return h;
  }
  function makePyFn(pid, name) {
    const ref = pyFns.get(pid);
    let f = ref === undefined ? undefined : deref(ref);
    if (f === undefined) {
      f = function () { return callPy(pid, arguments); };
      try { defineProperty(f, "name", { value: name || "hostFunction" }); } catch (_) {}
      pyFns.set(pid, new WeakRefC(f)); pyIds.set(f, pid);
    }
    return f;
  }
  function sweep() {
    const dead = [[], []];
    for (const [pid, ref] of pyFns) if (deref(ref) === undefined) { pyFns.delete(pid); dead[0].push(pid); }
    for (const [id, ref] of handles) if (deref(ref) === undefined) { handles.delete(id); dead[1].push(id); }
    return stringify(dead);
  }
  function revive(v) {
    if (v === null || typeof v !== "object") return v;
    if (isArray(v)) { for (let i = 0; i < v.length; i++) v[i] = revive(v[i]); return v; }
    const tag = v[T];
    if (tag !== undefined) {
      switch (tag) {
        case "n": return Number(v.v);
        case "h": return makeHandle(v.i, v.t);
        case "f": { const f = fns.get(v.i); if (f === undefined) throw new Error("script function was released"); return f; }
        case "p": return makePyFn(v.i, v.n);
        case "y": return unhex(v.v);
      }
    }
    for (const k of keys(v)) v[k] = revive(v[k]);
    return v;
  }
  function importText(text) { return revive(parse(text)); }

  // -- results and errors back to the host ----------------------------------
  function done(r) {
    if (r instanceof PromiseC || (r !== null && typeof r === "object" && typeof r.then === "function")) {
      const id = nextPromise++;
      const slot = { state: 0, value: undefined };
      promises.set(id, slot);
      then(PromiseC.resolve(r), (x) => { slot.state = 1; slot.value = x; }, (e) => { slot.state = 2; slot.value = e; });
      STASH(2, String(id));
      return BOX;
    }
    if (r !== null && typeof r === "object" && objToString(r) === "[object Generator]") {
      const items = []; for (const x of r) { items.push(x); if (items.length > 1000000) throw convErr("a generator yielded more than 1000000 values"); }
      r = items;
    }
    STASH(0, encode(r));
    return BOX;
  }
  function errInfo(e) {
    const info = { isError: false, name: "", message: "", stack: "", conv: false, size: false, host: 0, value: null };
    try {
      if (e instanceof ErrorC) {
        info.isError = true; info.name = String(e.name); info.message = String(e.message); info.stack = errStack(e);
        info.conv = convErrors.has(e); info.size = sizeErrors.has(e); info.host = hostErrIds.get(e) || 0;
      } else {
        try { info.value = enc(e, new SetC(), 0); } catch (_) { info.value = null; }
        try { info.message = String(e); } catch (_) { info.message = "a value"; }
      }
    } catch (_) {}
    return info;
  }
  function fail(e) { STASH(1, stringify(errInfo(e))); return BOX; }

  // callers of arity n: (f) => function (a0, ..., an-1) {...}
  const factories = [];
  function caller(f, n) {
    let make = factories[n];
    if (make === undefined) {
      const params = []; for (let i = 0; i < n; i++) params.push("a" + i);
      const p = params.join(",");
      room(400 + 8 * n);
      make = factories[n] = Fn("isWF", "indexOf", "done", "fail",
        "return function (f) { return function (" + p + ") { try { const r = f(" + p + "); const t = typeof r;" +
        " if (t === 'number' || t === 'boolean' || r === undefined || r === null) return r;" +
        " if (t === 'string' && indexOf(r, '\\0') < 0 && isWF(r)) return r; return done(r); } catch (e) { return fail(e); } }; };")(isWF, indexOf, done, fail);
    }
    const w = make(f);
    targets.set(w, f);
    return w;
  }
  const targets = new WeakMapC();   // each caller wrapper's function (the host's compiled caller calls it directly)

  // -- calls into the host ----------------------------------------------------
  const boxes = new WeakSetC();
  function ret(r) {
    if (r !== null && typeof r === "object" && boxes.has(r)) return r.v;
    if (r === ERR) {
      const info = parse(HOSTERR());
      const e = new ErrorC(info[1]); e.name = info[0]; hostErrIds.set(e, info[2]);
      throw e;
    }
    return r;
  }
  // host calls: plain scalars go as they are; handles go as their id with a bit set in a mask
  // (the host looks them up); anything else sends the whole argument list as tagged JSON
  function plainArgs(args) {
    for (let i = 0; i < args.length; i++) {
      const v = args[i], t = typeof v;
      if (t === "string") { if (!safeStr(v)) return false; }
      else if (!(t === "number" || t === "boolean" || v === undefined || v === null)) return false;   // a BigInt as JSON
    }
    return true;
  }
  // the last string found safe: a script passes the same names (a kryon.call target, an element id)
  // over and over, and comparing with it costs less than the two builtin calls of safeStr
  let lastSafe = "";
  function callHost(idx, args) {   // args: a fresh array of ours (rest parameters)
    // one pass, written out (each JS call costs here): plain scalars go as they are; a handle goes
    // as its id with bit i set in a mask; anything else sends the whole argument list as tagged JSON
    let mask = 0;
    const n = args.length;
    for (let i = 0; i < n; i++) {
      const v = args[i], t = typeof v;
      if (t === "string") {
        if (v !== lastSafe) { if (!safeStr(v)) return ret(HOST(idx, encode(args))); lastSafe = v; }
      } else if (t === "object") {
        if (v !== null) { if (i > 29 || !handleIds.has(v)) return ret(HOST(idx, encode(args))); mask |= 1 << i; }
      } else if (t === "function" || t === "symbol" || t === "bigint") return ret(HOST(idx, encode(args)));   // the binding takes no BigInt
    }
    if (mask) for (let i = 0; i < n; i++) if (mask & (1 << i)) args[i] = handleIds.get(args[i]);
    let r;
    switch (n) {
      case 0: r = HOST(idx, mask); break;
      case 1: r = HOST(idx, mask, args[0]); break;
      case 2: r = HOST(idx, mask, args[0], args[1]); break;
      case 3: r = HOST(idx, mask, args[0], args[1], args[2]); break;
      default: args.unshift(idx, mask); r = apply(HOST, undefined, args);
    }
    return typeof r !== "object" || r === null ? r : ret(r);   // ret's scalar case, written out
  }
  function callPy(pid, args) {
    if (plainArgs(args)) { const a = [pid, null]; for (let i = 0; i < args.length; i++) a.push(args[i]); return ret(apply(INVOKE, undefined, a)); }
    return ret(INVOKE(pid, encode(Array.prototype.slice.call(args))));
  }

  // The element methods (kryon.setProperty(element, name, scalar) is the UI's hot call; the host names them,
  // bridge.ELEMENT_METHODS): called with a handle or an element id, a string and at most one scalar that cross
  // as they are, they go to their own host entry (`element`, inbound.element_call) with a handle's id,
  // skipping callHost's scan; anything else takes callHost
  let lastId = "";   // as lastSafe, for the element ids given to the element methods
  function elementMethod(name, element, idx, lo, hi) {   // (a wrong number of arguments takes callHost, which says so)
    if (lo === 3 && hi === 3) return { [name]: function (...args) {   // setProperty: the same, its tests folded
      if (args.length === 3) {
        const e = args[0], a = args[1], v = args[2], t = typeof v;
        let hid = handleIds.get(e);
        if (hid === undefined && typeof e === "string" && (e === lastId || safeStr(e))) hid = lastId = e;
        if (hid !== undefined && typeof a === "string" && (a === lastSafe || safeStr(a)) &&
            (t === "number" || t === "boolean" || v === undefined || v === null || (t === "string" && safeStr(v)))) {
          lastSafe = a;
          const r = element(hid, a, v);
          return typeof r !== "object" || r === null ? r : ret(r);
        }
      }
      return callHost(idx, args);
    } }[name];
    const two = lo <= 2 && hi >= 2, three = lo <= 3 && hi >= 3;
    return { [name]: function (...args) {
      const n = args.length;
      if (n === 2 ? two : n === 3 && three) {
        const e = args[0], a = args[1];
        let hid = handleIds.get(e);
        if (hid === undefined && typeof e === "string" && (e === lastId || safeStr(e))) hid = lastId = e;   // an element id
        if (hid !== undefined && typeof a === "string" && (a === lastSafe || safeStr(a))) {
          let r;
          if (n === 2) r = element(hid, a);
          else {
            const v = args[2], t = typeof v;
            if (!(t === "number" || t === "boolean" || v === undefined || v === null || (t === "string" && safeStr(v))))
              return callHost(idx, args);
            r = element(hid, a, v);
          }
          lastSafe = a;
          return typeof r !== "object" || r === null ? r : ret(r);
        }
      }
      return callHost(idx, args);
    } }[name];
  }

  // kryon.call(name, ...args) with at most three arguments, each a scalar that crosses as it is, goes to its
  // own host entry (KCALL, inbound.routed_call, bound to the script's bridge view: straight to the script's
  // cached route), skipping callHost's scan and the API table; anything else takes callHost
  let lastName = "";   // as lastSafe, for the names kryon.call is given
  function scalar(v) {   // crosses as it is (a BigInt goes as JSON, a string with NUL or a lone surrogate too)
    const t = typeof v;
    if (t === "string") { if (v !== lastSafe) { if (!safeStr(v)) return false; lastSafe = v; } return true; }
    return t === "number" || t === "boolean" || v === undefined || v === null;
  }
  function callMethod(idx) {
    return function call(...args) {
      const name = args[0];
      if (typeof name === "string" && (name === lastName || safeStr(name))) {
        let r;
        switch (args.length) {
          case 2: { const a = args[1], t = typeof a;   // the usual call: written out
            if (!(t === "number" || t === "boolean" || a === undefined || a === null || scalar(a))) return callHost(idx, args);
            lastName = name; r = KCALL(name, a); break; }
          case 1: lastName = name; r = KCALL(name); break;
          case 3: if (!scalar(args[1]) || !scalar(args[2])) return callHost(idx, args);
            lastName = name; r = KCALL(name, args[1], args[2]); break;
          case 4: if (!scalar(args[1]) || !scalar(args[2]) || !scalar(args[3])) return callHost(idx, args);
            lastName = name; r = KCALL(name, args[1], args[2], args[3]); break;
          default: return callHost(idx, args);
        }
        return typeof r !== "object" || r === null ? r : ret(r);
      }
      return callHost(idx, args);
    };
  }

  // -- the kryon object ---------------------------------------------------------
  const kryon = create(null);
  for (const [name, idx, lo, hi] of API) {
    const element = G["__kryon_element" + idx];
    if (element !== undefined) delete G["__kryon_element" + idx];
    const f = element !== undefined ? elementMethod(name, element, idx, lo, hi)
      : name === "call" && KCALL !== undefined ? callMethod(idx)
      : { [name]: function (...args) { return callHost(idx, args); } }[name];
    kryon[name] = freeze(f);
  }
  defineProperty(kryon, Symbol.toStringTag, { value: "kryon" });
  freeze(kryon);
  const K = kryon;

  function fmt(v, depth, seen) {
    switch (typeof v) {
      case "string": return depth ? stringify(v) : v;
      case "function": return "[Function" + (v.name ? ": " + v.name : " (anonymous)") + "]";
      case "symbol": case "bigint": case "number": case "boolean": case "undefined": return String(v) + (typeof v === "bigint" ? "n" : "");
    }
    if (v === null) return "null";
    if (handleIds.has(v)) return String(v);
    if (v instanceof ErrorC) return errStack(v) ? String(v.name) + ": " + String(v.message) + "\n" + errStack(v).replace(/\n$/, "") : String(v);
    if (seen.has(v) || depth > 4) return isArray(v) ? "[Array]" : "[Object]";
    seen.add(v);
    try {
      if (isArray(v)) return "[ " + v.map((x) => fmt(x, depth + 1, seen)).join(", ") + " ]";
      const ks = keys(v);
      if (!ks.length) return "{}";
      return "{ " + ks.map((k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : stringify(k)) + ": " + fmt(v[k], depth + 1, seen)).join(", ") + " }";
    } catch (_) { return "[Object]"; } finally { seen.delete(v); }
  }
  function printArgs(args) {
    const parts = []; for (let i = 0; i < args.length; i++) parts.push(fmt(args[i], 0, new SetC()));
    const line = parts.join(" ");
    OUT(safeStr(line) ? line : stringify(line).slice(1, -1));
  }
  const log = function log(...a) { printArgs(a); };
  const console = freeze({ log, info: log, warn: log, error: log, debug: log, trace: log });

  function timer(kind) {
    return function (fn, ms, ...extra) {
      if (typeof fn !== "function") throw new TypeError(kind + " needs a function");
      const cb = extra.length ? function () { return apply(fn, undefined, extra); } : fn;
      return K[kind](cb, ms === undefined ? 0 : +ms || 0);
    };
  }
  const clear = function (id) { if (id !== undefined && id !== null) K.clearTimer(id); };
  const requireFn = function require(name) { return callHost(0, [String(name)]); };

  const ro = (name, value) => defineProperty(G, name, { value, writable: false, enumerable: false, configurable: false });
  ro("kryon", kryon);
  ro("window", G);
  defineProperty(G, "console", { value: console, writable: true, enumerable: false, configurable: true });
  for (const [name, value] of [["print", log], ["setTimeout", timer("setTimeout")], ["setInterval", timer("setInterval")],
                               ["clearTimeout", clear], ["clearInterval", clear], ["require", requireFn]]) {
    defineProperty(G, name, { value, writable: true, enumerable: false, configurable: true });
  }
  for (const n of ["kryon", "window", "console", "print", "setTimeout", "setInterval", "clearTimeout", "clearInterval", "require"]) baseline[n] = 1;

  // -- helpers the host fetches through internal(name) ------------------------
  // Host scans use builtins saved before the script ran (a script may replace
  // its own), and run inside the script's deadline (a getter still runs code).
  const ownNames = Object.getOwnPropertyNames, charCode = call.bind(String.prototype.charCodeAt);
  function isIdent(s) {
    if (typeof s !== "string" || s.length === 0) return false;
    for (let i = 0; i < s.length; i++) {
      const c = charCode(s, i);
      const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;
      if (!letter && !(i > 0 && c >= 48 && c <= 57)) return false;
    }
    return true;
  }
  function lookup(name) {
    if (!isIdent(name)) return undefined;
    if (name === "eval") return G.eval;   // under the compile guards the binding eval is the unchecked intrinsic
    room(name.length);
    try { return geval(name); } catch (_) { return undefined; }
  }
  function startsWithClass(src) {
    return src.length >= 5 && src[0] === "c" && src[1] === "l" && src[2] === "a" && src[3] === "s" && src[4] === "s" &&
      (src.length === 5 || !isIdent("a" + src[5]));
  }
  function globalNames(candidates) {   // own globals the script added, then declared names (let/const too)
    const seen = create(null), out = [];
    const own = ownNames(G), more = parse(candidates);
    for (let i = 0; i < own.length; i++) { const n = own[i]; if (!(n in seen) && !baseline[n]) { seen[n] = 1; out[out.length] = n; } }
    for (let i = 0; i < more.length; i++) { const n = more[i]; if (!(n in seen) && !baseline[n]) { seen[n] = 1; out[out.length] = n; } }
    return out;
  }
  function describe(candidates) {
    const names = globalNames(candidates), out = [];
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      let f; try { f = lookup(n); } catch (_) { continue; }
      if (typeof f !== "function" || pyIds.has(f)) continue;
      let src = ""; try { src = fnToString(f); } catch (_) {}
      if (startsWithClass(src)) continue;
      let proto = null; try { proto = getProto(f); } catch (_) {}
      const kind = proto === AsyncFn.prototype ? "async" : proto === GenFn.prototype ? "generator" : proto === AsyncGenFn.prototype ? "asyncgenerator" : "plain";
      out[out.length] = [n, src.length > 4000 ? src.slice(0, 4000) : src, kind, 0];
    }
    return stringify(out);
  }
  function snapshot(candidates) {   // module-level data, for a reload that keeps state
    const names = globalNames(candidates), out = create(null);
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      let v; try { v = lookup(n); } catch (_) { continue; }
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
      try { out[n] = enc(v, new SetC(), 0); } catch (_) { /* not data: left out */ }
    }
    STASH(0, stringify(out));
    return BOX;
  }
  function restore(name, boxed, onlyUnset) {   // set one module-level name (a let/var binding or a global)
    if (!isIdent(name)) return null;
    const value = ret(boxed);
    if (onlyUnset) { const now = lookup(name); if (now !== undefined && now !== null) return null; }
    try { room(name.length); Fn("v", name + " = v;")(value); } catch (e) { return onlyUnset ? null : fail(e); }
    return null;
  }
/*GUARDS*/
  const internals = {
    BOX, ERR,
    // a name that is not defined is "no such function"; any other failure of the look-up (an
    // out-of-memory with the heap full: eval needs memory) reaches the host as the error it is
    caller: (name, n) => {
      if (!isIdent(name)) return null;
      if (name !== "eval") room(name.length);   // (outside the try: no room is the error it is, not "no such function")
      let f; try { f = name === "eval" ? G.eval : geval(name); } catch (e) { if (e instanceof ReferenceError) return null; throw e; }
      return typeof f === "function" ? caller(f, n) : null;
    },
    callRef: function (id, a) {
      const f = fns.get(id);
      if (f === undefined) return fail(new ErrorC("script function was released"));
      try { const r = apply(f, undefined, a); const t = typeof r;
        if (t === "number" || t === "boolean" || r === undefined || r === null) return r;
        if (t === "string" && safeStr(r)) return r; return done(r); } catch (e) { return fail(e); }
    },
    callName: function (name, a) {
      const f = lookup(name);
      if (typeof f !== "function") return fail(new ReferenceError(name + " is not a function"));
      try { return done(apply(f, undefined, a)); } catch (e) { return fail(e); }
    },
    release: (id) => { fns.delete(id); },
    forget: (id) => { promises.delete(id); },
    poll: (id) => {
      const slot = promises.get(id);
      if (slot === undefined) return fail(new ErrorC("unknown promise"));
      if (slot.state === 0) { STASH(3, ""); return BOX; }
      promises.delete(id);
      if (slot.state === 1) { try { return done(slot.value); } catch (e) { return fail(e); } }
      return fail(slot.value);
    },
    importText: (text) => importText(text),
    parseText: (text) => parse(text),
    handle: (id, label) => makeHandle(id, label),
    boxText: (text) => { const b = { v: importText(text) }; boxes.add(b); return b; },
    applyArgs: (w, a) => apply(w, undefined, a),
    setGlobal: (name, v) => { G[name] = ret(v); },
    getGlobal: (name) => { try { return done(lookup(name)); } catch (e) { return fail(e); } },
    describe: (candidates) => describe(candidates),
    snapshot: (candidates) => { try { return snapshot(candidates); } catch (e) { return fail(e); } },
    restore: (name, v, onlyUnset) => restore(name, v, onlyUnset),
    takeResult: () => { const h = internals.holder, r = h.r; delete h.r; try { return done(r); } catch (e) { return fail(e); } },
    evalCode: (code) => { try { room(code.length); return done(geval(code)); } catch (e) { return fail(e); } },
    stackNow: () => errStack(new ErrorC("stack")),
    boxError: (e) => fail(e),
    // the compiled caller (kryon_js/_ccall.c) calls a wrapper's function itself and hands over what the
    // wrapper would have taken care of: a result other than a number, boolean, null, undefined or plain
    // string (settle), a thrown value (boxError)
    target: (w) => targets.get(w),
    settle: function (r) { try { return done(r); } catch (e) { return fail(e); } },
    holder: create(null),
    // an object of each native error prototype with no properties keeps that prototype's first shape alive:
    // an error QuickJS makes on running out of memory then needs no new shape, so it goes through the
    // allocation that runs the cycle collector, which tells the host the heap was full (oom.py)
    shapes: [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError,
             G.InternalError].map((C) => typeof C === "function" ? create(C.prototype) : null),
    sweep: () => sweep(),
    counts: () => stringify([fns.size, pyFns.size, handles.size, promises.size]),
    takeHeld: () => { const h = internals.holder, e = h.e; delete h.e; return fail(e); },
  };
  return function internal(name) { return internals[name]; };
})()
