var a = 1
System.print(Undefined) // expect error
