-- Bounded versions of the library functions a sandboxed script could use to
-- run for a long time inside C, where the count hook that enforces time limits
-- never fires. Each one either proves its C counterpart cheap before calling
-- it, or does the work in Lua (where the hook fires), or splits it into C
-- calls of bounded size with Lua code in between.
--
--   string.find/match/gmatch/gsub: Lua's matcher backtracks, so one call can
--     take (subject length)^(quantifiers + 1) steps. A pattern whose bound is
--     small runs in C; any other runs in the Lua matcher below (the same
--     recursive backtracking algorithm as Lua's lstrlib, written in Lua).
--   string.rep: the size is checked against the memory left before anything
--     is copied; a large count is built from a few C calls of bounded count.
--   table.concat/move/insert/remove/sort: plain tables with bounded ranges run
--     in C; anything else (metamethods, huge ranges) loops in Lua, or in C
--     chunks with Lua in between; sort always compares through Lua.
--
-- Called with the state's memory cap in bytes (or nil) and returns a table
-- of replacements for `string` and `table`.

local memory_limit = ...
local collectgarbage = collectgarbage
local memory_left = memory_limit and function() return memory_limit - collectgarbage("count") * 1024 end

local string, table, math = string, table, math
local byte, sub, cfind, cmatch, cgmatch, cgsub = string.byte, string.sub, string.find, string.match, string.gmatch, string.gsub
local crep, cconcat, cmove, cinsert, cremove, csort = string.rep, table.concat, table.move, table.insert, table.remove, table.sort
local type, error, select, tostring, tonumber, getmetatable = type, error, select, tostring, tonumber, getmetatable
local floor = math.floor
-- LuaJIT is Lua 5.1: no integers, no rawlen, no table.unpack
local maxinteger = math.maxinteger or 2 ^ 53
local tointeger = math.tointeger or function(x)
  if x == floor(x) and x > -2 ^ 53 and x < 2 ^ 53 then return x end
  return nil
end
local rawlen = rawlen or function(t) return #t end -- only for tables without a metatable
local unpack = table.unpack or unpack
local function idiv(a, b) return floor(a / b) end

local B = {}

-- C matcher steps one call may take (a few milliseconds of C time): a
-- backtracking pattern, and a linear one (no quantifiers) or a plain search
local C_STEPS = 2e6
local C_LINEAR = 3e7
-- elements a C table function may touch in one call
local C_ELEMENTS = 1e5
-- elements per C call when a long range is split into chunks
local CHUNK = 4096

-- ---------------------------------------------------------------------------
-- Pattern cost: an upper bound on the steps of Lua's backtracking matcher.
-- Each of `*`, `+`, `-`, `%b` and a back reference can try every position of
-- the subject for every way the items before it matched; `?` tries two ways.
-- The scan over-counts rather than under-counts (it is only a bound).
local function pattern_exponent(p)
  local q, twos, i, n = 0, 0, 1, #p
  while i <= n do
    local c = byte(p, i)
    if c == 37 then -- '%'
      local d = byte(p, i + 1)
      if d == 98 then q = q + 1; i = i + 4 -- %bxy
      elseif d and d >= 48 and d <= 57 then q = q + 1; i = i + 2 -- %1
      else i = i + 2 end
    elseif c == 91 then -- '[': skip the set (its '-' are ranges)
      i = i + 1
      if byte(p, i) == 94 then i = i + 1 end
      repeat
        if i > n then break end
        local cc = byte(p, i); i = i + 1
        if cc == 37 then i = i + 1 end
      until byte(p, i) == 93
      i = i + 1
    elseif c == 42 or c == 43 or c == 45 then q = q + 1; i = i + 1
    elseif c == 63 then twos = twos + 1; i = i + 1
    else i = i + 1 end
  end
  return q, twos
end

local function cheap(s, p)
  local q, twos = pattern_exponent(p)
  if twos > 20 then return false end
  local cost = (#s + 1.0) ^ (q + 1) * (2.0 ^ twos) * (#p + 1)
  return cost <= ((q == 0 and twos == 0) and C_LINEAR or C_STEPS)
end

-- ---------------------------------------------------------------------------
-- The Lua matcher. Positions are 1-based indexes into the subject; a match
-- returns the index just after it, or nil.
local ESC = 37
local MAXCAPTURES = 32
local MAXDEPTH = 200
local UNFINISHED, POSITION = -1, -2

local function char_table(pred)
  local t = {}
  for b = 0, 255 do t[b] = pred(b) and true or false end
  return t
end
local function is_lower(b) return b >= 97 and b <= 122 end
local function is_upper(b) return b >= 65 and b <= 90 end
local function is_digit(b) return b >= 48 and b <= 57 end
local function is_alpha(b) return is_lower(b) or is_upper(b) end
local function is_punct(b) return (b >= 33 and b <= 47) or (b >= 58 and b <= 64) or (b >= 91 and b <= 96) or (b >= 123 and b <= 126) end
-- the C locale's character classes, by class letter
local CLASS = {
  [97] = char_table(is_alpha), -- a
  [99] = char_table(function(b) return b < 32 or b == 127 end), -- c
  [100] = char_table(is_digit), -- d
  [103] = char_table(function(b) return b >= 33 and b <= 126 end), -- g
  [108] = char_table(is_lower), -- l
  [112] = char_table(is_punct), -- p
  [115] = char_table(function(b) return b == 32 or (b >= 9 and b <= 13) end), -- s
  [117] = char_table(is_upper), -- u
  [119] = char_table(function(b) return is_alpha(b) or is_digit(b) end), -- w
  [120] = char_table(function(b) return is_digit(b) or (b >= 97 and b <= 102) or (b >= 65 and b <= 70) end), -- x
}

local function class_match(c, cl)
  local t = CLASS[cl]
  if t then return t[c] end
  if cl >= 65 and cl <= 90 then
    t = CLASS[cl + 32]
    if t then return not t[c] end
  end
  return cl == c
end

-- index just after the single-character class starting at p
local function class_end(ms, p)
  local pat, plen = ms.pat, ms.plen
  local c = byte(pat, p)
  p = p + 1
  if c == ESC then
    if p > plen then error("malformed pattern (ends with '%')", 0) end
    return p + 1
  elseif c == 91 then
    if byte(pat, p) == 94 then p = p + 1 end
    repeat
      if p > plen then error("malformed pattern (missing ']')", 0) end
      local cc = byte(pat, p)
      p = p + 1
      if cc == ESC and p <= plen then p = p + 1 end
    until byte(pat, p) == 93
    return p + 1
  end
  return p
end

-- whether byte c is in the set [..] from p ('[') to ec (']')
local function bracket_match(ms, c, p, ec)
  local pat = ms.pat
  local sig = true
  if byte(pat, p + 1) == 94 then sig = false; p = p + 1 end
  p = p + 1
  while p < ec do
    local b = byte(pat, p)
    if b == ESC then
      if class_match(c, byte(pat, p + 1)) then return sig end
      p = p + 2
    elseif byte(pat, p + 1) == 45 and p + 2 < ec then
      if b <= c and c <= byte(pat, p + 2) then return sig end
      p = p + 3
    else
      if b == c then return sig end
      p = p + 1
    end
  end
  return not sig
end

local function single_match(ms, s, p, ep)
  if s > ms.slen then return false end
  local c = byte(ms.src, s)
  local pc = byte(ms.pat, p)
  if pc == 46 then return true
  elseif pc == ESC then return class_match(c, byte(ms.pat, p + 1))
  elseif pc == 91 then return bracket_match(ms, c, p, ep - 1)
  end
  return pc == c
end

local do_match

-- The longest run of the class at p..ep-1 from s, found by one anchored C
-- match (linear in the run) instead of a Lua call per character.
local function run_length(ms, s, p, ep)
  if s > ms.slen then return 0 end
  local _, e = cfind(ms.src, "^" .. sub(ms.pat, p, ep - 1) .. "*", s)
  return e - s + 1
end

local function max_expand(ms, s, p, ep)
  local i = run_length(ms, s, p, ep)
  while i >= 0 do
    local res = do_match(ms, s + i, ep + 1)
    if res then return res end
    i = i - 1
  end
  return nil
end

local function min_expand(ms, s, p, ep)
  local run = run_length(ms, s, p, ep)
  for i = 0, run do
    local res = do_match(ms, s + i, ep + 1)
    if res then return res end
  end
  return nil
end

local function start_capture(ms, s, p, what)
  local level = ms.level + 1
  if level > MAXCAPTURES then error("too many captures", 0) end
  ms.init[level], ms.len[level], ms.level = s, what, level
  local res = do_match(ms, s, p)
  if not res then ms.level = ms.level - 1 end
  return res
end

local function end_capture(ms, s, p)
  local l = ms.level
  while l >= 1 and ms.len[l] ~= UNFINISHED do l = l - 1 end
  if l < 1 then error("invalid pattern capture", 0) end
  ms.len[l] = s - ms.init[l]
  local res = do_match(ms, s, p)
  if not res then ms.len[l] = UNFINISHED end
  return res
end

local function match_balance(ms, s, p)
  if p + 1 > ms.plen then error("malformed pattern (missing arguments to '%b')", 0) end
  local src = ms.src
  if s > ms.slen or byte(src, s) ~= byte(ms.pat, p) then return nil end
  local b, e = byte(ms.pat, p), byte(ms.pat, p + 1)
  local cont = 1
  for i = s + 1, ms.slen do
    local c = byte(src, i)
    if c == e then
      cont = cont - 1
      if cont == 0 then return i + 1 end
    elseif c == b then
      cont = cont + 1
    end
  end
  return nil
end

local function match_backref(ms, s, digit)
  local l = digit - 48
  if l < 1 or l > ms.level or ms.len[l] == UNFINISHED then error("invalid capture index %" .. l, 0) end
  local init, len = ms.init[l], ms.len[l]
  if len < 0 then return nil end -- a position capture matches nothing
  if ms.slen - s + 1 >= len and sub(ms.src, init, init + len - 1) == sub(ms.src, s, s + len - 1) then
    return s + len
  end
  return nil
end

do_match = function(ms, s, p)
  local depth = ms.depth + 1
  if depth > MAXDEPTH then error("pattern too complex", 0) end
  ms.depth = depth
  local pat, plen = ms.pat, ms.plen
  local result
  while true do
    if p > plen then result = s; break end
    local pc = byte(pat, p)
    if pc == 40 then -- '('
      if byte(pat, p + 1) == 41 then result = start_capture(ms, s, p + 2, POSITION)
      else result = start_capture(ms, s, p + 1, UNFINISHED) end
      break
    elseif pc == 41 then -- ')'
      result = end_capture(ms, s, p + 1)
      break
    elseif pc == 36 and p == plen then -- '$' at the end
      if s == ms.slen + 1 then result = s end
      break
    end
    local nc = pc == ESC and byte(pat, p + 1) or nil
    if nc == 98 then -- %b
      s = match_balance(ms, s, p + 2)
      if not s then break end
      p = p + 4
    elseif nc == 102 then -- %f[set]
      p = p + 2
      if byte(pat, p) ~= 91 then error("missing '[' after '%f' in pattern", 0) end
      local ep = class_end(ms, p)
      local prev = s == 1 and 0 or byte(ms.src, s - 1)
      local cur = s <= ms.slen and byte(ms.src, s) or 0
      if bracket_match(ms, prev, p, ep - 1) or not bracket_match(ms, cur, p, ep - 1) then break end
      p = ep
    elseif nc and nc >= 48 and nc <= 57 then -- back reference
      s = match_backref(ms, s, nc)
      if not s then break end
      p = p + 2
    else
      local ep = class_end(ms, p)
      local epc = byte(pat, ep)
      if not single_match(ms, s, p, ep) then
        if epc == 42 or epc == 63 or epc == 45 then p = ep + 1 -- '*', '?', '-' accept none
        else break end
      elseif epc == 63 then -- '?'
        local res = do_match(ms, s + 1, ep + 1)
        if res then result = res; break end
        p = ep + 1
      elseif epc == 43 then result = max_expand(ms, s + 1, p, ep); break -- '+'
      elseif epc == 42 then result = max_expand(ms, s, p, ep); break -- '*'
      elseif epc == 45 then result = min_expand(ms, s, p, ep); break -- '-'
      else s = s + 1; p = ep end
    end
  end
  ms.depth = depth - 1
  return result
end

local function new_state(s, p, pstart)
  return { src = s, slen = #s, pat = p, plen = #p, level = 0, depth = 0, init = {}, len = {}, pstart = pstart }
end

local function capture(ms, i, s, e)
  if i > ms.level then
    if i ~= 1 then error("invalid capture index %" .. i, 0) end
    return sub(ms.src, s, e - 1)
  end
  local l = ms.len[i]
  if l == UNFINISHED then error("unfinished capture", 0) end
  if l == POSITION then return ms.init[i] end
  return sub(ms.src, ms.init[i], ms.init[i] + l - 1)
end

-- the captures of a match (the whole match when there are none and `whole`)
local function captures(ms, s, e, whole)
  local n = (ms.level == 0 and whole) and 1 or ms.level
  local out = {}
  for i = 1, n do out[i] = capture(ms, i, s, e) end
  return unpack(out, 1, n)
end

local function relative_start(init, len)
  if init > 0 then return init
  elseif init == 0 then return 1
  elseif init < -len then return 1 end
  return len + init + 1
end

local function integer_arg(v, default)
  if v == nil then return default end
  if type(v) == "string" then v = tonumber(v) end
  if type(v) ~= "number" then return nil end
  return tointeger(v)
end

local function lua_find(s, p, init, find)
  local ls = #s
  init = relative_start(init, ls)
  if init > ls + 1 then return nil end
  local anchor = byte(p, 1) == 94
  local ms = new_state(s, p, anchor and 2 or 1)
  local s1 = init
  repeat
    ms.level, ms.depth = 0, 0
    local e = do_match(ms, s1, ms.pstart)
    if e then
      if find then return s1, e - 1, captures(ms, nil, 0, false) end
      return captures(ms, s1, e, true)
    end
    s1 = s1 + 1
  until s1 > ls + 1 or anchor
  return nil
end

-- true when the arguments are plain strings and a pattern worth running in Lua
local function needs_lua(s, p)
  return type(s) == "string" and type(p) == "string" and (B.always_lua or not cheap(s, p))
end

-- A plain search costs up to (subject length) x (pattern length) in C: a
-- long one searches windows of the subject, one C call each.
local function plain_find(s, p, init)
  local ls, lp = #s, #p
  init = relative_start(init, ls)
  if init > ls + 1 then return nil end
  if lp == 0 then return init, init - 1 end
  local window = idiv(C_LINEAR, lp) + 1
  local a = init
  while a + lp - 1 <= ls do
    local b = a + window + lp - 2
    local i, j = cfind(sub(s, a, b), p, 1, true)
    if i then return a + i - 1, a + j - 1 end
    a = a + window
  end
  return nil
end

function B.find(s, p, init, plain)
  local i = integer_arg(init, 1)
  if i == nil or type(s) ~= "string" or type(p) ~= "string" then return cfind(s, p, init, plain) end
  if plain or not cfind(p, "[%^%$%*%+%?%.%(%[%%%-]") then
    if (#s + 1.0) * (#p + 1) <= C_LINEAR then return cfind(s, p, init, plain) end
    return plain_find(s, p, i)
  end
  if cheap(s, p) and not B.always_lua then return cfind(s, p, init) end
  return lua_find(s, p, i, true)
end

function B.match(s, p, init)
  local i = integer_arg(init, 1)
  if i == nil or not needs_lua(s, p) then return cmatch(s, p, init) end
  return lua_find(s, p, i, false)
end

function B.gmatch(s, p, init)
  local i = integer_arg(init, 1)
  if i == nil or not needs_lua(s, p) then return cgmatch(s, p, init) end
  local ls = #s
  local src = relative_start(i, ls)
  if src > ls + 1 then src = ls + 2 end
  local ms = new_state(s, p, 1)
  local last = nil
  return function()
    while src <= ls + 1 do
      ms.level, ms.depth = 0, 0
      local e = do_match(ms, src, 1)
      if e and e ~= last then
        local start = src
        src, last = e, e
        return captures(ms, start, e, true)
      end
      src = src + 1
    end
    return nil
  end
end

local function replacement(ms, s, e, repl, kind)
  if kind == "function" then
    return repl(captures(ms, s, e, true))
  elseif kind == "table" then
    return repl[capture(ms, 1, s, e)]
  end
  -- a string: %0-%9 and %%
  local text = tostring(repl)
  if not cfind(text, "%", 1, true) then return text end
  local parts, i, n = {}, 1, #text
  while i <= n do
    local c = byte(text, i)
    if c == ESC then
      i = i + 1
      local d = byte(text, i)
      if d == ESC then parts[#parts + 1] = "%"
      elseif d and d >= 48 and d <= 57 then
        local v = d == 48 and sub(ms.src, s, e - 1) or capture(ms, d - 48, s, e)
        parts[#parts + 1] = tostring(v)
      else
        error("invalid use of '%' in replacement string", 0)
      end
    else
      parts[#parts + 1] = sub(text, i, i)
    end
    i = i + 1
  end
  return cconcat(parts)
end

function B.gsub(s, p, repl, max)
  local kind = type(repl)
  local n_max = integer_arg(max, nil)
  if (max ~= nil and n_max == nil) or not needs_lua(s, p)
      or not (kind == "string" or kind == "number" or kind == "table" or kind == "function") then
    return cgsub(s, p, repl, max)
  end
  local ls = #s
  if n_max == nil then n_max = ls + 1 end
  local anchor = byte(p, 1) == 94
  local ms = new_state(s, p, anchor and 2 or 1)
  local parts, src, copied, last, n, changed = {}, 1, 1, nil, 0, false
  while n < n_max do
    ms.level, ms.depth = 0, 0
    local e = do_match(ms, src, ms.pstart)
    if e and e ~= last then
      n = n + 1
      local value = replacement(ms, src, e, repl, kind)
      if not value then
        value = sub(s, src, e - 1) -- keep the original text
      elseif type(value) ~= "string" and type(value) ~= "number" then
        error("invalid replacement value (a " .. type(value) .. ")", 0)
      else
        changed = true
      end
      parts[#parts + 1] = sub(s, copied, src - 1)
      parts[#parts + 1] = value
      src, last, copied = e, e, e
    elseif src <= ls then
      src = src + 1
    else
      break
    end
    if anchor then break end
  end
  if not changed then return s, n end
  parts[#parts + 1] = sub(s, copied, ls)
  return cconcat(parts), n
end

-- ---------------------------------------------------------------------------
-- string.rep: refuse what cannot fit before copying anything; a large count
-- is made of C calls each repeating at most CHUNK times.
local function rep_count(x, m)
  if m <= CHUNK then return crep(x, m) end
  local block = crep(x, CHUNK)
  local whole = idiv(m, CHUNK)
  if whole > CHUNK then block = rep_count(block, whole) else block = crep(block, whole) end
  return block .. crep(x, m - whole * CHUNK)
end

function B.rep(s, n, sep)
  local count = integer_arg(n, nil)
  if count == nil or (type(s) ~= "string" and type(s) ~= "number")
      or (sep ~= nil and type(sep) ~= "string" and type(sep) ~= "number") then
    return crep(s, n, sep)
  end
  if count <= 0 then return "" end
  s = tostring(s)
  sep = sep ~= nil and tostring(sep) or ""
  local unit = #s + #sep
  if unit == 0 then return "" end -- C would loop `count` times copying nothing
  local total = count * 1.0 * unit - #sep
  local left = memory_left and memory_left()
  if total >= 2^53 or (left and total > left) then error("not enough memory", 0) end
  if count <= CHUNK then return crep(s, count, sep) end
  if sep == "" then return rep_count(s, count) end
  return rep_count(s .. sep, count - 1) .. s
end

-- ---------------------------------------------------------------------------
-- Tables: C runs only on tables without a metatable over bounded ranges.
local function plain(t)
  return type(t) == "table" and getmetatable(t) == nil
end

function B.concat(t, sep, i, j)
  if type(t) ~= "table" then return cconcat(t, sep, i, j) end
  local first, last = integer_arg(i, 1), integer_arg(j, nil)
  if (i ~= nil and first == nil) or (j ~= nil and last == nil)
      or (sep ~= nil and type(sep) ~= "string" and type(sep) ~= "number") then
    return cconcat(t, sep, i, j)
  end
  if last == nil then last = #t end
  if last - first < CHUNK then return cconcat(t, sep, first, last) end
  sep = sep ~= nil and tostring(sep) or ""
  local parts = {}
  for a = first, last, CHUNK do
    local b = a + CHUNK - 1
    if b > last or b < a then b = last end
    parts[#parts + 1] = cconcat(t, sep, a, b)
  end
  return cconcat(parts, sep)
end

function B.move(a1, f, e, t, a2)
  local tt = a2 == nil and a1 or a2
  local fi, ei, ti = integer_arg(f, nil), integer_arg(e, nil), integer_arg(t, nil)
  if fi == nil or ei == nil or ti == nil or type(a1) ~= "table" or type(tt) ~= "table" then
    return cmove(a1, f, e, t, a2)
  end
  if ei < fi then return tt end
  if (plain(a1) and plain(tt) and ei - fi < C_ELEMENTS) or fi <= 0 and ei >= maxinteger + fi then
    return cmove(a1, f, e, t, a2) -- bounded, or an error C reports at once
  end
  if ti > maxinteger - (ei - fi) then return cmove(a1, f, e, t, a2) end -- "wrap around" error
  local count = ei - fi
  if ti > ei or ti <= fi or tt ~= a1 then
    for k = 0, count do tt[ti + k] = a1[fi + k] end
  else
    for k = count, 0, -1 do tt[ti + k] = a1[fi + k] end
  end
  return tt
end

function B.insert(t, ...)
  local nargs = select("#", ...)
  if plain(t) and rawlen(t) < C_ELEMENTS then return cinsert(t, ...) end
  if type(t) ~= "table" or nargs < 1 or nargs > 2 then return cinsert(t, ...) end
  local e = #t + 1
  if nargs == 1 then
    t[e] = ...
    return
  end
  local pos, value = ...
  local p = integer_arg(pos, nil)
  if p == nil or p < 1 or p > e then return cinsert(t, pos, value) end -- C's argument error
  for k = e, p + 1, -1 do t[k] = t[k - 1] end
  t[p] = value
end

function B.remove(t, pos)
  if plain(t) and rawlen(t) < C_ELEMENTS then return cremove(t, pos) end
  if type(t) ~= "table" then return cremove(t, pos) end
  local size = #t
  local p = integer_arg(pos, size)
  if p == nil then return cremove(t, pos) end
  if pos ~= nil and size + 1 ~= p and (p < 1 or p > size + 1) then
    return cremove(t, pos) -- C's "position out of bounds"
  end
  local value = t[p]
  for k = p, size - 1 do t[k] = t[k + 1] end
  if p <= size then t[size] = nil end
  return value
end

local function less(a, b) return a < b end

function B.sort(t, comp)
  if comp ~= nil and type(comp) ~= "function" then return csort(t, comp) end
  if comp == nil and plain(t) and rawlen(t) < C_ELEMENTS then return csort(t) end
  -- every comparison runs Lua code, so the hook keeps counting
  local f = comp or less
  return csort(t, function(a, b) return f(a, b) end)
end

-- B.always_lua (tests): run every pattern in the Lua matcher, to compare it with C
B.always_lua = false
return B
