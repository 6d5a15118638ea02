// Num as wren.io documents it: constants, formatting (%.14g style) and methods.
System.print(Num.epsilon == 2.pow(-52)) // expect: true
System.print(1 + Num.epsilon > 1) // expect: true
System.print(1 + Num.epsilon / 2 == 1) // expect: true
System.print(Num.infinity) // expect: infinity
System.print(-Num.infinity) // expect: -infinity
System.print(Num.nan.isNan) // expect: true
System.print(Num.pi) // expect: 3.1415926535898
System.print(Num.tau) // expect: 6.2831853071796
System.print(Num.tau == 2 * Num.pi) // expect: true
System.print(Num.largest) // expect: 1.7976931348623e+308
System.print(Num.smallest) // expect: 2.2250738585072e-308
System.print(Num.maxSafeInteger) // expect: 9.007199254741e+15
System.print(Num.minSafeInteger) // expect: -9.007199254741e+15
System.print(Num.maxSafeInteger == 9007199254740991) // expect: true
System.print(0.1 + 0.2) // expect: 0.3
System.print(1e20) // expect: 1e+20
System.print(123456789012345) // expect: 1.2345678901234e+14
System.print(1/3) // expect: 0.33333333333333
System.print(2.5e-7) // expect: 2.5e-07
System.print(0.0001) // expect: 0.0001
System.print(-0) // expect: -0
System.print(1/0) // expect: infinity
System.print(0/0) // expect: nan
System.print(1.5.fraction) // expect: 0.5
System.print((-3.2).fraction) // expect: -0.2
System.print(1.5.truncate) // expect: 1
System.print((-3.2).truncate) // expect: -3
System.print((-3).sign) // expect: -1
System.print(0.sign) // expect: 0
System.print(5.5.sign) // expect: 1
System.print(1.5.round) // expect: 2
System.print((-3.2).round) // expect: -3
System.print((-3.7).round) // expect: -4
System.print((-2.5).round) // expect: -3
System.print(8.log2) // expect: 3
System.print(0.exp) // expect: 1
System.print(1.exp) // expect: 2.718281828459
System.print(10.log) // expect: 2.302585092994
System.print((-8).pow(1/3)) // expect: nan
System.print(2.pow(0.5) == 2.sqrt) // expect: true
System.print(1.atan(1)) // expect: 0.78539816339745
System.print((-1).atan(-1)) // expect: -2.3561944901923
System.print(1.atan) // expect: 0.78539816339745
System.print(27.cbrt) // expect: 3
System.print((-123).abs) // expect: 123
System.print(1.5.ceil) // expect: 2
System.print((-3.2).ceil) // expect: -3
System.print(1.5.floor) // expect: 1
System.print((-3.2).floor) // expect: -4
System.print(99999.isInfinity) // expect: false
System.print((1/0).isInteger) // expect: false
System.print(2.3.isInteger) // expect: false
System.print((-1).sqrt) // expect: nan
System.print((-10).clamp(1, 5)) // expect: 1
System.print(3.clamp(1, 5)) // expect: 3
System.print(-5 % 3) // expect: -2
System.print(5.5 % 2) // expect: 1.5
System.print(~5) // expect: 4294967290
System.print(1 << 31) // expect: 2147483648
System.print(-1 >> 1) // expect: 2147483647
System.print(0xFF) // expect: 255
System.print(Num.fromString("1e3")) // expect: 1000
System.print(Num.fromString("12abc")) // expect: null
System.print(Num.fromString("")) // expect: null
System.print(Num.fromString("-3.5")) // expect: -3.5
System.print(1 == "1") // expect: false
System.print(12345678.9) // expect: 12345678.9
System.print(1234567890123456789) // expect: 1.2345678901235e+18
System.print(1.type) // expect: Num
System.print(Num.type) // expect: Num metaclass
System.print(1.5..2.5) // expect: 1.5..2.5
System.print(3...5) // expect: 3...5
var range = 1.2..3.4
System.print(range.min) // expect: 1.2
System.print(range.max) // expect: 3.4
System.print(range.isInclusive) // expect: true
