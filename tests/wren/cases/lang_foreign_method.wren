// A foreign method the host does not provide is a compile error where it is declared.
class Native {
  construct new() {}
  foreign method(a) // expect error
}
