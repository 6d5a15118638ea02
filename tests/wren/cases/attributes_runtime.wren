// Runtime attributes (#!) are readable through Class.attributes.
#!key
#ignored = "compile time only"
#!group(key = value, key = 32, key = false, other)
#!group(more = "text", key = null)
class Example {
  #!getter
  getter { 1 }

  #!regular
  #plain(x = 1)
  regular(a, b) {}

  #!isStatic = true
  static other() {}

  #compileOnly
  hidden() {}

  #!ctor(
    a = 1,
    b
  )
  construct new() {}

  #!setter = 1.5
  #!setter = 2
  value=(v) {}

  #!sub
  [i] { i }

  #!op
  +(o) { o }
}

var attrs = Example.attributes
System.print(attrs is ClassAttributes) // expect: true
System.print(attrs) // expect: instance of ClassAttributes
System.print(attrs.self.count) // expect: 2
System.print(attrs.self[null]) // expect: {key: [null]}
var group = attrs.self["group"]
System.print(group.count) // expect: 3
System.print(group["key"]) // expect: [value, 32, false, null]
System.print(group["other"]) // expect: [null]
System.print(group["more"]) // expect: [text]
System.print(attrs.self.containsKey("ignored")) // expect: false
System.print(attrs.self[null].containsKey("ignored")) // expect: false

var methods = attrs.methods
System.print(methods.count) // expect: 7
System.print(methods["getter"]) // expect: {null: {getter: [null]}}
System.print(methods["regular(_,_)"]) // expect: {null: {regular: [null]}}
System.print(methods["static other()"]) // expect: {null: {isStatic: [true]}}
System.print(methods["init new()"]["ctor"]["a"]) // expect: [1]
System.print(methods["init new()"]["ctor"]["b"]) // expect: [null]
System.print(methods["value=(_)"]) // expect: {null: {setter: [1.5, 2]}}
System.print(methods["[_]"]) // expect: {null: {sub: [null]}}
System.print(methods["+(_)"]) // expect: {null: {op: [null]}}
System.print(methods.containsKey("hidden()")) // expect: false
System.print(methods["regular(_,_)"][null].containsKey("plain")) // expect: false

// The class still works.
System.print(Example.new().getter) // expect: 1
System.print(Example.new()[5]) // expect: 5
