-- kryon run hello.lua --call greet Ada
print("hello from Lua " .. _VERSION)

function greet(name)
  return "hello, " .. name
end
