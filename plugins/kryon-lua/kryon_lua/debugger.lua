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
--   events (so an endless loop notices a pause) and when entered from the
--   host, then re-applies its mask to the thread it runs on (each coroutine
--   carries its own hook; new ones inherit it).
--
-- The helpers below answer the debugger's questions about the stopped thread
-- (frames, locals, upvalues, the script environment, values, evaluation).
-- Levels are counted as seen from a helper's own body; every helper is
-- called directly from the host, so a frame's level stays valid while the
-- thread is stopped.

local poll, fetch, on_line, on_call, on_return = ...

local getinfo, getlocal, setlocal = debug.getinfo, debug.getlocal, debug.setlocal
local getupvalue, setupvalue = debug.getupvalue, debug.setupvalue
local sethook, gethook, getmetatable_raw = debug.sethook, debug.gethook, debug.getmetatable
local running, create, resume = coroutine.running, coroutine.create, coroutine.resume
local format, concat, sort = string.format, table.concat, table.sort
local next, type, tostring, load, select, setmetatable = next, type, tostring, load, select, setmetatable
local rawlen, rawget, ipairs, min = rawlen, rawget, ipairs, math.min
local mtype, clock = math.type, os.clock

local D = {}
local NOT_SCRIPT = { ["=kryon-prelude"] = true, ["=kryon-debug"] = true, ["=[C]"] = true, ["=(debug)"] = true }
-- the C function through which Lua calls a host (Python) function: an activation boundary
local PYTHON = getmetatable_raw(poll)
local PYCALL = PYTHON and PYTHON.__call

local mode, lines, attached, generation = "off", {}, false, -1
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

-- Give the running thread the hook the current state wants.
local function apply()
  if not attached then
    if old_fn then sethook(old_fn, old_mask, old_count) else sethook() end
  else
    local mine = "c"
    if mode == "every" then mine = "crl" elseif mode == "breakpoints" and next(lines) then mine = "cl" end
    sethook(hook, merged(mine), old_count > 0 and old_count or 1000)
  end
  seen[running()] = generation
end

local function sync()
  local g = poll()
  if g ~= generation then
    mode, lines, attached = fetch()
    generation = g
  end
  if seen[running()] ~= generation then apply() end
end

local function scripted(info)
  local source = info.source
  return info.what ~= "C" and source:byte(1) == 61 and not NOT_SCRIPT[source]
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
        sync()
      end
    end
    if old_fn and old_mask:find("l", 1, true) then return old_fn(event, line) end
  elseif event == "call" or event == "tail call" then
    if event == "call" then
      local caller = getinfo(3, "S")
      if caller == nil or caller.what == "C" then sync() end -- entered from the host: catch up
      if mode == "every" and scripted(info) then on_call() end
    end
    if old_fn and old_mask:find("c", 1, true) then return old_fn(event, line) end
  elseif event == "return" then
    if mode == "every" and scripted(info) then on_return() end
    if old_fn and old_mask:find("r", 1, true) then return old_fn(event, line) end
  end
end

-- Put the hook on the running (main) thread, keeping the runtime's own hook
-- to hand its events on to.
function D.install()
  local f, m, c = gethook()
  if f ~= hook then
    if type(f) == "function" then old_fn, old_mask, old_count = f, m or "", c or 0
    else old_fn, old_mask, old_count = nil, "", 0 end
  end
  seen[running()] = nil
  sync()
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

local function entry(name, v)
  local text, tname, n = show(v)
  return { name = name, text = text, type = tname, ref = type(v) == "table" and v or nil, count = n }
end

local function key_name(k)
  if type(k) == "string" then return k end
  return "[" .. (show(k)) .. "]"
end

function D.children(t)
  local out, n = {}, rawlen(t)
  for i = 1, n do out[#out + 1] = entry("[" .. i .. "]", rawget(t, i)) end
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
local env_of

-- A frame's function name: as its caller named it, else the global of its
-- script that holds it (a function the host called has no caller to name it).
local function frame_name(info)
  if info.name then return info.name end
  if info.what == "main" then return "main chunk" end
  local env = env_of(info.func)
  if type(env) == "table" then
    for k, v in next, env do
      if v == info.func and type(k) == "string" then return k end
    end
  end
  return "function <" .. info.source:sub(2) .. ":" .. info.linedefined .. ">"
end

-- The script frames of the stopped thread, innermost first: those of the
-- coroutine it stopped in (if any), then those of the main thread. `group`
-- counts activations: a host function between two script frames starts a new one.
function D.frames(co)
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
          source = info.source, line = info.currentline, name = frame_name(info), thread = th, level = level,
          func = info.func, group = group,
        }
      end
      level = level + 1
    end
  end
  return out
end

env_of = function(func)
  local i = 1
  while true do
    local name, value = getupvalue(func, i)
    if name == nil then return nil end
    if name == "_ENV" then return value end
    i = i + 1
  end
end

function D.locals(th, level)
  local out, at = {}, {}
  local i = 1
  while true do
    local name, value = getlocal(th, level, i)
    if name == nil then break end
    if name:byte(1) ~= 40 then -- "(temporary)", "(vararg)", "(for state)"...
      local e = entry(name, value)
      if at[name] then out[at[name]] = e else out[#out + 1] = e; at[name] = #out end
    end
    i = i + 1
  end
  return out
end

function D.upvalues(func)
  local out, i = {}, 1
  while true do
    local name, value = getupvalue(func, i)
    if name == nil then break end
    if name ~= "_ENV" then out[#out + 1] = entry(name, value) end
    i = i + 1
  end
  return out
end

-- The name a script's globals (or the module table its chunk returned) give `func`.
function D.name_in(env, returned, func)
  for _, t in ipairs { env, returned } do
    if type(t) == "table" then
      for k, v in next, t do
        if v == func and type(k) == "string" then return k end
      end
    end
  end
  return nil
end

function D.has_upvalues(func)
  return #D.upvalues(func) > 0
end

-- The script's own globals (the frame's environment, without what it inherits).
function D.globals(func)
  local env = env_of(func)
  if type(env) ~= "table" then return {} end
  return D.children(env)
end

-- -- evaluation ------------------------------------------------------------------------
-- `expression` runs in a new coroutine (hooks are off inside the hook that
-- stopped the thread; a fresh coroutine has its own) with a count hook that
-- stops it after `budget` seconds of CPU. Names resolve to the frame's
-- locals, then its upvalues, then its environment: a sandboxed script's
-- evaluation sees what the script sees, nothing of the host.
function D.evaluate(th, level, func, expression, budget)
  local env = env_of(func)
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
  if not f then return false, err end
  local co = create(f)
  local deadline = clock() + budget
  sethook(co, function()
    if clock() > deadline then error("kryon-limit: the expression ran past the debugger's budget of " .. budget .. " s", 0) end
  end, "", 1000)
  local ok, value = resume(co)
  if not ok then return false, tostring(value) end
  return true, entry(expression, value)
end

return D
