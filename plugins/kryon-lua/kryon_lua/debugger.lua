-- Kryon's Lua debugger: loaded into a Lua runtime while a debugger is attached
-- (kryon_lua.debugging). It installs one debug hook per Lua thread, which
--
-- * reports lines (at breakpoints, or every line while stepping or pausing),
--   calls and returns (while stepping) to the host;
-- * hands every event the runtime's own hook asked for (the prelude's count
--   hook keeping the time limit, its call hook keeping the recursion limit)
--   on to that hook as a tail call, so its stack levels are what they were;
-- * keeps itself up to date: the host changes what the debugger wants from
--   any thread, without entering this runtime (another thread may be running
--   in it), by bumping a generation number. The hook asks for it on count
--   events (so an endless loop notices a pause), when entered from the host
--   and when a host function it called returns (the thread may have stopped
--   in another language meanwhile), then re-applies its mask to the thread it
--   runs on. Each coroutine carries its own hook: it gets ours when resumed.
--
-- D.ask answers the debugger's questions about the stopped thread (frames,
-- locals, upvalues, the script environment, values, evaluation) as JSON
-- text, handing out Lua objects by number. Levels are counted as seen from
-- the helper D.ask calls; every helper is called directly from it, itself
-- called directly from the host, so a frame's level stays valid while the
-- thread is stopped.

local poll, fetch, on_line, on_call, on_return, script_env, on_raise, base, is_limit, set_boundary_handler,
  raw_resume = ...

local getinfo, getlocal, setlocal = debug.getinfo, debug.getlocal, debug.setlocal
local getupvalue, setupvalue = debug.getupvalue, debug.setupvalue
local sethook, gethook, getmetatable_raw = debug.sethook, debug.gethook, debug.getmetatable
local running, create, resume, status = coroutine.running, coroutine.create, coroutine.resume, coroutine.status
-- Lua's own resume: the prelude's coroutine.resume runs it inside a resumer
-- coroutine (a coroutine.wrap function, told by its upvalue)
local co_resume = raw_resume or resume
resume = co_resume
local format, concat, sort = string.format, table.concat, table.sort
local next, type, tostring, load, select, setmetatable = next, type, tostring, load, select, setmetatable
local rawlen, rawget, rawequal, ipairs, min = rawlen, rawget, rawequal, ipairs, math.min
local mtype, clock, tonumber, pairs, utf8len = math.type, os.clock, tonumber, pairs, utf8.len
-- Lua's own: a trusted script's globals are this chunk's too, and the
-- debugger replaces these there (see `wrap_raising`)
local error, pcall = error, pcall

local D = {}
local NOT_SCRIPT = { ["=kryon-prelude"] = true, ["=kryon-debug"] = true, ["=[C]"] = true, ["=(debug)"] = true }
-- the C function through which Lua calls a host (Python) function: an activation boundary
local PYTHON = getmetatable_raw(poll)
local PYCALL = PYTHON and PYTHON.__call

local mode, lines, attached, generation = "off", {}, false, -1
-- what a stop hands the host (frames, tables) by number: the host's view of
-- Lua objects is unreliable while a coroutine is stopped (see kryon_lua.debugging)
local refs, nref = {}, 0
local seen = setmetatable({}, { __mode = "k" }) -- thread -> the generation its hook matches
local old_fn, old_mask, old_count = nil, "", 0
local hook

local function merged(mine)
  local m = mine
  for ch in old_mask:gmatch(".") do
    if not m:find(ch, 1, true) then m = m .. ch end
  end
  return m
end

-- Line events cost about a microsecond each, so with breakpoints set (and
-- not stepping) a thread has them on only while it runs a function whose
-- lines [linedefined, lastlinedefined] hold a breakpoint: the call hook turns
-- them on entering such a function, the return hook decides again for the
-- caller it returns to. `lined[thread]` is whether that thread has them on.
local lined = setmetatable({}, { __mode = "k" })
local spans = {} -- source -> linedefined -> whether that function holds a breakpoint line

-- Whether the function `info` describes ("S") holds a breakpoint line.
local function holds(info)
  local ls = lines[info.source]
  if ls == nil then return false end
  local known = spans[info.source]
  if known == nil then known = {}; spans[info.source] = known end
  local first, last = info.linedefined, info.lastlinedefined
  local key = first + last * 4294967296 -- two functions may start on one line
  local at = known[key]
  if at == nil then
    at = false
    for n in next, ls do
      if first == 0 or (n >= first and n <= last) then at = true; break end
    end
    known[key] = at
  end
  return at
end

-- The hook the current state wants: function, mask, count. `inside` is
-- whether the thread runs a function holding a breakpoint line.
local function wanted(inside)
  if not attached then return old_fn, old_mask, old_count end
  local mine = "c"
  if mode == "every" or mode == "breakpoints" and next(lines) and inside then mine = "crl"
  elseif mode == "breakpoints" then mine = "cr" end
  return hook, merged(mine), old_count > 0 and old_count or 1000
end

-- Give a thread (the running one if nil) the hook the current state wants.
-- Line events go on whenever breakpoints exist: the next call or return
-- narrows them to the functions that need them.
local function apply(th)
  local f, m, c = wanted(true)
  if th == nil then
    if f then sethook(f, m, c) else sethook() end
    th = running()
  elseif f then sethook(th, f, m, c) else sethook(th) end
  seen[th], lined[th] = generation, true
end

-- Line events on or off for the running thread, as the function it now runs needs.
local function narrow(inside)
  local th = running()
  if lined[th] ~= inside then
    local f, m, c = wanted(inside)
    if f then sethook(f, m, c) end
    lined[th] = inside
  end
end

-- A coroutine about to be resumed: Lua keeps a hook function per thread and
-- a new coroutine starts with none, so each gets ours before it runs.
local function hook_thread(co)
  if type(co) == "thread" and seen[co] ~= generation and status(co) == "suspended" then apply(co) end
end

-- The running thread resumes `co`. It goes on when `co` yields or ends, the
-- debugger's state may have changed meanwhile (a breakpoint set while `co`
-- ran), and nothing else would tell it before its next call: it gets a
-- return event for this resume, where it catches up.
local function resuming(co)
  hook_thread(co)
  local f, m, c = gethook()
  if f == hook and not m:find("r", 1, true) then sethook(f, m .. "r", c) end
end

-- Whether C function `f` resumes a coroutine (coroutine.resume, or a
-- coroutine.wrap function: the coroutine is its upvalue).
local function resumes(f)
  if f == co_resume then return true end
  local name, up = getupvalue(f, 1)
  return name == "" and type(up) == "thread"
end

local function sync()
  local g = poll()
  if g ~= generation then
    local spec
    mode, spec, attached = fetch()
    lines, spans = {}, {}
    for source, numbers in spec:gmatch("([^\t\n]+)\t([^\n]*)") do
      local set = {}
      for n in numbers:gmatch("%d+") do set[tonumber(n)] = true end
      lines[source] = set
    end
    generation = g
  end
  if seen[running()] ~= generation then apply() end
end

local function scripted(info)
  local source = info.source
  return info.what ~= "C" and source:byte(1) == 61 and not NOT_SCRIPT[source]
end

-- While this hook runs for lines, calls or returns, the instructions it runs
-- itself use up Lua's instruction count, and a count event falling due
-- inside a hook is dropped: the count hook would starve (an endless loop
-- would outlive its time limit, and never see a pause). So every EVENTS
-- events of those kinds count as a count event, handed on like one.
local EVENTS, left = 100, 100

local function due()
  left = left - 1
  if left > 0 then return false end
  left = EVENTS
  sync()
  return old_fn ~= nil and old_count > 0
end

hook = function(event, line)
  if event == "count" then
    sync()
    if old_fn and old_count > 0 then return old_fn(event, line) end
    return
  end
  local info = getinfo(2, "S")
  if event == "line" then
    if scripted(info) then
      local at = mode == "every"
      if not at then
        local ls = lines[info.source]
        at = ls ~= nil and ls[line] ~= nil
      end
      if at then
        on_line(info.source, line, (running()))
        refs, nref = {}, 0 -- what the stop handed out is gone once the thread goes on
        sync()
      end
    end
    if due() then return old_fn("count") end
    if old_fn and old_mask:find("l", 1, true) then return old_fn(event, line) end
  elseif event == "call" or event == "tail call" then
    if info.what == "C" then -- coroutine.resume(co) or a coroutine.wrap function (co is its upvalue)
      local f = getinfo(2, "f").func
      if f == co_resume then
        resuming(select(2, getlocal(2, 1)))
      else
        local name, up = getupvalue(f, 1)
        if name == "" and type(up) == "thread" then resuming(up) end
      end
    end
    if event == "call" then
      local caller = getinfo(3, "S")
      if caller == nil or caller.what == "C" then sync() end -- entered from the host: catch up
      if mode == "every" and scripted(info) then on_call() end
    end
    -- (C functions have no lines: what they call decides for itself)
    if mode == "breakpoints" and attached and info.what ~= "C" then narrow(holds(info)) end
    if due() then return old_fn("count") end
    if old_fn and old_mask:find("c", 1, true) then return old_fn(event, line) end
  elseif event == "return" then
    if info.what == "C" then
      -- a host function returning: the host may have stopped this thread in
      -- another language meanwhile, and what the debugger wants changed
      local f = getinfo(2, "f").func
      if f == PYCALL then sync()
      elseif resumes(f) then
        seen[running()] = nil -- the mask as wanted again (`resuming` added "r")
        sync()
      end
    elseif mode == "every" and scripted(info) then
      on_return()
    end
    if mode == "breakpoints" and attached then
      local caller = getinfo(3, "S") -- where this returns to
      if caller ~= nil and caller.what ~= "C" then narrow(holds(caller)) end
    end
    if due() then return old_fn("count") end
    if old_fn and old_mask:find("r", 1, true) then return old_fn(event, line) end
  end
end

-- Put the hook on the running (main) thread, keeping the runtime's own hook
-- to hand its events on to.
local wrap_raising -- below: it reports through `show`

function D.install()
  local f, m, c = gethook()
  if f ~= hook then
    if type(f) == "function" then old_fn, old_mask, old_count = f, m or "", c or 0
    else old_fn, old_mask, old_count = nil, "", 0 end
  end
  seen[running()] = nil
  sync()
  if not D.wrapped then wrap_raising(); D.wrapped = true end
end

-- -- values -----------------------------------------------------------------------
local MAX_TEXT = 200
local show

local function cut(text)
  if #text > MAX_TEXT then return text:sub(1, MAX_TEXT - 3) .. "..." end
  return text
end

local function count_of(t)
  local n, k = 0, next(t)
  while k ~= nil and n < 100000 do n, k = n + 1, next(t, k) end
  return n
end

local function preview(t)
  local parts, size, n = {}, 0, rawlen(t)
  for i = 1, n do
    local v = rawget(t, i)
    local text = type(v) == "table" and "{...}" or (show(v))
    parts[#parts + 1] = text
    size = size + #text + 2
    if size > MAX_TEXT then break end
  end
  if size <= MAX_TEXT then
    for k, v in next, t do
      if not (mtype(k) == "integer" and k >= 1 and k <= n) then
        local text = (type(k) == "string" and k or "[" .. (show(k)) .. "]") .. " = "
          .. (type(v) == "table" and "{...}" or (show(v)))
        parts[#parts + 1] = text
        size = size + #text + 2
        if size > MAX_TEXT then break end
      end
    end
  end
  return cut("{" .. concat(parts, ", ") .. "}")
end

-- A value as Lua notation, its type, and (tables) how many entries it has.
-- Never runs a metamethod: inspecting must not run script code.
show = function(v)
  local t = type(v)
  if t == "string" then return cut(format("%q", v)), t end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v), t end
  if t == "table" then return preview(v), t, count_of(v) end
  if t == "function" then
    local info = getinfo(v, "S")
    if info.what == "C" then return "builtin function", t end
    return "function <" .. info.source:sub(2) .. ":" .. info.linedefined .. ">", t
  end
  if t == "userdata" and getmetatable_raw(v) == PYTHON then return "host object", t end
  return t, t
end

-- -- raised errors ------------------------------------------------------------------
-- Lua has no hook for a raised error. While a debugger is attached the
-- script's `error` and `assert` report before raising, and its `pcall` and
-- `xpcall` run the protected call with a message handler that reports: a
-- message handler runs where the error was raised, before the stack unwinds,
-- so the stop shows the raising frame with its locals (errors the VM raises
-- itself included). A time or recursion limit is not the script's error.
local last_raised -- what `error`/`assert` just reported: the handler must not report it again

local function report(e)
  local text = type(e) == "string" and e or (show(e))
  pcall(on_raise, text, (running()))
  refs, nref = {}, 0 -- what the stop handed out is gone once the thread goes on
  sync()
end

-- Whether the error being raised comes from script code: the first frame
-- from `level` (counted from this function's caller) up that is neither C
-- (`error` itself) nor the prelude's or this chunk's (message handlers
-- wrapping each other) is a script's. Errors of other Lua the engine runs
-- (a trusted state shares its globals with it) are not the script's.
local function from_script(level)
  level = level + 1
  while true do
    local info = getinfo(level, "S")
    if info == nil then return false end
    if info.what ~= "C" and not NOT_SCRIPT[info.source] then return scripted(info) end
    level = level + 1
  end
end

local function handler(e)
  if rawequal(e, last_raised) then last_raised = nil -- (never a script's __eq)
  elseif attached and not is_limit(e) and from_script(2) then last_raised = nil; report(e) end
  return e
end

-- `message` with the position Lua's `error` adds: that of the function
-- `level` levels above this one's caller.
local function positioned(message, level)
  if type(message) == "string" and level > 0 then
    local info = getinfo(level + 2, "Sl")
    if info ~= nil and info.currentline > 0 then message = info.short_src .. ":" .. info.currentline .. ": " .. message end
  end
  return message
end

wrap_raising = function()
  local error0, assert0, pcall0, xpcall0 = base.error, base.assert, base.pcall, base.xpcall
  base.error = function(message, level)
    if not attached or not from_script(2) then return error0(message, level == nil and 1 or level > 0 and level + 1 or 0) end
    message = positioned(message, level == nil and 1 or level)
    last_raised = message
    report(message)
    return error0(message, 0)
  end
  base.assert = function(...)
    local v = ...
    if v then return ... end
    local n = select("#", ...)
    if n == 0 then return assert0() end -- its "value expected" error
    local message = "assertion failed!"
    if n > 1 then message = select(2, ...) end
    message = positioned(message, 1) -- (called through here, assert0 would name this line)
    if attached and from_script(2) then
      last_raised = message
      report(message)
    end
    return error0(message, 0)
  end
  base.pcall = function(f, ...)
    if not attached then return pcall0(f, ...) end
    return xpcall0(f, handler, ...)
  end
  base.xpcall = function(f, h, ...)
    if not attached then return xpcall0(f, h, ...) end
    return xpcall0(f, function(e) return h(handler(e)) end, ...)
  end
  set_boundary_handler(handler) -- the host's own calls report what no script pcall catches
end

local function ref(v)
  nref = nref + 1
  refs[nref] = v
  return nref
end

local function entry(name, v)
  local text, tname, n = show(v)
  return { name = name, text = text, type = tname, ref = (type(v) == "table" and n > 0) and ref(v) or false,
    count = n or false }
end

local function key_name(k)
  if type(k) == "string" then return k end
  return "[" .. (show(k)) .. "]"
end

local function children(t)
  local out, n = {}, rawlen(t)
  for i = 1, min(n, 1000) do out[#out + 1] = entry("[" .. i .. "]", rawget(t, i)) end
  local keys = {}
  for k in next, t do
    if not (mtype(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  for i = 1, min(#keys, 1000) do out[#out + 1] = entry(key_name(keys[i]), rawget(t, keys[i])) end
  return out
end

-- -- frames and scopes -------------------------------------------------------------
local function env_of(func)
  local i = 1
  while true do
    local name, value = getupvalue(func, i)
    if name == nil then return nil end
    if name == "_ENV" then return value end
    i = i + 1
  end
end

-- A script's environment (and the module table its chunk returned), from the host.
local function script_of(source)
  return script_env(source:sub(2))
end

-- A frame's function name: as its caller named it, else the name the
-- script's globals (or its module table) give it: a function the host
-- called has no caller to name it.
local function frame_name(info)
  if info.name then return info.name end
  if info.what == "main" then return "main chunk" end
  local env, returned = script_of(info.source)
  for _, t in ipairs { env_of(info.func) or false, env or false, returned or false } do
    if type(t) == "table" then
      for k, v in next, t do
        if v == info.func and type(k) == "string" then return k end
      end
    end
  end
  return "function <" .. info.source:sub(2) .. ":" .. info.linedefined .. ">"
end

-- The script frames of the stopped thread, innermost first: those of the
-- coroutine it stopped in (if any), then those of the main thread. `group`
-- counts activations: a host function between two script frames starts a new one.
local function frames(co)
  local main = running()
  local out, group = {}, 1
  local threads = { main }
  if co ~= nil and co ~= main then threads = { co, main } end
  for _, th in ipairs(threads) do
    local level = th == main and 2 or 0
    while true do
      local info = getinfo(th, level, "Slnf")
      if not info then break end
      if info.what == "C" then
        if info.func == PYCALL and out[#out] ~= nil and out[#out].group == group then group = group + 1 end
      elseif scripted(info) then
        out[#out + 1] = {
          source = info.source, line = info.currentline, name = frame_name(info), group = group,
          id = ref({ thread = th, level = level, func = info.func }),
        }
      end
      level = level + 1
    end
  end
  return out
end

local function locals(frame)
  local out, at = {}, {}
  local i = 1
  while true do
    local name, value = getlocal(frame.thread, frame.level, i)
    if name == nil then break end
    if name:byte(1) ~= 40 then -- "(temporary)", "(vararg)", "(for state)"...
      local e = entry(name, value)
      if at[name] then out[at[name]] = e else out[#out + 1] = e; at[name] = #out end
    end
    i = i + 1
  end
  return out
end

local function upvalues(frame)
  local out, i = {}, 1
  while true do
    local name, value = getupvalue(frame.func, i)
    if name == nil then break end
    if name ~= "_ENV" then out[#out + 1] = entry(name, value) end
    i = i + 1
  end
  return out
end

local function frame_env(frame)
  local env = script_of(getinfo(frame.func, "S").source)
  if env == nil then env = env_of(frame.func) end
  return env
end

-- The script's own globals (its environment, without what it inherits, nor
-- what every environment is given: _G, load).
local function globals(frame)
  local env = frame_env(frame)
  if type(env) ~= "table" then return {} end
  local out = {}
  for _, e in ipairs(children(env)) do
    local v = rawget(env, e.name)
    local given = (e.name == "_G" and v == env)
      or (type(v) == "function" and getinfo(v, "S").source == "=kryon-prelude")
    if not given then out[#out + 1] = e end
  end
  return out
end

-- -- evaluation ------------------------------------------------------------------------
-- `expression` runs in a new coroutine (hooks are off inside the hook that
-- stopped the thread; a fresh coroutine has its own) with a count hook that
-- stops it after `budget` seconds of CPU. Names resolve to the frame's
-- locals, then its upvalues, then its script's environment: a sandboxed
-- script's evaluation sees what the script sees, nothing of the host.
local function evaluate(frame, expression, budget)
  local th, level, func = frame.thread, frame.level, frame.func
  local env = frame_env(frame)
  local function find_local(k)
    local i, found = 1, nil
    while true do
      local name = getlocal(th, level, i)
      if name == nil then return found end
      if name == k then found = i end
      i = i + 1
    end
  end
  local function find_upvalue(k)
    local i = 1
    while true do
      local name = getupvalue(func, i)
      if name == nil then return nil end
      if name == k and name ~= "_ENV" then return i end
      i = i + 1
    end
  end
  local proxy = setmetatable({}, {
    __index = function(_, k)
      local i = find_local(k)
      if i then return select(2, getlocal(th, level, i)) end
      i = find_upvalue(k)
      if i then return select(2, getupvalue(func, i)) end
      if env ~= nil then return env[k] end
    end,
    __newindex = function(_, k, v)
      local i = find_local(k)
      if i then setlocal(th, level, i, v) return end
      i = find_upvalue(k)
      if i then setupvalue(func, i, v) return end
      if env ~= nil then env[k] = v end
    end,
    __metatable = false,
  })
  local f, err = load("return " .. expression, "=(debug)", "t", proxy)
  if not f then f, err = load(expression, "=(debug)", "t", proxy) end
  if not f then return { ok = false, error = err } end
  local co = create(f)
  local deadline = clock() + budget
  sethook(co, function()
    if clock() > deadline then error("kryon-limit: the expression ran past the debugger's budget of " .. budget .. " s", 0) end
  end, "", 1000)
  local ok, value = resume(co)
  if not ok then return { ok = false, error = tostring(value) } end
  return { ok = true, entry = entry(expression, value) }
end

-- -- the host's questions -----------------------------------------------------------------
local function escape(s)
  local pattern = utf8len(s) and '[%c"\\]' or '[%c"\\\128-\255]'
  return (s:gsub(pattern, function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return format("\\u%04x", c:byte())
  end))
end

local function json(v)
  local t = type(v)
  if t == "table" then
    local parts = {}
    if v[1] ~= nil or next(v) == nil then
      for i = 1, #v do parts[i] = json(v[i]) end
      return "[" .. concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = json(tostring(k)) .. ":" .. json(x) end
    return "{" .. concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. escape(v) .. '"'
  elseif t == "number" then
    if mtype(v) == "integer" then return format("%d", v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return format("%.17g", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end

local function frame_at(id)
  local frame = refs[id]
  if type(frame) ~= "table" or frame.level == nil then error("no such frame (the thread went on since)", 0) end
  return frame
end

local function answer(op, a, b, c)
  local out
  if op == "frames" then out = frames(a)
  elseif op == "scopes" then
    local frame = frame_at(a)
    out = { "Locals" }
    if #upvalues(frame) > 0 then out[#out + 1] = "Closure" end
    out[#out + 1] = "Globals"
  elseif op == "Locals" then out = locals(frame_at(a))
  elseif op == "Closure" then out = upvalues(frame_at(a))
  elseif op == "Globals" then out = globals(frame_at(a))
  elseif op == "children" then
    local t = refs[a]
    out = type(t) == "table" and children(t) or {}
  elseif op == "evaluate" then out = evaluate(frame_at(a), b, c)
  else error("unknown question " .. tostring(op), 0) end
  if nref > 100000 then refs, nref = {}, 0 end -- a long stop elsewhere must not grow this for ever
  return json(out)
end

-- Questions run with this thread's hook off (the helpers are not what is
-- debugged), and setting it again re-arms line events in the frames below:
-- asked while a host function runs above them, Lua would otherwise miss
-- their next line.
function D.ask(op, a, b, c)
  local f, m, n = gethook()
  sethook()
  local ok, result = pcall(answer, op, a, b, c)
  if type(f) == "function" then sethook(f, m, n) end
  if not ok then error(result, 0) end
  return result
end

return D
