-- Kryon's Lua prelude: run once in every Lua runtime the engine creates.
--
-- It builds the base environment scripts see (the whole of _G when trusted,
-- a curated copy when sandboxed), the debug hook that enforces time and
-- recursion limits and stops at breakpoints, and the helpers the Python side
-- calls: loading chunks into per-script environments, listing the functions
-- a script defines, and reading the stack and locals. Scripts never see this
-- table; it keeps private references to `debug` and `load`.

-- counted: the count hook runs (sandboxed, or a trusted policy with a time or recursion limit)
local sandboxed, grants, out, check_time, on_breakpoint, setcap, bounded, counted = ...

local debug, string, table, coroutine, math, utf8, os = debug, string, table, coroutine, math, utf8, os
local getinfo, getlocal, sethook = debug.getinfo, debug.getlocal, debug.sethook
local load, pcall, xpcall, error, type, tostring = load, pcall, xpcall, error, type, tostring
local select, setmetatable, pairs, ipairs, rawget = select, setmetatable, pairs, ipairs, rawget

-- LuaJIT is Lua 5.1: no table.pack / table.unpack
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local LIMIT = "kryon-limit:"
local DENIED = "kryon-denied:"
local SIZE = "kryon-size:" -- a size limit: an error a script may catch, SizeLimitError if it does not

local K = { state = { maxdepth = 0, breakpoints = {}, overdrawn = false } }
local state = K.state

-- A finalizer is script code, run by whatever allocation steps the
-- collector: in a trusted state with a memory cap the collector is held
-- whenever the cap is off or raised (between calls, host code running for a
-- script, an overdraft) and runs only with script code (K.capped,
-- K.fastcapped), so no finalizer runs above the cap. (A collector the script
-- stopped itself stays stopped.)
local gcheld = false

function K.hold_gc()
  if not gcheld and collectgarbage("isrunning") then
    collectgarbage("stop")
    gcheld = true
  end
end

local function release_gc()
  if gcheld then
    gcheld = false
    collectgarbage("restart")
  end
end
K.release_gc = release_gc

-- The overdraft (runtime.py, Runtime._cap_for_error): a host function's
-- error that found no room under the memory cap is pushed with the cap raised
-- above the memory in use, `state.overdrawn` set and the collector held. The
-- raised cap is for that push alone: the first Lua code to see the error (a
-- message handler, or the handler of the pcall, xpcall or coroutine wrapper
-- it reaches) puts the cap itself back before the stack unwinds, so no
-- `<close>` handler or finalizer runs above the cap: kept, what one
-- allocated there would add up call after call.
local function lower()
  if state.overdrawn then
    setcap(true) -- the cap itself (Runtime._setcap lowers a raised cap)
    release_gc()
  end
end

local function lowering(e)
  lower()
  return e
end

local function is_limit(e)
  return type(e) == "string" and (e:find(LIMIT, 1, true) ~= nil or e:find("not enough memory", 1, true) ~= nil)
end

-- print goes to the host's output handler, tab-separated like Lua's own
local function kprint(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  out(table.concat(parts, "\t"))
end

local function copy(t)
  if t == nil then return nil end -- LuaJIT has no utf8 library
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function denied(name)
  return function()
    error(DENIED .. name .. " is not available under a sandboxed policy", 2)
  end
end

-- pcall, xpcall and coroutine.resume must not swallow a limit: a script that
-- wraps an endless loop in pcall would otherwise outlive its time limit.
-- Once the deadline has passed, any error counts as the limit: the hook's
-- error raised inside a message handler arrives as "error in error handling".
local function rethrow_limits(ok, ...)
  if not ok then
    local e = ...
    if is_limit(e) then error(e, 0) end
    if check_time() then error(LIMIT .. "timeout", 0) end
  end
  return ok, ...
end

-- The library tables sandboxed scripts see: their own copies, with the
-- functions that could run unbounded in C replaced by bounded ones
-- (sandbox.lua).
local function bounded_string()
  local s = copy(string)
  for _, name in ipairs { "find", "match", "gmatch", "gsub", "rep" } do
    if s[name] ~= nil then s[name] = bounded[name] end
  end
  return s
end

local function bounded_table()
  local t = copy(table)
  for _, name in ipairs { "concat", "move", "insert", "remove", "sort" } do
    if t[name] ~= nil then t[name] = bounded[name] end
  end
  return t
end

local base
local denied_globals = {}
if sandboxed then
  base = {}
  for _, name in ipairs { "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen",
    "rawset", "select", "tonumber", "tostring", "type", "getmetatable", "_VERSION" } do
    base[name] = _G[name]
  end
  -- A finalizer runs inside the collector with hooks off, where no time limit
  -- can reach it (and at unload, outside any call): sandboxed scripts get none.
  base.setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error(DENIED .. "__gc finalizers are not available under a sandboxed policy", 2)
    end
    return setmetatable(t, mt)
  end
  base.pcall = function(f, ...) return rethrow_limits(xpcall(f, lowering, ...)) end
  base.xpcall = function(f, handler, ...)
    return rethrow_limits(xpcall(f, function(e)
      lower()
      if is_limit(e) then return e end
      return handler(e)
    end, ...))
  end
  base.collectgarbage = function(opt)
    if opt == "count" then return collectgarbage("count") end
    error(DENIED .. "collectgarbage('" .. tostring(opt) .. "') is not available under a sandboxed policy", 2)
  end
  local safe_os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
  for _, name in ipairs { "execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale" } do
    safe_os[name] = denied("os." .. name)
  end
  if grants.processes then safe_os.execute = os.execute end
  if grants.files then
    safe_os.remove, safe_os.rename, safe_os.tmpname = os.remove, os.rename, os.tmpname
    base.io = io
  else
    denied_globals.io = true
  end
  if grants.imports then
    base.require, base.package = require, package
  else
    denied_globals.require, denied_globals.package = true, true
  end
  denied_globals.dofile, denied_globals.loadfile, denied_globals.debug = true, true, true
  denied_globals.python = true
  base.os = safe_os
  -- Method calls on strings use the string metatable, shared by every script
  -- in this runtime: point it at a private copy and hide it.
  local smt = getmetatable("")
  smt.__index = bounded_string()
  smt.__metatable = false
else
  base = _G
end
base.print = kprint
_G.print = kprint

-- LuaJIT does not run debug hooks inside compiled traces, so a state that
-- must stop endless loops (sandboxed, or trusted with a limit) keeps the JIT
-- compiler off (the LuaJIT interpreter, which does run hooks, still executes
-- the scripts).
if counted and jit then jit.off() end

local hook -- defined below

-- A Lua hook function belongs to one coroutine: each new one gets it here,
-- or a loop inside it would never meet the time limit.
local create = coroutine.create
local function hooked_create(f)
  local co = create(f)
  if state.hookmask then sethook(co, hook, state.hookmask, state.hookcount) end
  return co
end

-- Resumes. lupa reads a table field for the host by pushing onto the stack
-- of the thread the table's wrapper was made on (the main thread, for nearly
-- every object the host holds) and takes everything on that thread's current
-- frame as the result; its calls into Lua empty that frame first. While a
-- coroutine runs, the thread that resumed it waits inside the C function
-- that did, and Lua's coroutine.resume keeps the coroutine on its frame: a
-- host function called from inside the coroutine read (thread, value) for a
-- value, and a host call into Lua dropped the only reference to a coroutine
-- that was itself resuming another (collected while it waited: the host
-- process crashed). A coroutine.wrap function keeps its coroutine as an
-- upvalue and nothing on the caller's frame, so every resume (and close)
-- runs inside a resumer: a coroutine made by coroutine.wrap whose loop
-- applies Lua's own function to the target and yields the results back.
-- Results, errors and the target's stack after an error are Lua's own. A
-- resumer is reused once free: there are as many as resumes in progress at
-- once (each costs a second level of Lua's C-call nesting limit).
local raw_resume, raw_yield, raw_wrap, raw_status = coroutine.resume, coroutine.yield, coroutine.wrap, coroutine.status
local raw_close = coroutine.close -- Lua 5.4 only

local function resumer_loop(f, ...)
  return resumer_loop(raw_yield(f(...)))
end

local resumers, nresumers = {}, 0

-- The pool's slot and count change in an order that a limit's error raised
-- by the count hook between any two of these steps leaves consistent (at
-- worst a resumer dropped): the count never covers an empty slot.
local function resumed(w, ok, ...)
  if ok then
    resumers[nresumers + 1] = w
    nresumers = nresumers + 1
    return ...
  end
  return false, ... -- raised in the resumer's own loop (a limit, or memory): it is dead, not reused
end

local function via_resumer(f, co, ...)
  local w = nresumers > 0 and resumers[nresumers] or nil
  if w ~= nil then
    nresumers = nresumers - 1
    resumers[nresumers + 1] = nil
  else
    w = raw_wrap(resumer_loop)
  end
  return resumed(w, pcall(w, f, co, ...))
end

local function resume(co, ...)
  if type(co) ~= "thread" then return raw_resume(co, ...) end -- Lua's own error, at the caller's line
  return via_resumer(raw_resume, co, ...)
end

local close = raw_close and function(co)
  local s = type(co) == "thread" and raw_status(co)
  if s ~= "suspended" and s ~= "dead" then return raw_close(co) end -- Lua's own error, at the caller's line
  return via_resumer(raw_close, co)
end

coroutine.resume, coroutine.close = resume, close -- a trusted script's (the global table is theirs)
K.raw_resume = raw_resume -- the debugger's hook tells resumes by it

local function coroutine_lib()
  local c = copy(coroutine)
  c.resume = function(co, ...) return rethrow_limits(resume(co, ...)) end
  -- close runs the coroutine's pending __close handlers and returns their error: a limit
  -- raised in one is not the script's to catch either
  if close then c.close = function(co) return rethrow_limits(close(co)) end end
  c.create = hooked_create
  c.wrap = function(f)
    local co = hooked_create(f)
    return function(...)
      local r = pack(resume(co, ...))
      if r[1] then return unpack(r, 2, r.n) end
      error(r[2], 0)
    end
  end
  return c
end

-- Lua's parser runs in C, where the count hook cannot stop it: a sandboxed
-- script's `load` takes a chunk no larger than the script's own source may be
-- (max_source_size; parsing that much costs well under a second). A reader
-- function's pieces are counted as they come.
local function too_big(max)
  return SIZE .. "load: the chunk is larger than the policy's max_source_size (" .. max .. " bytes)"
end

local function bounded_load(chunk, name, mode, env, max)
  if type(chunk) == "string" then
    if #chunk > max then error(too_big(max), 3) end
    return load(chunk, name, mode, env)
  end
  if type(chunk) ~= "function" then return load(chunk, name, mode, env) end
  local total, over = 0, false
  local function read()
    local piece = chunk()
    if type(piece) == "string" then
      total = total + #piece
      if total > max then over = true; return nil end
    end
    return piece
  end
  local f, err = load(read, name, mode, env)
  if over then error(too_big(max), 3) end
  return f, err
end

-- A fresh environment for one script: its globals live here; reads fall back
-- to the base. Sandboxed scripts get their own copies of the libraries, so
-- one script patching string or table never reaches another. `max_chunk`:
-- the most a sandboxed script's `load` parses at once (nil: no bound).
function K.newenv(bind, resolve, max_chunk)
  local env = {}
  local meta = { __metatable = false }
  if sandboxed then
    env.string, env.table, env.math, env.utf8 = bounded_string(), bounded_table(), copy(math), copy(utf8)
    env.os, env.coroutine = copy(base.os), coroutine_lib()
    meta.__index = function(_, key)
      if denied_globals[key] then
        error(DENIED .. tostring(key) .. " is not available under a sandboxed policy", 2)
      end
      return base[key]
    end
  else
    meta.__index = base
  end
  env._G = env
  env.load = function(chunk, name, mode, chunk_env)
    if type(chunk) == "string" and chunk:byte(1) == 27 and sandboxed then
      error(DENIED .. "loading binary chunks is not available under a sandboxed policy", 2)
    end
    if sandboxed and max_chunk then -- not a tail call: its errors name the script's line (level 3)
      local f, err = bounded_load(chunk, name, "t", chunk_env or env, max_chunk)
      return f, err
    end
    return load(chunk, name, sandboxed and "t" or mode, chunk_env or env)
  end
  if resolve ~= nil then
    -- `require` of the modules the policy grants (allowed_modules): the
    -- host says which; a module runs once per script, in its environment.
    local loaded = {}
    env.require = function(name)
      local mod = loaded[name]
      if mod ~= nil then return mod end
      local found = resolve(name)
      if found == "std:" then
        mod = env[name]
      elseif found == "big:" then -- the module's source is over max_source_size: bounded as `load` is
        error(SIZE .. "require('" .. tostring(name) .. "'): the module is larger than the policy's max_source_size ("
          .. tostring(max_chunk) .. " bytes)", 2)
      else
        local f, err = load(found:sub(5), "=" .. tostring(name), "t", env)
        if not f then error(err, 0) end
        mod = f(name)
        if mod == nil then mod = true end
      end
      loaded[name] = mod
      return mod
    end
  end
  if bind ~= nil then
    -- This script's own `kryon` API, bound on first use of each name:
    -- bind(name) makes the host function for this script, kept in `cache`.
    local cache = {}
    for k, v in next, K.async_api do cache[k] = v end
    setmetatable(cache, { __index = function(c, key)
      if type(key) ~= "string" then return nil end
      local f = bind(key)
      if f ~= nil then rawset(c, key, f) end
      return f
    end })
    env.kryon = setmetatable({}, {
      __index = cache,
      __newindex = function(_, key) error("kryon." .. tostring(key) .. " is read-only", 2) end,
      __metatable = false,
    })
  end
  return setmetatable(env, meta)
end

-- Load a chunk (source text or our own bytecode) into an environment.
function K.load(code, chunkname, env)
  local mode = (type(code) == "string" and code:byte(1) == 27) and "b" or "t"
  local f, err = load(code, chunkname, mode, env)
  if not f then error(err, 0) end
  if setfenv then setfenv(f, env) end -- LuaJIT: make sure the chunk sees only its environment
  return f
end

local function describe(f)
  local info = getinfo(f, "uS")
  local params = {}
  for i = 1, info.nparams do params[i] = getlocal(f, i) end
  return { nparams = info.nparams, vararg = info.isvararg, line = info.linedefined, params = params,
    source = info.source }
end

-- The functions a script defines: its globals, and the fields of a table its
-- chunk returned (the module style `local M = {} ... return M`). Raw access
-- only: the host runs this outside any call, so no script metamethod
-- (__pairs, __index) may run here.
function K.functions(env, returned)
  local found = {}
  for k, v in next, env do
    if type(k) == "string" and type(v) == "function" and k ~= "load" then found[k] = describe(v) end
  end
  if type(returned) == "table" then
    for k, v in next, returned do
      if type(k) == "string" and type(v) == "function" and found[k] == nil then found[k] = describe(v) end
    end
  end
  return found
end

function K.lookup(env, returned, name)
  local f = rawget(env, name)
  if f == nil and type(returned) == "table" then f = rawget(returned, name) end
  return f
end

-- Where `f` was defined, and `f` itself: the host keeps this one, made on the
-- thread the host called from, not the coroutine that handed `f` over (a
-- wrapper lupa makes belongs to the thread it was made on, which may be
-- collected long before the host lets go of the function).
function K.source_of(f)
  local info = getinfo(f, "S")
  return info.source, info.linedefined, f
end

-- The stack from `level` outwards, innermost first.
function K.stack(level)
  local frames = {}
  local i = level or 2
  while true do
    local info = getinfo(i, "Sln")
    if not info then break end
    local name = info.name
    if not name then
      name = info.what == "main" and "main chunk" or ("function <" .. info.source:sub(2) .. ":" .. info.linedefined .. ">")
    end
    frames[#frames + 1] = { source = info.source, line = info.currentline, name = name, what = info.what }
    i = i + 1
  end
  return frames
end

-- LuaJIT cannot walk the stack past lupa's C boundary: from inside a host
-- function its caller is invisible. Under LuaJIT host functions reach scripts
-- wrapped, so the calling position is recorded on the way in (and restored on
-- the way out, for nested calls); errors and stack traces fall back to it.
local function host_restore(source, line, name, ...)
  state.host_source, state.host_line, state.host_name = source, line, name
  return ...
end

function K.hostfn(f)
  return function(...)
    local info = getinfo(2, "Sln") -- nil after a tail call: LuaJIT drops the caller's frame
    local source, line, name = state.host_source, state.host_line, state.host_name
    if info then
      state.host_source, state.host_line, state.host_name = info.source, info.currentline, info.name
    else
      state.host_source, state.host_line, state.host_name = nil, nil, nil
    end
    return host_restore(source, line, name, f(...))
  end
end

function K.locals(level)
  local vars = {}
  local i = 1
  while true do
    local name, value = getlocal(level, i)
    if not name then break end
    if name:sub(1, 1) ~= "(" then vars[name] = value end
    i = i + 1
  end
  return vars
end

-- The innermost frame of script code from `level` outwards (the bounded
-- library functions and the prelude are not the script's position).
local INTERNAL = { ["=kryon-sandbox"] = true, ["=kryon-prelude"] = true, ["=[C]"] = true }
local function script_frame(level)
  while true do
    local info = getinfo(level, "Sl")
    if not info then return nil end
    if not INTERNAL[info.source] and info.what ~= "C" then return info end
    level = level + 1
  end
end

-- Limits are checked on the count hook alone, every 1000 VM instructions: the
-- deadline, and the stack depth (a recursion deeper than max_recursion is
-- caught within those instructions, a few hundred frames at most past the
-- limit). A call hook would be exact but runs a Lua function on every call,
-- which made every sandboxed call several times slower.
local function check_limits()
  local info = getinfo(3, "Sl")
  if info and INTERNAL[info.source] then info = script_frame(4) end
  if info then state.where_source, state.where_line = info.source, info.currentline end
  if check_time() then
    if info and info.currentline and info.currentline > 0 then
      error(info.source:sub(2) .. ":" .. info.currentline .. ": " .. LIMIT .. "timeout", 0)
    end
    error(LIMIT .. "timeout", 0)
  end
  local limit = state.maxdepth
  if limit > 0 and getinfo(limit + 3, "l") ~= nil then error(LIMIT .. "recursion", 3) end
end

-- Ticks of the count hook are also counted in a line hook's own
-- instructions and dropped there; with breakpoints set, line events check
-- the limits too, every LINE_CHECK lines.
local LINE_CHECK = 100
local lines = 0

hook = function(event, line)
  if event == "count" then
    check_limits()
  elseif event == "line" then
    if counted then
      lines = lines + 1
      if lines >= LINE_CHECK then lines = 0; check_limits() end
    end
    local bps = state.breakpoints[getinfo(2, "S").source]
    local id = bps and bps[line]
    if id then on_breakpoint(id, getinfo(2, "S").source, line) end
  end
end

-- Which events the hook needs: limits only in a counted state, lines only
-- when a breakpoint is set (a line hook slows every line).
function K.sethooks(with_lines)
  local mask = ""
  if with_lines then mask = "l" end
  if mask == "" and not counted then
    sethook()
    state.hookmask = nil
  else
    state.hookmask, state.hookcount = mask, counted and 1000 or 0
    sethook(hook, mask, state.hookcount)
  end
end

-- A trusted state with a memory cap: a host function's error that found no
-- room under the cap is pushed with the cap raised for it (runtime.py,
-- Runtime._cap_for_error), which sets state.overdrawn. No pcall, xpcall or
-- coroutine.resume may catch that error (nor a message handler see it), or a
-- script could catch it, fill the extra room and repeat, past its cap without
-- bound. (Sandboxed states end the call through their deadline instead.)
local OVERDRAWN = LIMIT .. "memory"
local function rethrow_overdrawn(ok, ...)
  if not ok and state.overdrawn then error(OVERDRAWN, 0) end
  if not ok and counted then
    -- a trusted state with a time or recursion limit: as the sandbox's
    -- rethrow_limits, but a trusted script may still catch a memory error
    local e = ...
    if type(e) == "string" and e:find(LIMIT, 1, true) ~= nil then error(e, 0) end
    if check_time() then error(LIMIT .. "timeout", 0) end
  end
  return ok, ...
end

-- Lua 5.4's coroutine.wrap closes a coroutine that failed (runs its
-- `<close>` handlers) before the error reaches any handler: under a cap, the
-- wrap function is this one, which puts the cap back first.
local function wrapped(co, ok, ...)
  if ok then return ... end
  local e = ...
  lower()
  if close then
    local closed, err = close(co)
    if not closed then e = err end
  end
  if state.overdrawn then error(OVERDRAWN, 0) end
  if type(e) == "string" and e ~= "not enough memory" then error(e, 2) end -- the caller's position, as Lua's
  error(e, 0)
end

-- The catchers of a trusted state with a memory cap (the overdraft above) or
-- a time or recursion limit (`counted`: no pcall, xpcall handler or resume
-- keeps a limit from ending the call, and every coroutine a script makes
-- runs the count hook, as in the sandbox).
function K.guard_catchers()
  _G.pcall = function(f, ...) return rethrow_overdrawn(xpcall(f, lowering, ...)) end
  _G.xpcall = function(f, handler, ...)
    return rethrow_overdrawn(xpcall(f, function(e)
      if state.overdrawn then
        lower()
        return e
      end
      if counted and type(e) == "string" and e:find(LIMIT, 1, true) ~= nil then return e end
      return handler(e)
    end, ...))
  end
  coroutine.create = hooked_create
  coroutine.resume = function(co, ...) return rethrow_overdrawn(resume(co, ...)) end
  if close then coroutine.close = function(co) return rethrow_overdrawn(close(co)) end end
  coroutine.wrap = function(f)
    local co = hooked_create(f)
    return function(...) return wrapped(co, resume(co, ...)) end
  end
end

function K.traceback(co, message)
  return debug.traceback(co, message)
end

function K.memory()
  return math.floor(collectgarbage("count") * 1024)
end

function K.collect()
  local before = collectgarbage("count")
  collectgarbage("collect")
  return math.floor(before * 1024), math.floor(collectgarbage("count") * 1024)
end

-- Cooperative async for call_function_async: these yield a request to the
-- host's loop, which answers and resumes the coroutine.
K.async_api = {
  sleep = function(ms)
    if not coroutine.isyieldable() then
      error("kryon.sleep works only in a function called with call_function_async", 2)
    end
    return coroutine.yield({ op = "sleep", ms = ms })
  end,
  callAsync = function(name, ...)
    if not coroutine.isyieldable() then
      error("kryon.callAsync works only in a function called with call_function_async", 2)
    end
    return coroutine.yield({ op = "call", name = name, args = pack(...) })
  end,
}

-- One coroutine for call_function_async, stepped from the host:
-- step(...) -> true, status, values... | false, traceback, status
-- abandon(source) -> the line where the suspended coroutine stood in chunk
-- `source` (or nil), after closing it: its pending to-be-closed variables run
-- (Lua 5.4; LuaJIT has no coroutine.close and drops it), under its hook. Their
-- errors are dropped: nobody awaits the call any more.
local close_coroutine = close  -- through a resumer, as every close (Resumes, above)
function K.stepper(f)
  local co = hooked_create(f)
  local function step(...)
    local r = pack(resume(co, ...))
    local status = coroutine.status(co)
    if not r[1] then
      if is_limit(r[2]) then error(r[2], 0) end
      return false, debug.traceback(co, tostring(r[2])), status
    end
    return true, status, unpack(r, 2, r.n)
  end
  local function abandon(source)
    if coroutine.status(co) ~= "suspended" then return nil end
    local line = nil
    for level = 0, 50 do
      local info = debug.getinfo(co, level, "Sl")
      if info == nil then break end
      if info.source == source and info.currentline and info.currentline > 0 then line = info.currentline break end
    end
    if close_coroutine then pcall(close_coroutine, co) end
    return line
  end
  return step, abandon
end

-- Calls under a memory cap: the host switches the cap on only from in here,
-- after the arguments are pushed, and off before results or errors leave, so
-- no allocation it makes outside Lua's protection can be refused (that would
-- be a panic: the end of the process). The message handler lifts the cap
-- first, or a traceback could not be built for a memory error at the cap.
-- While a debugger is attached, the message handlers of the host's calls
-- first give it the error, where it was raised and before the stack unwinds:
-- an error no script pcall catches (one the VM raises included) stops there
-- with its locals (debugger.lua sets the handler).
local boundary_handler = nil
function K.set_boundary_handler(h) boundary_handler = h end

-- (the cap goes back on before the stack unwinds: `<close>` handlers run
-- there, and must run under the cap; lifting it here let them allocate
-- without bound; it goes back to the cap itself after an overdraft)
local function capped_error(e)
  setcap(false)
  if boundary_handler ~= nil then e = boundary_handler(e) end
  if type(e) == "string" then e = debug.traceback(e, 2) end
  setcap(true)
  lower()
  return e
end

-- A call into a state without a cap while a debugger is attached: only for
-- the message handler above (see runtime.py, Runtime._call).
local function boundary_error(e)
  if boundary_handler ~= nil then e = boundary_handler(e) end
  if type(e) == "string" then return debug.traceback(e, 2) end
  return e
end

local function boundary_finish(ok, ...)
  if ok then return ... end
  error((...), 0)
end

function K.boundary_call(f, ...)
  state.where_source = nil
  return boundary_finish(xpcall(f, boundary_error, ...))
end

local function capped_finish(ok, ...)
  setcap(false)
  if ok then return ... end
  error((...), 0)
end

local function capped_run(f, ...)
  setcap(true) -- an error before xpcall is caught by the host's own protected call
  return capped_finish(xpcall(f, capped_error, ...))
end

-- A call made from host code that holds the collector (a host function a
-- script called, calling back in): the script's code collects as usual, and
-- the collector is held again for the host code it returns to.
local function held_finish(ok, ...)
  K.hold_gc()
  if not ok then error((...), 0) end
  return ...
end

local function held_call(run, f, ...)
  release_gc()
  return held_finish(pcall(run, f, ...))
end

function K.capped(f, ...)
  state.where_source = nil -- the last position seen belongs to an earlier call
  if gcheld then return held_call(capped_run, f, ...) end
  return capped_run(f, ...)
end

-- The cheaper capped call: the host switches the cap on and off itself,
-- having checked there is room for lupa to push the arguments. Everything
-- here runs inside lupa's protected call; what goes back to the host is only
-- scalars, so lupa allocates nothing after the call: the one result when it
-- is a scalar (the common case: no tuple to build and unpack), else
-- (1, results...), or (2, nil) with the results waiting in K.slot, or
-- (0, error message).
local slot = {}
K.slot = slot
local SCALAR = { ["nil"] = true, boolean = true, number = true, string = true }

local function fast_error(e)
  lower()
  if boundary_handler ~= nil then
    setcap(false) -- the stop allocates
    e = boundary_handler(e)
    setcap(true) -- (`<close>` handlers run as the stack unwinds, under the cap)
  end
  if type(e) == "string" then return debug.traceback(e, 2) end
  return e
end

local function fast_finish(ok, ...)
  if not ok then
    local e = ...
    -- not a string: a host exception lupa carries through Lua (it raises
    -- the very exception again on its side) or a script's error object
    if type(e) ~= "string" then error(e, 0) end
    return 0, e
  end
  local n = select("#", ...)
  if n == 0 then return nil end
  if n == 1 and SCALAR[type((...))] then return (...) end
  for i = 1, n do
    if not SCALAR[type((select(i, ...)))] then
      slot[1] = pack(...)
      return 2, nil
    end
  end
  return 1, ...
end

local function fast_run(f, ...)
  return fast_finish(xpcall(f, fast_error, ...))
end

function K.fastcapped(f, ...)
  state.where_source = nil
  if gcheld then return held_call(fast_run, f, ...) end
  return fast_finish(xpcall(f, fast_error, ...))
end

K.base = base
K.is_limit = is_limit
-- Marks a table made from a host dict, so an empty one comes back as {} and
-- not as an empty list. Protected: scripts see the name, not the table.
K.OBJECT = { __name = "kryon.object", __metatable = "kryon.object" }
K.mark_object = function(t) return setmetatable(t, K.OBJECT) end
K.is_object = function(t) return debug.getmetatable(t) == K.OBJECT end

return K
