class Sibling {
  static name { "sibling" }
}
