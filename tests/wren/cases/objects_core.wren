System.print(true) // expect: true
System.print(!false) // expect: true
System.print(null) // expect: null
System.print(true.toString) // expect: true
System.print(Object.same(1, 1)) // expect: true
System.print(Object.same([], [])) // expect: false
System.print(1 is Num) // expect: true
System.print("s" is String) // expect: true
System.print(null is Null) // expect: true
System.print(true is Bool) // expect: true
System.print([] is List) // expect: true
System.print([] is Sequence) // expect: true
System.print({} is Map) // expect: true
System.print((1..2) is Range) // expect: true
System.print(Fn.new {} is Fn) // expect: true
System.print(Num is Class) // expect: true
System.print(1.type) // expect: Num
System.print("x".type) // expect: String
System.print(Num.type) // expect: Num metaclass
System.print(List.supertype) // expect: Sequence
System.print(Class.supertype) // expect: Object
System.print(Object.supertype) // expect: null
System.print(System.clock > 0) // expect: true
System.write("no newline")
System.print() // expect: no newline
System.printAll([1, "a", true]) // expect: 1atrue
System.writeAll([1, 2])
System.print("") // expect: 12
