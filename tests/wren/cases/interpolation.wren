var name = "Wren"
System.print("Hello, %(name)!") // expect: Hello, Wren!
System.print("1 + 2 = %(1 + 2)") // expect: 1 + 2 = 3
System.print("nested %("inner %(1 + 1) done") end") // expect: nested inner 2 done end
System.print("%(name)%(name)") // expect: WrenWren
System.print("list %([1, 2]) map %({"k": "v"})") // expect: list [1, 2] map {k: v}
System.print("call %(name.count)") // expect: call 4
System.print("paren %((1 + 2) * 3)") // expect: paren 9
