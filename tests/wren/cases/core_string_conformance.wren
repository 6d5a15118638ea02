// Strings where Wren's behaviour is exact (wren.io core/string): indexOf
// with a start, byte-range subscripts over multi-byte characters, and the
// errors of split, replace and join on bad separators.
System.print("abcabc".indexOf("c", 0)) // expect: 2
System.print("abcabc".indexOf("c", 2)) // expect: 2
System.print("abcabc".indexOf("c", 3)) // expect: 5
System.print("abcabc".indexOf("c", -1)) // expect: 5
System.print("abcabc".indexOf("c", -3)) // expect: 5
System.print("abcabc".indexOf("ab", 1)) // expect: 3
System.print("abcabc".indexOf("ab", 4)) // expect: -1
System.print("abc".indexOf("", 2)) // expect: 2
System.print("søméஃthîng".indexOf("m", 1)) // expect: 3
System.print("søméஃthîng".indexOf("î", 9)) // expect: 11
System.print(Fiber.new { "abc".indexOf("a", 3) }.try()) // expect: Start out of bounds.
System.print(Fiber.new { "abc".indexOf("a", -4) }.try()) // expect: Start out of bounds.
System.print(Fiber.new { "abc".indexOf("a", 1.5) }.try()) // expect: Start must be an integer.
System.print(Fiber.new { "abc".indexOf("a", "1") }.try()) // expect: Start must be a number.
System.print(Fiber.new { "abc".indexOf(1, 0) }.try()) // expect: Argument must be a string.
// A range subscript counts bytes: a byte that starts a character brings
// the whole character, a byte inside one adds nothing.
var s = "søméஃthîng"
System.print(s[0..3]) // expect: søm
System.print(s[1..2]) // expect: ø
System.print(s[2..2]) // expect: 
System.print(s[2..5]) // expect: mé
System.print(s[3...7]) // expect: méஃ
System.print(s[-3..-1]) // expect: ng
System.print(s[5..3]) // expect: ém
System.print(s[0..-1] == s) // expect: true
System.print(s[6..8].bytes.count) // expect: 3
System.print("\xff\x80a"[0..2].bytes.toList) // expect: [97]
// split, replace and join name their bad separators.
System.print(Fiber.new { "a b".split("") }.try()) // expect: Delimiter must be a non-empty string.
System.print(Fiber.new { "a b".split(1) }.try()) // expect: Delimiter must be a non-empty string.
System.print(Fiber.new { "a b".split(null) }.try()) // expect: Delimiter must be a non-empty string.
System.print(Fiber.new { "a b".replace("", "x") }.try()) // expect: From must be a non-empty string.
System.print(Fiber.new { "a b".replace(2, "x") }.try()) // expect: From must be a non-empty string.
System.print(Fiber.new { "a b".replace(" ", 3) }.try()) // expect: To must be a string.
System.print(Fiber.new { "a b".join(1) }.try()) // expect: Separator must be a string.
System.print(Fiber.new { ["a"].join(false) }.try()) // expect: Separator must be a string.
System.print("a\0b\0c".split("\0")) // expect: [a, b, c]
System.print("a\0b".replace("\0", "-")) // expect: a-b
System.print("a\0b".indexOf("b")) // expect: 2
