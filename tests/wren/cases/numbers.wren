System.print(1 + 2) // expect: 3
System.print(7 - 10) // expect: -3
System.print(2 * 3.5) // expect: 7
System.print(1 / 4) // expect: 0.25
System.print(7 % 3) // expect: 1
System.print(-7 % 3) // expect: -1
System.print(0xff) // expect: 255
System.print(0x10 + 1) // expect: 17
System.print(1e3) // expect: 1000
System.print(2.5e-3) // expect: 0.0025
System.print(1e21) // expect: 1e+21
System.print(123456789012345) // expect: 1.2345678901234e+14
System.print(1 / 0) // expect: infinity
System.print(-1 / 0) // expect: -infinity
System.print(0 / 0) // expect: nan
System.print(-0) // expect: -0
System.print(0.1 + 0.2) // expect: 0.3
System.print(1 - 1) // expect: 0
System.print(1 -1) // expect: 0
System.print(2 + 3 * 4) // expect: 14
System.print((2 + 3) * 4) // expect: 20
System.print(-"abc".count) // expect: -3
System.print(3 < 4) // expect: true
System.print(3 >= 4) // expect: false
System.print(1 == 1.0) // expect: true
System.print(1 != 2) // expect: true
System.print(1 == "1") // expect: false
