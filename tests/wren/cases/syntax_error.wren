var a = 1
System.print(a +) // expect error
