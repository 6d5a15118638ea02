  // -- source compiled at run time: QuickJS's parser never looks at the interrupt handler, so under a
  // time limit every route that compiles a string (eval, direct or not, and the four Function
  // constructors) takes at most the policy's max_source_size (the bound a load has): each parse is
  // short and the deadline fires between two. A longer source is a RangeError the script may catch
  // (uncaught: SizeLimitError). Code compiled this way is rewritten like the script was at load
  // (evalsites.py, through COMPILE): a direct eval inside it checks its argument too.
  function installCompileGuards(MAXSRC) {
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
      if (n * 3 <= MAXSRC && plain(a) && (b.length === 0 || plain(b))) return null;   // at most three bytes a unit
      const r = COMPILE(kind, nSlice(a, 0), nSlice(b, 0)), tag = r[0];   // flat: the binding cannot read a rope
      if (tag === "0") return parse(nSlice(r, 1));
      if (tag === "1") throw tooBig(what);
      if (tag === "2") throw new SyntaxErrorC(what + ": " + nSlice(r, 1));
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
      if (typeof x !== "string" || (x.length * 3 <= MAXSRC && plain(x))) return x;
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
    // Error.prepareStackTrace's call sites hand out each frame's function: the natives wrapped here run
    // in a frame of their own (a wrapper calls them), and Kryon's own frames hold its helpers
    let siteProto = null;
    const savedPrepare = ErrorC.prepareStackTrace;   // an accessor: QuickJS keeps the function itself
    ErrorC.prepareStackTrace = (e, sites) => { siteProto = sites.length > 0 ? getProto(sites[0]) : null; return ""; };
    try { errStack(new ErrorC("call sites")); } finally { ErrorC.prepareStackTrace = savedPrepare; }
    if (siteProto !== null && typeof siteProto.getFunction === "function") {
      const nGetFunction = siteProto.getFunction, nGetFileName = siteProto.getFileName;
      const hidden = new WeakSetC([nEval, Fn, GenFn, AsyncFn, AsyncGenFn]);
      defineProperty(siteProto, "getFunction", { value: function getFunction() {
        const f = apply(nGetFunction, this, []);
        return hidden.has(f) || apply(nGetFileName, this, []) === "<kryon>" ? undefined : f;
      }, writable: true, enumerable: false, configurable: true });
    }
    // taken by the global lexical declarations the host runs next (state.py): `let eval` = the intrinsic
    defineProperty(G, "__kryon_evals", { value: [nEval, evalW, evalArg, evalArgs], configurable: true });
  }
  if (CONF.guard && CONF.maxSource !== null) installCompileGuards(CONF.maxSource);
