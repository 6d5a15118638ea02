// Text formatting (Wren): the summary sentence under the list.

class Format {
  static summary(done, total) {
    if (total == 0) return "Nothing to do"
    var left = total - done
    if (left == 0) return "All %(total) done!"
    var noun = left == 1 ? "item" : "items"
    return "%(left) %(noun) left of %(total)"
  }
}
