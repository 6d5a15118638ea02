// In a block that starts a new line, the last statement ends with a newline too.
if (true) {
  System.print(1)
  System.print(2) } // expect error
