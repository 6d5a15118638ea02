foreign class Point { // expect error
  construct new() {}
}
