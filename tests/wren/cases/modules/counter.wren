class Counter {
  static increment() {
    __count = (__count == null ? 0 : __count) + 1
  }
  static count { __count }
}
