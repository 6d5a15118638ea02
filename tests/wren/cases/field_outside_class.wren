System.print(_x) // expect error
