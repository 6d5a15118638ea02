// "../sibling" from lang_pkg/util/ is lang_pkg/sibling: the same module the
// entry imported, so its top level runs once.
import "../sibling" for Sibling
System.print("helper loaded")
class Helper {
  static name { "helper of %(Sibling.name)" }
}
