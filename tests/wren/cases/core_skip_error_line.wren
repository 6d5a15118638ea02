// A core method that rejects its argument blames the script line that
// called it, even when the check runs inside the Wren-written core.
var words = ["a", "b"]
var lazy = words.map {|w| w + w }
System.print(lazy.toList) // expect: [aa, bb]
words.skip(-2) // expect runtime error: Count must be a non-negative integer.
