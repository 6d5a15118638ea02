System.print("x")
#!/usr/bin/env wren // expect error
