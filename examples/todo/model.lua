-- The todo model (Lua): owns the items and the filter, listens to the
-- controls, and asks the other languages to do their parts:
--   filters.kl (Lisp)  which items are visible under the filter
--   view.js    (JS)    the item elements
--   format.wren(Wren)  the summary sentence
--   stats.py   (Python) statistics and the progress bar
-- Each call falls back to plain Lua when that language is not installed.

local items = {}
local filter = "all"
local next_id = 1

local function try_call(name, ...)
  local ok, result = pcall(kryon.call, name, ...)
  if ok then return true, result end
  if not tostring(result):find("no loaded script defines", 1, true) then
    kryon.log("call to " .. name .. " failed: " .. tostring(result), "error")
  end
  return false, nil
end

local function visible_items()
  local ok, result = try_call("visible", items, filter)
  if ok then return result end
  local out = {}
  for _, item in ipairs(items) do
    if filter == "all" or (filter == "done") == item.done then out[#out + 1] = item end
  end
  return out
end

local function count_done()
  local n = 0
  for _, item in ipairs(items) do if item.done then n = n + 1 end end
  return n
end

local rendered = {}

local function lua_render(list)
  for _, id in ipairs(rendered) do kryon.removeElement(id) end
  rendered = {}
  local parent = kryon.getElementById("items")
  for _, item in ipairs(list) do
    local el = kryon.createElement("item", { id = item.id, text = item.title, class = item.done and "done" or "" })
    kryon.appendChild(parent, el)
    kryon.addEventListener(el, "click", function() toggle(item.id) end)
    rendered[#rendered + 1] = item.id
  end
end

function refresh()
  local list = visible_items()
  if not try_call("render", list) then lua_render(list) end
  local done, total = count_done(), #items
  local ok, summary = try_call("Format.summary", done, total)
  if not ok then summary = string.format("%d of %d done", done, total) end
  kryon.setProperty("summary", "text", summary)
  try_call("update_stats", items)
  kryon.setVariable("filter", filter)
end

function add(title)
  if type(title) ~= "string" or title:match("^%s*$") then return nil end
  local item = { id = "item-" .. next_id, title = title, done = false }
  next_id = next_id + 1
  items[#items + 1] = item
  refresh()
  return item.id
end

function toggle(id)
  for _, item in ipairs(items) do
    if item.id == id then item.done = not item.done end
  end
  refresh()
end

function set_filter(name)
  filter = name
  refresh()
end

function snapshot()
  return { items = items, filter = filter }
end

kryon.addEventListener("add", "click", function()
  local title = kryon.getProperty("new-item", "value")
  if add(title) then kryon.setProperty("new-item", "value", "") end
end)

for _, button in ipairs(kryon.getElementsByClass("filter")) do
  kryon.addEventListener(button, "click", function(event)
    set_filter(kryon.getProperty(event.target, "filter"))
  end)
end

refresh()
