// Imported as "./lang_pkg/entry": its own relative imports start from lang_pkg/.
import "./util/helper" for Helper
import "./util/../sibling" for Sibling
class Entry {
  static describe { "entry uses %(Helper.name) and %(Sibling.name)" }
}
