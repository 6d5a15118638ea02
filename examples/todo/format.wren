// Text formatting (Wren): the summary sentence under the list, and the
// percentage Python shows in its statistics.

class Format {
  static summary(done, total) {
    if (total == 0) return "Nothing to do"
    var left = total - done
    if (left == 0) return "All %(total) done!"
    var noun = left == 1 ? "item" : "items"
    return "%(left) %(noun) left of %(total)"
  }

  static percent(ratio) { "%((ratio * 100).round)\%" }
}
