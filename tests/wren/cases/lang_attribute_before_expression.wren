// A runtime attribute may not stand before a statement either.
#!runtime
System.print(1) // expect error
