System.print("before") // expect: before
System.print(1 + "x") // expect runtime error: Right operand must be a number.
