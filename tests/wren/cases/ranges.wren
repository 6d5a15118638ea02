var r = 1..5
System.print(r) // expect: 1..5
System.print(1...5) // expect: 1...5
System.print(r.from) // expect: 1
System.print(r.to) // expect: 5
System.print(r.min) // expect: 1
System.print((5..1).max) // expect: 5
System.print(r.isInclusive) // expect: true
System.print((1...5).isInclusive) // expect: false
System.print(r.toList) // expect: [1, 2, 3, 4, 5]
System.print((1...5).toList) // expect: [1, 2, 3, 4]
System.print((3..1).toList) // expect: [3, 2, 1]
System.print((1..5).map {|x| x * 2 }.toList) // expect: [2, 4, 6, 8, 10]
System.print(r.contains(3)) // expect: true
System.print(r.count) // expect: 5
System.print(1..2 == 1..2) // expect: true
