  // -- guards: builtins that loop natively without looking at the deadline ----
  // QuickJS checks its interrupt handler at loop back-edges of JavaScript code
  // and in some builtins, not in every native loop: join, fill, copyWithin,
  // reverse, sort, splice/shift/unshift, slice, concat, flat, Array.from and
  // the typed-array methods run to the end of a length the script chooses
  // (a generic array-like's length costs no memory). Under a time limit each
  // of them is replaced, before the script runs, by a wrapper that calls the
  // original for short inputs and otherwise works in chunks of CH elements,
  // asking the host between chunks whether the deadline passed (TICK) and
  // then throwing QuickJS's own uncatchable "interrupted" error (MARK makes
  // it uncatchable), or runs a JavaScript version the interrupt handler stops.
  function installGuards() {
    const CH = 1 << 16, BIG = 1 << 18, MAXLEN = 9007199254740991;
    const InternalErrorC = G.InternalError, ObjectC = Object, StringC = String, ArrayC = Array;
    const floor = Math.floor, min = Math.min, max = Math.max, trunc = Math.trunc;
    const slice = AP.slice;
    function tick() { if (TICK()) { const e = new InternalErrorC("interrupted"); MARK(e); throw e; } }
    function len(o) { const n = +o.length; return n > 0 ? (n > MAXLEN ? MAXLEN : floor(n)) : 0; }
    function rel(v, n, dflt) {
      if (v === undefined) return dflt;
      let k = +v; k = k !== k ? 0 : trunc(k);
      return k < 0 ? max(n + k, 0) : min(k, n);
    }
    function wrap(obj, name, make) {
      const orig = obj[name], f = make(orig);
      defineProperty(f, "name", { value: name });
      defineProperty(f, "length", { value: orig.length });
      defineProperty(obj, name, { value: f, writable: true, enumerable: false, configurable: true });
      return f;
    }
    const big = (o) => o !== null && o !== undefined && len(ObjectC(o)) > BIG;
    // bottom-up merge sort (stable, as the spec asks of sort), interruptible
    function mergeSort(items, less) {
      let a = items, b = new ArrayC(items.length);
      for (let width = 1; width < a.length; width *= 2) {
        for (let lo = 0; lo < a.length; lo += 2 * width) {
          const mid = min(lo + width, a.length), hi = min(lo + 2 * width, a.length);
          let i = lo, j = mid, k = lo;
          while (i < mid && j < hi) b[k++] = less(a[j], a[i]) ? a[j++] : a[i++];
          while (i < mid) b[k++] = a[i++];
          while (j < hi) b[k++] = a[j++];
        }
        const t = a; a = b; b = t;
      }
      return a;
    }
    function lessFor(cmp) {
      if (cmp === undefined) return (x, y) => { const s = StringC(x), t = StringC(y); return s < t; };
      if (typeof cmp !== "function") throw new TypeError("the comparison function must be a function or undefined");
      return (x, y) => { const r = +cmp(x, y); return r < 0; };
    }

    wrap(AP, "fill", (fill) => function (value, start, end) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(fill, this, arguments);
      const s = rel(start, n, 0), e = rel(end, n, n);
      for (let i = s; i < e; i += CH) { tick(); apply(fill, o, [value, i, min(i + CH, e)]); }
      return o;
    });
    wrap(AP, "copyWithin", (cw) => function (target, start, end) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(cw, this, arguments);
      const to = rel(target, n, 0), from = rel(start, n, 0), fin = rel(end, n, n), count = min(fin - from, n - to);
      if (from < to && to < from + count) {
        for (let k = count; k > 0; k -= CH) { tick(); const c = min(CH, k); apply(cw, o, [to + k - c, from + k - c, from + k]); }
      } else {
        for (let k = 0; k < count; k += CH) { tick(); const c = min(CH, count - k); apply(cw, o, [to + k, from + k, from + k + c]); }
      }
      return o;
    });
    wrap(AP, "join", (nativeJoin) => function (sep) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(nativeJoin, this, arguments);
      const s = sep === undefined ? "," : StringC(sep);
      let out = "";
      for (let i = 0; i < n; i += CH) {
        tick();
        const part = apply(nativeJoin, apply(slice, o, [i, min(i + CH, n)]), [s]);
        out = i === 0 ? part : out + s + part;
      }
      return out;
    });
    wrap(AP, "toLocaleString", (tls) => function () {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(tls, this, arguments);
      let out = "";
      for (let i = 0; i < n; i += CH) { tick(); const part = apply(tls, apply(slice, o, [i, min(i + CH, n)]), arguments); out = i === 0 ? part : out + "," + part; }
      return out;
    });
    wrap(AP, "reverse", (rev) => function () {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(rev, this, arguments);
      for (let lo = 0, hi = n - 1; lo < hi; lo++, hi--) {
        const le = lo in o, he = hi in o, lv = le ? o[lo] : undefined, hv = he ? o[hi] : undefined;
        if (he) o[lo] = hv; else delete o[lo];
        if (le) o[hi] = lv; else delete o[hi];
      }
      return o;
    });
    wrap(AP, "sort", (sort) => function (cmp) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(sort, this, arguments);
      const less = lessFor(cmp), items = [];
      let undefs = 0;
      for (let i = 0; i < n; i++) if (i in o) { const v = o[i]; if (v === undefined) undefs++; else items[items.length] = v; }
      const sorted = mergeSort(items, less);
      let i = 0;
      for (; i < sorted.length; i++) o[i] = sorted[i];
      for (; undefs > 0; undefs--) o[i++] = undefined;
      for (; i < n; i++) delete o[i];
      return o;
    });
    // moves of every element after the edit point: JavaScript versions (spec steps), interruptible
    function move(o, from, to, count) {
      if (from < to) { for (let k = count - 1; k >= 0; k--) { if (from + k in o) o[to + k] = o[from + k]; else delete o[to + k]; } }
      else { for (let k = 0; k < count; k++) { if (from + k in o) o[to + k] = o[from + k]; else delete o[to + k]; } }
    }
    const guardedSplice = wrap(AP, "splice", (nativeSplice) => function (start, deleteCount, ...items) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(nativeSplice, this, arguments);
      const s = rel(start, n, 0);
      const del = arguments.length === 0 ? 0 : arguments.length === 1 ? n - s : min(max(rel(deleteCount, MAXLEN, 0), 0), n - s);
      if (n + items.length - del > MAXLEN) throw new TypeError("array length too large");
      const removed = [];
      for (let k = 0; k < del; k++) { tick(); if (s + k in o) removed[k] = o[s + k]; }
      removed.length = del;
      move(o, s + del, s + items.length, n - s - del);
      for (let k = n; k > n - del + items.length; k--) delete o[k - 1];
      for (let k = 0; k < items.length; k++) o[s + k] = items[k];
      o.length = n - del + items.length;
      return removed;
    });
    wrap(AP, "unshift", (nativeUnshift) => function (...items) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG || items.length === 0) return apply(nativeUnshift, this, arguments);
      apply(guardedSplice, o, [0, 0, ...items]);
      return len(o);
    });
    wrap(AP, "shift", (nativeShift) => function () {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(nativeShift, this, arguments);
      return apply(guardedSplice, o, [0, 1])[0];
    });
    wrap(AP, "slice", (nativeSlice) => function (start, end) {
      const o = ObjectC(this), n = len(o);
      if (n <= BIG) return apply(nativeSlice, this, arguments);
      const s = rel(start, n, 0), e = rel(end, n, n), out = [];
      for (let k = s; k < e; k++) if (k in o) out[k - s] = o[k];
      out.length = max(e - s, 0);
      return out;
    });
    const spreadable = Symbol.isConcatSpreadable;
    wrap(AP, "concat", (nativeConcat) => function (...args) {
      const parts = [ObjectC(this), ...args];
      let huge = false;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        if (p !== null && typeof p === "object" && (p[spreadable] !== undefined ? p[spreadable] : isArray(p)) && big(p)) huge = true;
      }
      if (!huge) return apply(nativeConcat, this, arguments);
      const out = [];
      let n = 0;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        const spread = p !== null && typeof p === "object" && (p[spreadable] !== undefined ? !!p[spreadable] : isArray(p));
        if (!spread) { out[n++] = p; continue; }
        const m = len(p);
        for (let k = 0; k < m; k++, n++) if (k in p) out[n] = p[k];
      }
      out.length = n;
      return out;
    });
    function flatInto(target, src, depth) {
      const n = len(src);
      for (let i = 0; i < n; i++) {
        if (!(i in src)) continue;
        const v = src[i];
        if (depth > 0 && isArray(v)) flatInto(target, v, depth - 1); else target[target.length] = v;
      }
      return target;
    }
    wrap(AP, "flat", () => function (depth) {   // always the JavaScript version: nested arrays may be huge
      const d = depth === undefined ? 1 : (+depth !== +depth ? 0 : trunc(+depth));
      return flatInto([], ObjectC(this), d);
    });
    wrap(AP, "flatMap", () => function (fn, thisArg) {
      if (typeof fn !== "function") throw new TypeError("flatMap needs a function");
      const o = ObjectC(this), n = len(o), out = [];
      for (let i = 0; i < n; i++) {
        if (!(i in o)) continue;
        const v = apply(fn, thisArg, [o[i], i, o]);
        if (isArray(v)) flatInto(out, v, 0); else out[out.length] = v;
      }
      return out;
    });
    wrap(ArrayC, "from", (nativeFrom) => function (items, fn, thisArg) {
      if (items === null || items === undefined || !big(items)) return apply(nativeFrom, this, arguments);
      if (fn !== undefined && typeof fn !== "function") throw new TypeError("Array.from: the map function must be a function");
      const out = [];
      let i = 0;
      if (typeof items === "string") {
        for (const ch of items) { out[i] = fn ? apply(fn, thisArg, [ch, i]) : ch; i++; }
        return out;
      }
      const o = ObjectC(items), n = len(o);
      for (; i < n; i++) { const v = o[i]; out[i] = fn ? apply(fn, thisArg, [v, i]) : v; }
      return out;
    });

    // typed arrays: their length is real memory, but one native pass over the largest a memory
    // limit allows still outlasts a time limit; work through subarray views in chunks
    const TA = getProto(U8.prototype);
    const tlen = call.bind(getOwnDesc(TA, "length").get), sub = call.bind(TA.subarray);
    wrap(TA, "fill", (fill) => function (value, start, end) {
      const n = tlen(this);
      if (n <= BIG) return apply(fill, this, arguments);
      const s = rel(start, n, 0), e = rel(end, n, n);
      for (let i = s; i < e; i += CH) { tick(); apply(fill, this, [value, i, min(i + CH, e)]); }
      return this;
    });
    wrap(TA, "copyWithin", (cw) => function (target, start, end) {
      const n = tlen(this);
      if (n <= BIG) return apply(cw, this, arguments);
      const to = rel(target, n, 0), from = rel(start, n, 0), fin = rel(end, n, n), count = min(fin - from, n - to);
      if (from < to && to < from + count) {
        for (let k = count; k > 0; k -= CH) { tick(); const c = min(CH, k); apply(cw, this, [to + k - c, from + k - c, from + k]); }
      } else {
        for (let k = 0; k < count; k += CH) { tick(); const c = min(CH, count - k); apply(cw, this, [to + k, from + k, from + k + c]); }
      }
      return this;
    });
    for (const name of ["indexOf", "includes"]) {
      wrap(TA, name, (find) => function (x, fromIndex) {
        const n = tlen(this);
        if (n <= BIG) return apply(find, this, arguments);
        for (let i = rel(fromIndex, n, 0); i < n; i += CH) {
          tick();
          const r = apply(find, sub(this, i, min(i + CH, n)), [x]);
          if (name === "includes" ? r : r >= 0) return name === "includes" ? true : i + r;
        }
        return name === "includes" ? false : -1;
      });
    }
    wrap(TA, "lastIndexOf", (find) => function (x, fromIndex) {
      const n = tlen(this);
      if (n <= BIG) return apply(find, this, arguments);
      const last = arguments.length > 1 ? (rel(fromIndex, n, n - 1) < 0 ? -1 : min(+fromIndex < 0 ? n + trunc(+fromIndex) : trunc(+fromIndex), n - 1)) : n - 1;
      for (let hi = last + 1; hi > 0; hi -= CH) {
        tick();
        const lo = max(0, hi - CH), r = apply(find, sub(this, lo, hi), [x]);
        if (r >= 0) return lo + r;
      }
      return -1;
    });
    wrap(TA, "join", (nativeJoin) => function (sep) {
      const n = tlen(this);
      if (n <= BIG) return apply(nativeJoin, this, arguments);
      const s = sep === undefined ? "," : StringC(sep);
      let out = "";
      for (let i = 0; i < n; i += CH) { tick(); const part = apply(nativeJoin, sub(this, i, min(i + CH, n)), [s]); out = i === 0 ? part : out + s + part; }
      return out;
    });
    wrap(TA, "reverse", (rev) => function () {
      const n = tlen(this);
      if (n <= BIG) return apply(rev, this, arguments);
      for (let lo = 0, hi = n - 1; lo < hi; lo++, hi--) { const t = this[lo]; this[lo] = this[hi]; this[hi] = t; }
      return this;
    });
    wrap(TA, "sort", (sort) => function (cmp) {
      const n = tlen(this);
      if (n <= BIG) return apply(sort, this, arguments);
      if (cmp !== undefined && typeof cmp !== "function") throw new TypeError("the comparison function must be a function or undefined");
      const items = new ArrayC(n);
      for (let i = 0; i < n; i++) items[i] = this[i];
      const less = cmp === undefined
        ? (x, y) => x < y || (x === 0 && y === 0 && 1 / x < 0 && 1 / y > 0) || (y !== y && x === x)
        : (x, y) => +cmp(x, y) < 0;
      const sorted = mergeSort(items, less);
      for (let i = 0; i < n; i++) this[i] = sorted[i];
      return this;
    });
    wrap(TA, "set", (set) => function (source, offset) {
      const n = source !== null && typeof source === "object" ? len(source) : 0;
      if (n <= BIG) return apply(set, this, arguments);
      const at = offset === undefined ? 0 : trunc(+offset) || 0, typed = isView(source);
      for (let i = 0; i < n; i += CH) {
        tick();
        const chunk = typed ? sub(source, i, min(i + CH, n)) : apply(slice, source, [i, min(i + CH, n)]);
        apply(set, this, [chunk, at + i]);
      }
      return undefined;
    });
    // JSON.stringify walks arrays natively; with a replacer each value passes through a JavaScript
    // call, where the interrupt handler is asked (same output: the replacer returns what it gets)
    // A string longer than 2^22 is quoted in pieces of 2^20 (never between the halves of a surrogate
    // pair) with a deadline check between them, and handed back as JSON.rawJSON, which is copied as it is
    const stringifyC = JSON.stringify, rawJSON = JSON.rawJSON, sliceS = call.bind(StringC.prototype.slice);
    const codeAt = call.bind(StringC.prototype.charCodeAt);
    function quoted(v) {
      if (typeof v !== "string" || v.length <= 1 << 22 || typeof rawJSON !== "function") return v;
      let out = "\"";
      for (let i = 0, j; i < v.length; i = j) {
        j = min(i + (1 << 20), v.length);
        if (j < v.length && (codeAt(v, j) & 0xfc00) === 0xdc00) j++;
        const q = apply(stringifyC, JSON, [sliceS(v, i, j)]);
        out += sliceS(q, 1, q.length - 1);
        tick();
      }
      return rawJSON(out + "\"");
    }
    defineProperty(JSON, "stringify", { value: function stringify(value, replacer, space) {
      if (typeof replacer === "function") {
        return apply(stringifyC, JSON, [value, function (k, v) { return quoted(apply(replacer, this, [k, v])); }, space]);
      }
      if (replacer !== undefined && replacer !== null) return apply(stringifyC, JSON, arguments);
      return apply(stringifyC, JSON, [value, function (k, v) { return quoted(v); }, space]);
    }, writable: true, enumerable: false, configurable: true });
    installStringGuards(tick, wrap, rel, len, big);
    installConstructorGuards(tick, wrap, len, big, BIG);
    installJsonGuard(tick, AP.concat);
    installHashGuards(wrap, BIG);
  }

  // -- Map and Set hash a string key natively, character by character. A rope (s + s, built in a few
  // steps) is walked without being flattened: 2^30 characters take seconds and cost no memory. A long
  // key is made flat first, so its size is charged to the memory limit and one pass over it is bounded
  // by that limit, as for every other single pass over one string.
  function installHashGuards(wrap, BIG) {
    const flat = call.bind(String.prototype.slice);
    const key = (k) => (typeof k === "string" && k.length > BIG ? flat(k, 0) : k);
    for (const [proto, names] of [[MapC.prototype, ["get", "set", "has", "delete"]], [SetC.prototype, ["add", "has", "delete"]]]) {
      for (const name of names) {   // bound natives: no arguments array on every call
        wrap(proto, name, (native) => {
          const n = call.bind(native);
          return name === "set"
            ? function (k, v) { return n(this, typeof k === "string" && k.length > BIG ? flat(k, 0) : k, v); }
            : function (k) { return n(this, typeof k === "string" && k.length > BIG ? flat(k, 0) : k); };
        });
      }
    }
    // the set methods hash what another set-like's keys() yields: its strings pass through key() too
    function record(o) {
      if (o === null || typeof o !== "object") return o;
      const size = o.size, has = o.has, keys = o.keys;
      if (typeof keys !== "function") return o;
      return {
        size, has: typeof has === "function" ? function (v) { return apply(has, o, [v]); } : has,
        keys() {
          const it = apply(keys, o, []), next = it === null || typeof it !== "object" ? undefined : it.next;
          if (typeof next !== "function") return it;
          return { next() { const r = apply(next, it, []); return r !== null && typeof r === "object" && typeof r.value === "string" && r.value.length > BIG ? { done: r.done, value: key(r.value) } : r; } };
        },
      };
    }
    for (const name of ["union", "intersection", "difference", "symmetricDifference", "isSubsetOf", "isSupersetOf", "isDisjointFrom"]) {
      if (typeof SetC.prototype[name] === "function") wrap(SetC.prototype, name, (native) => function (other) { return apply(native, this, [record(other)]); });
    }
    wrap(MapC, "groupBy", (native) => function (items, fn) {
      if (typeof fn !== "function") return apply(native, this, arguments);
      return apply(native, this, [items, function (v, i) { return key(fn(v, i)); }]);
    });
  }

  // -- strings: building and searching loop natively over lengths the script picks -----------------
  // repeat/padStart/padEnd append one copy at a time; indexOf and the searches built on it compare
  // naively (position x needle length). Above WORK units they run in chunks with a deadline check:
  // repeat by doubling, searches window by window.
  function installStringGuards(tick, wrap, rel, len, big) {
    const WORK = 1 << 22, SP = String.prototype, StringC = String, floor = Math.floor, min = Math.min, max = Math.max;
    const nRepeat = call.bind(SP.repeat), nIndexOf = call.bind(SP.indexOf), nLastIndexOf = call.bind(SP.lastIndexOf);
    const nSlice = call.bind(SP.slice), matchSym = Symbol.match, splitSym = Symbol.split, replaceSym = Symbol.replace;
    const RangeErrorC = RangeError, TypeErrorC = TypeError;
    function str(v) { if (v === null || v === undefined) throw new TypeErrorC("String.prototype method called on null or undefined"); return StringC(v); }
    function count(v) { let k = +v; k = k !== k ? 0 : Math.trunc(k); return k; }
    function repeat(s, n) {   // s repeated n times, doubling (each step one concatenation, then a deadline check)
      if (n <= 0 || s.length === 0) return "";
      if (s.length * n <= WORK) return nRepeat(s, n);
      const base = max(1, floor(WORK / s.length));
      // concatenation makes a rope that holds no memory of its own: slice(0) makes each step a flat
      // string, so the memory limit sees what the native repeat would allocate
      const unit = nRepeat(s, base);
      let out = "", k = n;
      while (k >= base) {   // binary expansion of k in units of base
        let piece = unit, m = base;
        while (m * 2 <= k) { tick(); piece = nSlice(piece + piece, 0); m *= 2; }
        out = out === "" ? piece : nSlice(out + piece, 0); k -= m; tick();
      }
      return k > 0 ? nSlice(out + nRepeat(s, k), 0) : out;
    }
    wrap(SP, "repeat", (nativeRepeat) => function (n) {
      const s = str(this), k = count(n);
      if (k < 0 || k === Infinity) return apply(nativeRepeat, s, [n]);   // its own RangeError
      if (s.length * k <= WORK) return nativeRepeat.call(s, k);
      if (s.length * k >= 2 ** 30) throw new RangeErrorC("invalid string length");
      return repeat(s, k);
    });
    function pad(nativePad, atStart) {
      return function (maxLength, fillString) {
        const s = str(this), n = count(maxLength) > 2 ** 53 ? 2 ** 53 : count(maxLength);
        if (n - s.length <= WORK) return apply(nativePad, s, [maxLength, fillString]);
        const f = fillString === undefined ? " " : StringC(fillString);
        if (f === "") return s;
        if (n >= 2 ** 30) throw new RangeErrorC("invalid string length");
        const k = n - s.length, filler = nSlice(repeat(f, floor(k / f.length) + 1), 0, k);
        return atStart ? filler + s : s + filler;
      };
    }
    // String.raw reads raw[0 .. length) natively, a length the script picks (2^32 - 1 of an
    // array-like costs nothing): always this JavaScript version, whose loop the interrupt handler
    // stops; it reads the template, raw and length once each, as the native does (spec order)
    wrap(StringC, "raw", () => function (template, ...subs) {
      if (template === null || template === undefined) throw new TypeErrorC("Cannot convert undefined or null to object");
      const raw = template.raw;
      if (raw === null || raw === undefined) throw new TypeErrorC("Cannot convert undefined or null to object");
      const n = len(raw);
      let out = "";
      for (let i = 0; i < n; i++) {
        out += `${raw[i]}`;
        if (i + 1 === n) break;
        if (i < subs.length) out += `${subs[i]}`;
      }
      return out;
    });
    wrap(SP, "padStart", (p) => pad(p, true));
    wrap(SP, "padEnd", (p) => pad(p, false));
    // first index of t in s at or after from, window by window: windows grow from 64 positions (a match
    // nearby costs little) to WORK / needle length, with a deadline check after every WORK units
    function find(s, t, from) {
      const n = s.length, m = t.length, unit = m || 1;
      if ((n - from) * unit <= WORK) return nIndexOf(s, t, from);
      let w = 64, work = 0;
      for (let i = from; i + m <= n; ) {
        const span = min(w, n - m - i + 1), r = nIndexOf(nSlice(s, i, i + span + m - 1), t);
        if (r >= 0) return i + r;
        i += span;
        work += span * unit;
        if (work > WORK) { tick(); work = 0; }
        if (w * unit < WORK) w *= 2;
      }
      return -1;
    }
    function findLast(s, t, from) {   // last index of t in s at or before from, the same way backwards
      const n = s.length, m = t.length, unit = m || 1;
      if ((from + 1) * unit <= WORK) return nLastIndexOf(s, t, from);
      let w = 64, work = 0;
      for (let hi = min(from, n - m); hi >= 0; ) {
        const lo = max(0, hi - w + 1), r = nLastIndexOf(nSlice(s, lo, hi + m), t);
        if (r >= 0) return lo + r;
        work += (hi - lo + 1) * unit;
        hi = lo - 1;
        if (work > WORK) { tick(); work = 0; }
        if (w * unit < WORK) w *= 2;
      }
      return -1;
    }
    const heavy = (s, t) => s.length > WORK || s.length * (t.length || 1) > WORK;
    wrap(SP, "indexOf", (native) => function (search, position) {
      const s = str(this), t = StringC(search);
      if (!heavy(s, t)) return apply(native, s, [t, position]);
      return find(s, t, rel(position === undefined ? 0 : max(0, count(position)), s.length, 0));
    });
    wrap(SP, "includes", (native) => function (search, position) {
      const s = str(this);
      if (search !== null && typeof search === "object" && search[matchSym] !== undefined ? !!search[matchSym] : false)
        return apply(native, s, arguments);   // its own TypeError for a RegExp
      const t = StringC(search);
      if (!heavy(s, t)) return apply(native, s, [t, position]);
      return find(s, t, min(max(0, count(position)), s.length)) >= 0;
    });
    wrap(SP, "lastIndexOf", (native) => function (search, position) {
      const s = str(this), t = StringC(search);
      if (!heavy(s, t)) return apply(native, s, [t, position]);
      const p = +position, from = p !== p ? s.length : min(max(0, Math.trunc(p)), s.length);
      return t.length === 0 ? from : findLast(s, t, from);
    });
    wrap(SP, "split", (native) => function (separator, limit) {
      if (separator !== null && separator !== undefined && separator[splitSym] !== undefined) return apply(native, this, arguments);
      const s = str(this);
      if (separator === undefined || s.length <= WORK && s.length * (StringC(separator).length || 1) <= WORK) return apply(native, s, arguments);
      const lim = limit === undefined ? 4294967295 : limit >>> 0, t = StringC(separator), out = [];
      if (lim === 0) return out;
      if (t === "") { for (let i = 0; i < s.length && out.length < lim; i++) out[out.length] = s[i]; return out; }
      let p = 0;
      for (let q = find(s, t, 0); q >= 0 && out.length < lim; q = find(s, t, p)) { out[out.length] = nSlice(s, p, q); p = q + t.length; }
      if (out.length < lim) out[out.length] = nSlice(s, p);
      return out;
    });
    // normalize (and localeCompare, which compares the NFC forms) make one pass over the whole string.
    // A long string is normalized in pieces cut before an ASCII character or a letter other than a
    // Hangul jamo: such a character has combining class 0 and is never the second half of a composition,
    // so nothing before the cut combines or reorders with anything after it
    const SAFE = /(?![\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff])[\p{L}\0-\x7f]/gu, exec = call.bind(RegExp.prototype.exec);
    const nNormalize = call.bind(SP.normalize);
    function normalizeLong(s, f) {
      let out = "";
      for (let i = 0, j; i < s.length; i = j) {
        j = i + (1 << 16);
        if (j < s.length) { SAFE.lastIndex = j; const m = exec(SAFE, s); j = m === null ? s.length : m.index; } else j = s.length;
        out += nNormalize(nSlice(s, i, j), f);
        tick();
      }
      return out;
    }
    wrap(SP, "normalize", (native) => function (form) {
      const s = str(this);
      if (s.length <= WORK) return apply(native, s, arguments);
      const f = form === undefined ? "NFC" : StringC(form);
      nNormalize("", f);   // its own RangeError for an unknown form
      return normalizeLong(s, f);
    });
    wrap(SP, "localeCompare", (native) => function (that) {
      const s = str(this), t = StringC(that);
      if (s.length + t.length <= WORK) return apply(native, s, arguments);
      const a = normalizeLong(s, "NFC"), b = normalizeLong(t, "NFC");
      return a < b ? -1 : a > b ? 1 : 0;
    });
    // per-character transforms (escape, encodeURI/encodeURIComponent, toUpperCase/toLowerCase) make one
    // native pass too; a long string goes through in pieces of 2^20 cut where nothing spans the cut:
    // never inside a surrogate pair, and for toLowerCase (whose final sigma looks at the letters around
    // it) only before a space or a digit
    const LOWER_CUT = /[ \t\n0-9]/g;
    function pieces(s, f, cut) {
      let out = "";
      for (let i = 0, j; i < s.length; i = j) {
        j = i + (1 << 20);
        if (j >= s.length) j = s.length;
        else if (cut !== null) { cut.lastIndex = j; const m = exec(cut, s); j = m === null ? s.length : m.index; }
        else { const c = s.charCodeAt(j); if (c >= 0xdc00 && c <= 0xdfff) j++; }   // not between the halves of a pair
        out += f(nSlice(s, i, j));
        tick();
      }
      return out;
    }
    for (const [obj, name, cut] of [[G, "escape", null], [G, "encodeURI", null], [G, "encodeURIComponent", null],
                                    [SP, "toUpperCase", null], [SP, "toLowerCase", LOWER_CUT]]) {
      if (typeof obj[name] !== "function") continue;
      const method = obj === SP;
      wrap(obj, name, (native) => {
        const f = method ? call.bind(native) : native;
        return method
          ? function () { const s = str(this); return s.length <= WORK ? f(s) : pieces(s, f, cut); }
          : function (v) { const s = StringC(v); return s.length <= WORK ? f(s) : pieces(s, f, cut); };
      });
    }
    // GetSubstitution for a string pattern (no captures): $$, $&, $` and $'
    function substitute(matched, s, pos, replacement) {
      let out = "";
      for (let i = 0; i < replacement.length; i++) {
        const c = replacement[i], d = replacement[i + 1];
        if (c !== "$" || d === undefined) { out += c; continue; }
        if (d === "$") { out += "$"; i++; }
        else if (d === "&") { out += matched; i++; }
        else if (d === "`") { out += nSlice(s, 0, pos); i++; }
        else if (d === "'") { out += nSlice(s, pos + matched.length); i++; }
        else out += c;
      }
      return out;
    }
    function positional(r) {   // whether the replacement uses $` or $' (text around the match)
      for (let i = 0; i < r.length - 1; i++) {
        if (r[i] !== "$") continue;
        const d = r[i + 1];
        if (d === "`" || d === "'") return true;
        if (d === "$" || d === "&") i++;
      }
      return false;
    }
    function replaceString(s, t, replaceValue, all) {
      const fn = typeof replaceValue === "function", r = fn ? null : StringC(replaceValue);
      let out = "", p = 0, q = find(s, t, 0);   // += grows one buffer in place (no array of pieces)
      while (q >= 0) {
        out += nSlice(s, p, q);
        out += fn ? StringC(replaceValue(t, q, s)) : substitute(t, s, q, r);
        p = q + t.length;
        if (!all) break;
        q = find(s, t, p);
      }
      return out + nSlice(s, p);
    }
    // replaceAll with a plain replacement (no "$" patterns, not a function) is split + join, done natively
    // window by window: a window's split finds the same leftmost non-overlapping matches as the whole
    // string does, except one that crosses the window's end; keeping back the last m - 1 unmatched
    // characters for the next window finds that one there
    const nSplit = call.bind(SP.split), nJoin = call.bind(AP.join);
    function replaceAllPlain(s, t, r) {
      const n = s.length, m = t.length, w = max(min(1 << 17, floor(WORK / m)), 2 * m);
      let out = "";
      for (let p = 0; p < n; ) {
        const e = min(p + w, n), parts = nSplit(nSlice(s, p, e), t);
        if (e === n) { out += nJoin(parts, r); break; }
        const last = parts[parts.length - 1], keep = min(last.length, m - 1);
        parts[parts.length - 1] = nSlice(last, 0, last.length - keep);
        out += nJoin(parts, r);
        p = e - keep;
        tick();
      }
      return out;
    }
    for (const name of ["replace", "replaceAll"]) {
      wrap(SP, name, (native) => function (pattern, replacement) {
        if (pattern !== null && pattern !== undefined && pattern[replaceSym] !== undefined) return apply(native, this, arguments);
        const s = str(this), t = StringC(pattern);
        if (!heavy(s, t) && (name === "replace" || s.length <= 1 << 16)) return apply(native, s, [t, replacement]);
        if (t.length === 0) return apply(native, s, [t, replacement]);   // an empty pattern: at most one pass of inserts
        if (name === "replaceAll" && typeof replacement !== "function") {
          const r = StringC(replacement);
          if (nIndexOf(r, "$") < 0) return replaceAllPlain(s, t, r);
          if (!positional(r)) return replaceAllPlain(s, t, substitute(t, "", 0, r));   // $$ and $& only: the same every time
        }
        return replaceString(s, t, replacement, name === "replaceAll");
      });
    }
  }

  // -- typed arrays built from a generic array-like or iterable read it natively, element by element
  // (a million plain reads is fast; 2^28 of them, which a 256 MiB limit allows, is not). Their
  // constructors and from() read such a source into an array through the guarded Array.from, then
  // copy it through the guarded set(). The constructors are wrapped in a Proxy, so prototype,
  // name, statics and instanceof are the originals'.
  function installConstructorGuards(tick, wrap, len, big, BIG) {
    const ProxyC = Proxy, construct = Reflect.construct, from = Array.from, iterSym = Symbol.iterator;
    const TA = getProto(U8.prototype), taSet = call.bind(TA.set), SAB = G.SharedArrayBuffer;
    function needsGuard(src) {
      if (src === null || typeof src !== "object" || src instanceof ABuf || (SAB && src instanceof SAB) || isView(src)) return false;
      return big(src) || (src[iterSym] !== undefined && !isArray(src));
    }
    function build(target, src, newTarget) {
      const values = apply(from, ArrayC, [src]);
      const out = construct(target, [values.length], newTarget);
      taSet(out, values);
      return out;
    }
    const ArrayC = Array;
    for (const name of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array",
                        "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"]) {
      const C = G[name];
      if (typeof C !== "function") continue;
      const P = new ProxyC(C, { construct(target, args, newTarget) {
        return needsGuard(args[0]) ? build(target, args[0], newTarget === P ? target : newTarget) : construct(target, args, newTarget === P ? target : newTarget);
      } });
      defineProperty(C.prototype, "constructor", { value: P, writable: true, enumerable: false, configurable: true });
      defineProperty(G, name, { value: P, writable: true, enumerable: false, configurable: true });
    }
    wrap(getProto(U8), "from", (nativeFrom) => function (source, fn, thisArg) {
      if (fn !== undefined || !needsGuard(source)) return apply(nativeFrom, this, arguments);
      return new this(apply(from, ArrayC, [source]));
    });
    // spreading a long string ([...s], Array.from(s[Symbol.iterator]()), new Set(s)) runs the string
    // iterator from a native loop: above BIG characters the iterator's next() is a JavaScript function,
    // where the interrupt handler is asked (same prototype, so it still reads as a String Iterator)
    const iterProto = getProto(""[iterSym]()), nSlice = call.bind(String.prototype.slice), charCode = call.bind(String.prototype.charCodeAt);
    const SP = String.prototype;
    wrap(SP, iterSym, (nativeIter) => function () {
      if (this === null || this === undefined) return apply(nativeIter, this, []);   // its own TypeError
      const s = String(this);
      if (s.length <= BIG) return apply(nativeIter, s, []);
      let i = 0;
      return create(iterProto, { next: { value: function next() {
        if (i >= s.length) return { value: undefined, done: true };
        const c = charCode(s, i);
        const n = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (charCode(s, i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
        const v = nSlice(s, i, i + n);
        i += n;
        return { value: v, done: false };
      }, writable: true, configurable: true } });
    });
    defineProperty(SP[iterSym], "name", { value: "[Symbol.iterator]" });
    // Object.keys/values/entries/getOwnPropertyNames of a long string list its indices natively
    const nKeys = Object.keys, nValues = Object.values, nEntries = Object.entries, nNames = Object.getOwnPropertyNames;
    function indices(s, what) {
      const out = [];
      for (let i = 0; i < s.length; i++) out[i] = what === 0 ? "" + i : what === 1 ? s[i] : ["" + i, s[i]];
      return out;
    }
    // a String object (new String(s), Object(s)) lists the indices of the string it wraps the same way;
    // other own properties added to such an object are not listed (finding them is the native listing)
    const strValue = call.bind(String.prototype.valueOf);
    function longString(o) {
      if (typeof o === "string") return o.length > BIG ? o : null;
      if (o === null || typeof o !== "object") return null;
      let s; try { s = strValue(o); } catch (_) { return null; }
      return s.length > BIG ? s : null;
    }
    for (const [name, native, what] of [["keys", nKeys, 0], ["values", nValues, 1], ["entries", nEntries, 2], ["getOwnPropertyNames", nNames, 3]]) {
      wrap(Object, name, () => function (o) {
        const s = longString(o);
        if (s === null) return apply(native, Object, arguments);
        const out = indices(s, what === 3 ? 0 : what);
        if (what === 3) out[out.length] = "length";
        return out;
      });
    }
    wrap(Reflect, "ownKeys", (nativeOwnKeys) => function ownKeys(o) {
      const s = typeof o === "object" ? longString(o) : null;   // a primitive is a TypeError, natively
      if (s === null) return apply(nativeOwnKeys, Reflect, arguments);
      const out = indices(s, 0);
      out[out.length] = "length";
      return out;
    });
    // Object.assign copies every index of a string source natively, one property each
    wrap(Object, "assign", (nativeAssign) => function (target, ...sources) {
      let heavy = false;
      for (let i = 0; i < sources.length; i++) { const v = sources[i]; if ((typeof v === "string" || v instanceof String) && v.length > BIG) heavy = true; }
      if (!heavy) return apply(nativeAssign, Object, arguments);
      const to = Object(target);
      for (let i = 0; i < sources.length; i++) {
        const v = sources[i];
        if (typeof v === "string" || v instanceof String) { const s = String(v); for (let k = 0; k < s.length; k++) to[k] = s[k]; }
        else apply(nativeAssign, Object, [to, v]);
      }
      return to;
    });
  }
  // -- JSON.parse builds its whole result in one native call (a second per 2^24 elements). A text longer
  // than WORK is read container by container, left to right: a run of elements (or members) cut at a comma
  // about RUN characters on goes to the native parser, which accepts the run only if every cut falls
  // between two complete elements of this container (the run is read exactly as the whole text is; a run
  // reaching past the container's end is unbalanced). Where a cut fails (commas inside elements), elements
  // are delimited by a scan (strings skipped) and handed over in runs; an element longer than LONG is
  // read the same way, recursively. Every native call gets at most WORK characters.
  function installJsonGuard(tick, nConcat) {
    const WORK = 1 << 22, RUN = 1 << 12, LONG = 1 << 16;   // LONG: how far a scan looks for an element's end
    const nParse = JSON.parse, nSlice = call.bind(String.prototype.slice), nIndexOf = call.bind(String.prototype.indexOf);
    const exec = call.bind(RegExp.prototype.exec), ownKeys = Reflect.ownKeys, StringC = String;
    const SyntaxErrorC = SyntaxError, max = Math.max;
    const WS = /[ \t\n\r]*/y, SCAN = /[[\]{}"]/g, ATOM = /[^,\]} \t\n\r]*/y;
    let END = 0;   // where the value value() just read ends
    function bad(what, at) { return new SyntaxErrorC("JSON.parse: " + what + " at position " + at); }
    function skipWs(s, i) { WS.lastIndex = i; exec(WS, s); return WS.lastIndex; }
    function stringEnd(s, i) {   // s[i] is '"': the index after the closing quote
      for (let from = i + 1; ; ) {
        const q = nIndexOf(s, '"', from);
        if (q < 0) throw bad("unterminated string", i);
        let k = q - 1;
        while (s[k] === "\\") k--;
        if ((q - 1 - k) % 2 === 0) return q + 1;   // an even run of backslashes escapes itself, not the quote
        from = q + 1;
      }
    }
    // the index after the value that starts at i, or -1 if it is a container that does not end before limit
    function valueEnd(s, i, limit) {
      const c = s[i];
      if (c === '"') return stringEnd(s, i);
      if (c !== "[" && c !== "{") { ATOM.lastIndex = i; exec(ATOM, s); return ATOM.lastIndex; }
      let depth = 0;
      SCAN.lastIndex = i;
      for (;;) {
        const m = exec(SCAN, s);
        if (m === null) throw bad("unterminated " + (c === "[" ? "array" : "object"), i);
        if (SCAN.lastIndex > limit) return -1;
        const d = m[0];
        if (d === '"') SCAN.lastIndex = stringEnd(s, SCAN.lastIndex - 1);
        else if (d === "[" || d === "{") depth++;
        else if (--depth === 0) return SCAN.lastIndex;
      }
    }
    function memberEnd(s, p, limit) {   // "key" : value
      if (s[p] !== '"') throw bad("expected a property name", p);
      const q = skipWs(s, stringEnd(s, p));
      if (s[q] !== ":") throw bad("expected ':'", q);
      return valueEnd(s, skipWs(s, q + 1), limit);
    }
    function near(s, pattern, from, span) {   // the first occurrence of pattern in the span characters from from, or -1
      const i = nIndexOf(nSlice(s, from, from + span), pattern);
      return i < 0 ? -1 : from + i;
    }
    function define(o, k, v) { defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true }); }
    function value(s, a) {   // the value at a (no whitespace before it); sets END
      const c = s[a];
      if (c === "[" || c === "{") return elements(s, a + 1, c === "{");
      const e = valueEnd(s, a, Infinity);
      END = e;
      return nParse(nSlice(s, a, e));   // one string or scalar: a single pass
    }
    function elements(s, a, isObj) {   // the elements (or members) after the opening bracket at a - 1; sets END
      const out = isObj ? {} : null, parts = [], open = isObj ? "{" : "[", close = isObj ? "}" : "]";
      let p = skipWs(s, a), run = RUN;
      function take(stop) {   // [p, stop): complete elements, natively
        const part = nParse(open + nSlice(s, p, stop) + close);
        if (!isObj) parts[parts.length] = part;
        else { const ks = ownKeys(part); for (let i = 0; i < ks.length; i++) define(out, ks[i], part[ks[i]]); }
      }
      function next(e) {   // past the comma after an element ending at e; -1 at the closing bracket
        const q = skipWs(s, e);
        if (s[q] === close) { END = q + 1; return -1; }
        if (s[q] !== ",") throw bad(q >= s.length ? "unexpected end of input" : "expected ',' or '" + close + "'", q);
        const r = skipWs(s, q + 1);
        if (s[r] === close) throw bad("unexpected '" + close + "' after ','", r);
        return r;
      }
      if (s[p] === close) { END = p + 1; return isObj ? out : []; }
      while (p >= 0) {
        tick();
        // a few guesses at a comma about RUN on: "}," and "]," often end an element, any comma does between
        // scalars; a wrong guess costs one native parse of RUN characters, cheaper than scanning them
        // (runs double while the guesses hold, up to 2^20 characters)
        let ok = false;
        for (let k = 0, from = p + run; k < 6 && !ok; k++) {
          let cut = near(s, k === 0 ? "}," : k === 1 ? "]," : ",", from, run);
          if (cut < 0) continue;
          if (k < 2) cut++;
          try { take(cut); ok = true; p = next(cut); } catch (e) { if (!(e instanceof SyntaxErrorC)) throw e; if (k >= 2) from = cut + 1; }
        }
        if (ok) { if (run < 1 << 20) run *= 2; continue; }
        if (run > RUN) { run = max(RUN, run >> 3); continue; }   // the container may end sooner: shorter runs first
        // scan element by element until a run of RUN characters or more is delimited
        let q = p, last = -1, more = -1;
        for (;;) {
          const e = isObj ? memberEnd(s, q, q + LONG) : valueEnd(s, q, q + LONG);
          if (e < 0 || e - p > WORK) break;
          last = e;
          more = next(e);
          if (more < 0 || more - p >= RUN) break;
          q = more;
        }
        if (last >= 0) { take(last); p = more; continue; }
        // one element longer than LONG: read it the same way
        if (isObj) {
          const ke = stringEnd(s, p), key = nParse(nSlice(s, p, ke)), v0 = skipWs(s, skipWs(s, ke) + 1);
          define(out, key, value(s, v0));
        } else parts[parts.length] = [value(s, p)];
        p = next(END);
      }
      if (isObj) return out;
      return parts.length === 1 ? parts[0] : apply(nConcat, [], parts);
    }
    // InternalizeJSONProperty (ECMA-262 25.5.1.1): the reviver walks the result bottom up
    function internalize(holder, name, reviver) {
      const val = holder[name];
      if (val !== null && typeof val === "object") {
        const ks = isArray(val) ? null : keys(val), n = ks === null ? val.length : ks.length;
        for (let i = 0; i < n; i++) {
          const k = ks === null ? StringC(i) : ks[i], v = internalize(val, k, reviver);
          if (v === undefined) delete val[k]; else define(val, k, v);
        }
      }
      return apply(reviver, holder, [name, val, {}]);
    }
    defineProperty(JSON, "parse", { value: function parse(text, reviver) {
      let s = StringC(text);
      if (s.length <= WORK) return apply(nParse, JSON, arguments);
      s = nSlice(s, 0);   // a flat copy: every step on a rope (s + t) walks the rope
      const a = skipWs(s, 0);
      if (s[a] !== "[" && s[a] !== "{") return apply(nParse, JSON, [s, reviver]);   // one string or scalar
      const result = value(s, a), e = skipWs(s, END);
      if (e !== s.length) throw bad("unexpected character after the value", e);
      if (typeof reviver !== "function") return result;
      const root = {};
      define(root, "", result);
      return internalize(root, "", reviver);
    }, writable: true, enumerable: false, configurable: true });
  }
  if (CONF.guard) installGuards();
