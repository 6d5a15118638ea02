// String as wren.io documents it: byte indexes, code points, search, split, trim.
System.print(String.fromCodePoint(8225)) // expect: ‡
System.print(String.fromByte(65)) // expect: A
System.print("hello".bytes[1]) // expect: 101
System.print("hello".bytes.count) // expect: 5
System.print("hello".bytes.toList) // expect: [104, 101, 108, 108, 111]
var s = "(ᵔᴥᵔ)"
System.print(s.codePoints[0]) // expect: 40
System.print(s.codePoints[4]) // expect: 7461
System.print(s.codePoints[2]) // expect: -1
System.print(s.codePoints.toList) // expect: [40, 7508, 7461, 7508, 41]
System.print(s.count) // expect: 5
System.print(s.bytes.count) // expect: 11
System.print("abc".contains("b")) // expect: true
System.print("abc".contains("")) // expect: true
System.print("abc".endsWith("bc")) // expect: true
System.print("abc".startsWith("ab")) // expect: true
System.print("abcabc".indexOf("c")) // expect: 2
System.print("abcabc".indexOf("c", 3)) // expect: 5
System.print("abcabc".indexOf("c", -2)) // expect: 5
System.print("abcabc".indexOf("z")) // expect: -1
System.print("abcabc".indexOf("")) // expect: 0
var codePoints = []
for (c in s) codePoints.add(c)
System.print(codePoints) // expect: [(, ᵔ, ᴥ, ᵔ, )]
System.print("abc abc abc".replace(" ", "")) // expect: abcabcabc
System.print("abc abc abc".split(" ")) // expect: [abc, abc, abc]
System.print("abc".split("abc")) // expect: [, ]
System.print(",a,,b,".split(",")) // expect: [, a, , b, ]
System.print("abc".split("x")) // expect: [abc]
System.print(" \nstuff\r\t".trim()) // expect: stuff
System.print("ᵔᴥᵔᴥᵔbearᵔᴥᴥᵔᵔ".trim("ᵔᴥ")) // expect: bear
System.print(" \nstuff\r\t".trimEnd() == " \nstuff") // expect: true
System.print("ᵔᴥᵔᴥᵔbearᵔᴥᴥᵔᵔ".trimEnd("ᵔᴥ")) // expect: ᵔᴥᵔᴥᵔbear
System.print(" \nstuff\r\t".trimStart() == "stuff\r\t") // expect: true
System.print("ᵔᴥᵔᴥᵔbearᵔᴥᴥᵔᵔ".trimStart("ᵔᴥ")) // expect: bearᵔᴥᴥᵔᵔ
System.print("ab" + "cd") // expect: abcd
System.print("ab" * 3) // expect: ababab
System.print("ab" * 0) // expect: 
System.print("a" == "a") // expect: true
System.print("a" != "b") // expect: true
System.print("ʕ•ᴥ•ʔ"[5]) // expect: ᴥ
System.print("I ♥ NY"[3].bytes.toList) // expect: [153]
var example = "hello wren"
System.print(example[0...5]) // expect: hello
System.print(example[-4..-1]) // expect: wren
System.print(example[2..1]) // expect: le
System.print(example[10..-1]) // expect: 
System.print("abc".toString) // expect: abc
System.print("abc".count) // expect: 3
System.print("".isEmpty) // expect: true
System.print("abc".join("-")) // expect: a-b-c
System.print("abc".map {|c| c + c }.toList) // expect: [aa, bb, cc]
System.print("%(1 + 2) is three") // expect: 3 is three
System.print("nested %("in %("ner")")") // expect: nested in ner
System.print("\x41\u00e9\U0001F600") // expect: Aé😀
System.print("a\\b\"c\%".bytes.count) // expect: 6
System.print("\0".bytes.count) // expect: 1
System.print("abc".iterate(null)) // expect: 0
System.print("abc".iterate(0)) // expect: 1
System.print("abc".iterate(2)) // expect: false
System.print("abc".iteratorValue(1)) // expect: b
System.print("aé".iterate(1)) // expect: false
System.print("hello".bytes.iterate(null)) // expect: 0
System.print("aaa".replace("a", "bb")) // expect: bbbbbb
System.print("ab"[-1]) // expect: b
System.print(String.fromCodePoint(0x10ffff).bytes.count) // expect: 4
System.print("abc" is Sequence) // expect: true
System.print("abc".type) // expect: String
System.print("abc".take(2).toList) // expect: [a, b]
System.print("abc".skip(1).toList) // expect: [b, c]
System.print("xyz".codePoints.map {|c| c + 1 }.toList) // expect: [121, 122, 123]
System.print("héllo".bytes.where {|b| b > 127 }.count) // expect: 2
