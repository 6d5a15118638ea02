System.print("hello" + " " + "world") // expect: hello world
System.print("tab\tquote\"back\\slash") // expect: tab	quote"back\slash
System.print("\x41\u00e9") // expect: Aé
System.print("\u00e9".count) // expect: 1
System.print("\u00e9".bytes.count) // expect: 2
System.print("abc".count) // expect: 3
System.print("abc"[1]) // expect: b
System.print("abc"[-1]) // expect: c
System.print("hello"[1..3]) // expect: ell
System.print("hello"[1...3]) // expect: el
System.print("hello"[3..1]) // expect: lle
System.print("hello".contains("ell")) // expect: true
System.print("hello".startsWith("he")) // expect: true
System.print("hello".endsWith("lo")) // expect: true
System.print("hello".indexOf("l")) // expect: 2
System.print("hello".indexOf("z")) // expect: -1
System.print("hello".indexOf("l", 3)) // expect: 3
System.print("a,b,c".split(",")) // expect: [a, b, c]
System.print("aXbXc".replace("X", "--")) // expect: a--b--c
System.print("  pad  ".trim() + "|") // expect: pad|
System.print("  pad  ".trimStart() + "|") // expect: pad  |
System.print("xxpadxx".trimEnd("x")) // expect: xxpad
System.print("ab" * 3) // expect: ababab
System.print("abc".bytes.toList) // expect: [97, 98, 99]
System.print("héllo".codePoints.toList) // expect: [104, 233, 108, 108, 111]
System.print(String.fromCodePoint(233)) // expect: é
System.print(String.fromByte(65)) // expect: A
System.print("a" == "a") // expect: true
System.print("a" != "b") // expect: true
System.print("abc".toList) // expect: [a, b, c]
System.print("".isEmpty) // expect: true
System.print("café".count) // expect: 4
for (c in "hé!") System.print(c)
// expect: h
// expect: é
// expect: !
System.print("100\%") // expect: 100%
System.print("\%(not interpolated)") // expect: %(not interpolated)
