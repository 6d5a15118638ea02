// Relative imports resolve against the folder of the module that imports.
import "./lang_pkg/entry" for Entry // expect: helper loaded
import "./lang_pkg/sibling" for Sibling
import "./lang_pkg/util/./helper" for Helper
System.print(Entry.describe) // expect: entry uses helper of sibling and sibling
System.print(Sibling.name) // expect: sibling
System.print(Helper.name) // expect: helper of sibling
