System.print(3.7.floor) // expect: 3
System.print(3.2.ceil) // expect: 4
System.print(-3.5.abs) // expect: -3.5
System.print((-3.5).abs) // expect: 3.5
System.print(2.5.round) // expect: 3
System.print(9.sqrt) // expect: 3
System.print(2.pow(10)) // expect: 1024
System.print(3.9.truncate) // expect: 3
System.print(1.5.fraction) // expect: 0.5
System.print(5.isInteger) // expect: true
System.print(5.5.isInteger) // expect: false
System.print((0/0).isNan) // expect: true
System.print((1/0).isInfinity) // expect: true
System.print(-4.sign) // expect: -1
System.print(3.min(7)) // expect: 3
System.print(3.max(7)) // expect: 7
System.print(12.clamp(0, 10)) // expect: 10
System.print(5 & 3) // expect: 1
System.print(5 | 3) // expect: 7
System.print(5 ^ 3) // expect: 6
System.print(1 << 4) // expect: 16
System.print(256 >> 4) // expect: 16
System.print(~0) // expect: 4294967295
System.print(Num.fromString("42")) // expect: 42
System.print(Num.fromString(" 2.5 ")) // expect: 2.5
System.print(Num.fromString("abc")) // expect: null
System.print(Num.pi > 3.14) // expect: true
System.print(Num.largest > 1e300) // expect: true
System.print(Num.maxSafeInteger) // expect: 9.007199254741e+15
System.print(8.log2) // expect: 3
System.print(0.cos) // expect: 1
System.print(1.5.toString) // expect: 1.5
System.print(10.toString + "!") // expect: 10!
