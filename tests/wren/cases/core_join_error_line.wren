// join checks its separator before it looks at any element.
class Item {
  construct new() {}
  toString { "item" }
}
System.print([Item.new()].join("/")) // expect: item
[Item.new()].join(3) // expect runtime error: Separator must be a string.
