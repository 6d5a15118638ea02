// kryon run hello.wren --call Hello.greet Ada
System.print("hello from Wren")

class Hello {
  static greet(name) { "hello, %(name)" }
}
