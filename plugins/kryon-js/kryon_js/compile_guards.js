  // -- source compiled at run time: QuickJS's parser never looks at the interrupt handler, so under a
  // time limit every route that compiles a string (eval, direct or not, and the four Function
  // constructors) takes at most the policy's max_source_size (the bound a load has): each parse is
  // short and the deadline fires between two. A longer source is a RangeError the script may catch
  // (uncaught: SizeLimitError). Under a memory limit (MAXSRC Infinity without a time limit) every
  // route first asks for room (prelude.js room): QuickJS's compiler crashes the process when an
  // allocation is refused midway. Code compiled this way is rewritten like the script was at load
  // (evalsites.py, through COMPILE): a direct eval inside it checks its argument too.
  function installCompileGuards(MAXSRC, costly) {
    const RangeErrorC = RangeError, SyntaxErrorC = SyntaxError, InternalErrorC = G.InternalError, StringC = String;
    const construct = Reflect.construct, setProto = Object.setPrototypeOf, iterSym = Symbol.iterator;
    const includes = call.bind(String.prototype.includes), nSlice = call.bind(String.prototype.slice);
    const nEval = geval;
    function tooBig(what) {
      const e = new RangeErrorC(what + ": the source is larger than the policy's max_source_size (" + MAXSRC + " bytes)");
      sizeErrors.add(e);
      return e;
    }
    // no eval, not even spelled with an escaped letter (evalsites.may_have_sites)
    // (exec, bound now: test would look up a script's replacement of RegExp.prototype.exec)
    const LETTER = /\\u(?:00(?:65|76|61|6[cC])|\{0*(?:65|76|61|6[cC])\})/, exec = call.bind(RegExp.prototype.exec);
    const plain = (s) => !includes(s, "eval") && (!includes(s, "\\u") || exec(LETTER, s) === null);
    // null: compile a and b as they are; else [a', b'] rewritten by the host
    function checked(kind, what, a, b) {
      const n = a.length + b.length;
      if (n > MAXSRC) throw tooBig(what);   // a UTF-16 unit is at least one UTF-8 byte
      room(n);
      // (and no regex literal in it can be too costly to compile: regexcost.py reads it otherwise)
      if (n * 3 <= MAXSRC && plain(a) && (b.length === 0 || plain(b)) && !costly(a) && !costly(b)) return null;
      const r = COMPILE(kind, nSlice(a, 0), nSlice(b, 0)), tag = r[0];   // flat: the binding cannot read a rope
      if (tag === "0") return parse(nSlice(r, 1));
      if (tag === "1") throw tooBig(what);
      if (tag === "2") throw new SyntaxErrorC(what + ": " + nSlice(r, 1));
      if (tag === "4") { const e = new RangeErrorC(what + ": " + nSlice(r, 1)); sizeErrors.add(e); throw e; }
      const e = new InternalErrorC("interrupted"); MARK(e); throw e;   // "3": the deadline passed meanwhile
    }
    const evalW = ({ eval(x) {
      if (typeof x !== "string") return x;
      const r = checked(0, "eval", x, "");
      return nEval(r === null ? x : r[0]);   // called through a name other than eval: a global eval
    } }).eval;
    // a direct call eval(a, ...) runs as eval(evalArg(a), ...); eval(...xs) as eval(...evalArgs([...xs])),
    // whose spread reads the array through an iterator of its own (a script may replace
    // Array.prototype[Symbol.iterator])
    function evalArg(x) {
      if (typeof x !== "string") return x;
      if (x.length * 3 <= MAXSRC && plain(x) && !costly(x)) { room(x.length); return x; }
      const r = checked(0, "eval", x, "");
      return r === null ? x : r[0];
    }
    function evalArgs(args) {
      if (args.length > 0 && typeof args[0] === "string") {
        const r = checked(0, "eval", args[0], "");
        if (r !== null) args[0] = r[0];
      }
      let i = 0;
      const it = { next() { return i < args.length ? { value: args[i++], done: false } : { value: undefined, done: true }; } };
      defineProperty(args, iterSym, { value: () => it });
      return args;
    }
    function ctor(native, name, kind) {
      const W = function (...args) {
        const n = args.length;
        let params = "", body = "";
        for (let i = 0; i < n - 1; i++) params = i === 0 ? StringC(args[i]) : params + "," + StringC(args[i]);
        if (n > 0) body = StringC(args[n - 1]);
        const r = checked(kind, name, params, body), target = new.target === undefined ? W : new.target;
        if (n === 0) return construct(native, [], target);
        return r === null ? construct(native, [params, body], target) : construct(native, r, target);
      };
      defineProperty(W, "name", { value: name });
      defineProperty(W, "length", { value: 1 });
      defineProperty(W, "prototype", { value: native.prototype, writable: false, enumerable: false, configurable: false });
      const d = getOwnDesc(native.prototype, "constructor");
      d.value = W;
      defineProperty(native.prototype, "constructor", d);
      return W;
    }
    const FunctionW = ctor(Fn, "Function", 1);
    const gd = getOwnDesc(G, "Function"); gd.value = FunctionW; defineProperty(G, "Function", gd);
    for (const [native, name, kind] of [[GenFn, "GeneratorFunction", 2], [AsyncFn, "AsyncFunction", 3],
                                        [AsyncGenFn, "AsyncGeneratorFunction", 4]]) {
      setProto(ctor(native, name, kind), FunctionW);
    }
    const ed = getOwnDesc(G, "eval"); ed.value = evalW; defineProperty(G, "eval", ed);
    // taken by the global lexical declarations the host runs next (state.py): `let eval` = the intrinsic
    defineProperty(G, "__kryon_evals", { value: [nEval, evalW, evalArg, evalArgs], configurable: true });
    return [nEval, Fn, GenFn, AsyncFn, AsyncGenFn];
  }

  // Error.prepareStackTrace's call sites hand out each frame's function: the natives the guards wrap run
  // in a frame of their own (a wrapper calls them), and Kryon's own frames hold its helpers
  function hideFromCallSites(natives) {
    let siteProto = null;
    const savedPrepare = ErrorC.prepareStackTrace;   // an accessor: QuickJS keeps the function itself
    ErrorC.prepareStackTrace = (e, sites) => { siteProto = sites.length > 0 ? getProto(sites[0]) : null; return ""; };
    try { errStack(new ErrorC("call sites")); } finally { ErrorC.prepareStackTrace = savedPrepare; }
    if (siteProto !== null && typeof siteProto.getFunction === "function") {
      const nGetFunction = siteProto.getFunction, nGetFileName = siteProto.getFileName;
      const hidden = new WeakSetC(natives);
      defineProperty(siteProto, "getFunction", { value: function getFunction() {
        const f = apply(nGetFunction, this, []);
        return hidden.has(f) || apply(nGetFileName, this, []) === "<kryon>" ? undefined : f;
      }, writable: true, enumerable: false, configurable: true });
    }
  }
  // -- regular expressions compiled at run time: QuickJS's regex compiler never polls, and the watchdog's
  // cut (cutoff.py) lands only at its next allocation. One shape works long without allocating: each
  // `|` of a disjunction moves the bytecode compiled so far (a quadratic number of byte moves, between
  // two growths of one buffer), and each forward named reference `\k<name>` rescans the whole pattern.
  // So under a time limit a pattern compiled from run-time text is measured first: its length times
  // (its `|` count + KREF x its `\k<` count) may be at most REWORK (about 0.1 s of CPU for the worst
  // shape on a 2-core x86-64 machine, measured; the cut bounds every other shape). A larger pattern is a
  // RangeError the script may catch (uncaught: SizeLimitError). Every route to the compiler passes here:
  // the RegExp constructor (global, RegExp.prototype.constructor, a subclass's super()), RegExp() called,
  // RegExp.prototype.compile, String.prototype.match/matchAll/search with a non-RegExp, and the species
  // construction of RegExp.prototype[Symbol.split]/[Symbol.matchAll] (whose default is the intrinsic).
  // Each computes the pattern and flags text once (a getter or toString cannot answer the check and the
  // compiler differently) and hands the natives strings only.
  function installRegexGuards() {
    const REWORK = 2 ** 30, KREF = 16, FREE = 8192;
    const NativeRE = RegExp, REP = NativeRE.prototype, SP = String.prototype;
    const construct = Reflect.construct, RangeErrorC = RangeError, TypeErrorC = TypeError;
    const matchSym = Symbol.match, matchAllSym = Symbol.matchAll, speciesSym = Symbol.species;
    const nReplaceAll = call.bind(SP.replaceAll), nIncludes = call.bind(SP.includes);
    const nSource = call.bind(getOwnDesc(REP, "source").get), nFlags = call.bind(getOwnDesc(REP, "flags").get);
    const natives = [];   // what Error.prepareStackTrace's call sites must not hand out (hideFromCallSites)
    const isObj = (x) => x !== null && (typeof x === "object" || typeof x === "function");
    // a RegExp object (the internal slot): the global getter throws for anything else but the prototype
    const nGlobal = call.bind(getOwnDesc(REP, "global").get);
    function isRE(x) { if (!isObj(x) || x === REP) return false; try { nGlobal(x); return true; } catch (_) { return false; } }
    function isRegExp(x) { if (!isObj(x)) return false; const m = x[matchSym]; return m !== undefined ? !!m : isRE(x); }
    // null, or why compiling p would take too long (regexcost.py says the same of literals)
    function overBound(p) {
      const n = p.length;
      if (n <= FREE) return null;
      const bars = n - nReplaceAll(p, "|", "").length, refs = (n - nReplaceAll(p, "\\k<", "").length) / 3;
      if (n * (bars + KREF * refs) <= REWORK) return null;
      return "the pattern is too costly to compile under the policy's time_limit (" + n +
        " characters x (" + bars + " '|' + " + KREF + " x " + refs + " '\\k<'), at most " + REWORK + ")";
    }
    function checkPattern(what, p) {
      const why = overBound(p);
      if (why === null) return;
      const e = new RangeErrorC(what + ": " + why);
      sizeErrors.add(e);
      throw e;
    }
    // ToString (a Symbol throws, as in the natives; String() would describe it)
    const toStr = (v) => `${v}`, str = (v) => (v === undefined ? "" : toStr(v));
    // [pattern, flags] as the constructor reads them (RegExpCreate steps), as strings
    function parts(pattern, flags) {
      if (isRE(pattern)) return [nSource(pattern), flags === undefined ? nFlags(pattern) : str(flags)];
      if (isRegExp(pattern)) { const p = pattern.source; return [str(p), str(flags === undefined ? pattern.flags : flags)]; }
      return [str(pattern), str(flags)];
    }
    const RegExpW = function RegExp(pattern, flags) {
      const nt = new.target === undefined ? RegExpW : new.target;
      if (typeof pattern === "string" && (flags === undefined || typeof flags === "string")) {   // the common case, fast
        if (pattern.length > FREE) checkPattern("RegExp", pattern);
        return construct(NativeRE, [pattern, flags], nt);
      }
      if (new.target === undefined && flags === undefined && isRegExp(pattern) && pattern.constructor === RegExpW) return pattern;
      const pf = parts(pattern, flags);
      checkPattern("RegExp", pf[0]);
      return construct(NativeRE, pf, nt);
    };
    for (const k of Reflect.ownKeys(NativeRE)) {   // the statics (Symbol.species answers `this`: RegExpW)
      if (k !== "prototype") defineProperty(RegExpW, k, getOwnDesc(NativeRE, k));
    }
    defineProperty(RegExpW, "prototype", { value: REP, writable: false, enumerable: false, configurable: false });
    const cd = getOwnDesc(REP, "constructor"); cd.value = RegExpW; defineProperty(REP, "constructor", cd);
    const gd = getOwnDesc(G, "RegExp"); gd.value = RegExpW; defineProperty(G, "RegExp", gd);
    function put(obj, key, name, f, length) {
      defineProperty(f, "name", { value: name });
      defineProperty(f, "length", { value: length });
      const d = getOwnDesc(obj, key); d.value = f; defineProperty(obj, key, d);
    }
    const nCompile = REP.compile;
    if (typeof nCompile === "function") {
      put(REP, "compile", "compile", function compile(pattern, flags) {
        if (isRE(pattern) && flags !== undefined) return apply(nCompile, this, [pattern, flags]);   // its own TypeError
        const [p, f] = isRE(pattern) ? [nSource(pattern), nFlags(pattern)] : [str(pattern), str(flags)];
        if (!isRE(this)) return apply(nCompile, this, [p, f]);   // its own TypeError, nothing compiled
        checkPattern("RegExp.prototype.compile", p);
        return apply(nCompile, this, [p, f]);
      }, 2);
    }
    function coercible(o, name) {
      if (o === null || o === undefined) throw new TypeErrorC("String.prototype." + name + " called on null or undefined");
    }
    // match and search: a non-null argument's own method first; else the string is compiled (no flags)
    for (const [name, sym] of [["match", matchSym], ["search", Symbol.search]]) {
      const native = SP[name];
      put(SP, name, name, function (regexp) {
        coercible(this, name);
        if (regexp !== null && regexp !== undefined) { const m = regexp[sym]; if (m !== undefined && m !== null) return apply(m, regexp, [this]); }
        const s = toStr(this), p = str(regexp);
        checkPattern("String.prototype." + name, p);
        return apply(native, s, [p]);
      }, 1);
      natives.push(native);
    }
    const nMatchAll = SP.matchAll;
    put(SP, "matchAll", "matchAll", function matchAll(regexp) {
      coercible(this, "matchAll");
      if (regexp !== null && regexp !== undefined) {
        if (isRegExp(regexp)) {
          const fl = regexp.flags;
          coercible(fl, "matchAll");
          if (!nIncludes(toStr(fl), "g")) throw new TypeErrorC("regexp must have the 'g' flag");
        }
        const m = regexp[matchAllSym];
        if (m !== undefined && m !== null) return apply(m, regexp, [this]);
      }
      const s = toStr(this), p = str(regexp);
      checkPattern("String.prototype.matchAll", p);
      return apply(nMatchAll, s, [p]);
    }, 1);
    // RegExp.prototype[Symbol.split] and [Symbol.matchAll] construct through this.constructor[Symbol.species],
    // the intrinsic RegExp when that is undefined. For a RegExp object the intrinsic compiles its own source:
    // measured here. Anything else passes as a stand-in that answers what the native reads (constructor,
    // flags, lastIndex) with values read once, and whose species is the checked constructor by default.
    function species(o) {
      const c = o.constructor;
      if (c === undefined) return RegExpW;
      if (!isObj(c)) throw new TypeErrorC("the constructor is not an object");
      const s = c[speciesSym];
      return s === undefined || s === null ? RegExpW : s;
    }
    for (const [sym, name, withIndex] of [[Symbol.split, "[Symbol.split]", false], [matchAllSym, "[Symbol.matchAll]", true]]) {
      const native = REP[sym];
      put(REP, sym, name, function (string, limit) {
        if (isRE(this) || !isObj(this)) {   // a RegExp: its own source is what the intrinsic compiles; else a TypeError
          if (isObj(this)) checkPattern("RegExp.prototype" + name, nSource(this));
          return apply(native, this, withIndex ? [string] : [string, limit]);
        }
        const rx = this, s = toStr(string), c = species(rx), fl = toStr(rx.flags);
        const stand = create(null);
        defineProperty(stand, "constructor", { value: { [speciesSym]: c } });
        defineProperty(stand, "flags", { value: fl });
        if (withIndex) defineProperty(stand, "lastIndex", { value: rx.lastIndex });
        defineProperty(stand, "source", { get() { return rx.source; } });
        defineProperty(stand, matchSym, { get() { return rx[matchSym]; } });
        defineProperty(stand, Symbol.toPrimitive, { value() { return toStr(rx); } });
        return apply(native, stand, withIndex ? [s] : [s, limit]);
      }, withIndex ? 1 : 2);
      natives.push(native);
    }
    natives.push(NativeRE, nMatchAll);
    if (typeof nCompile === "function") natives.push(nCompile);
    // whether source text may hold a literal over the bound (its whole text counted as one pattern)
    return [natives, (text) => overBound(text) !== null];
  }
  // a time limit: the regex guard, and the eval guard bounding source size when the policy has a
  // max_source_size; a memory limit: the eval guard for its room check (no bound without a time limit)
  if (CONF.guard || CONF.evalGuard) {
    const [regexNatives, costly] = CONF.guard ? installRegexGuards() : [[], () => false];
    const evalNatives = CONF.evalGuard ? installCompileGuards(CONF.maxSource === null ? Infinity : CONF.maxSource, costly) : [];
    hideFromCallSites([...evalNatives, ...regexNatives]);
  }
