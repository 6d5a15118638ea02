#!/usr/bin/env wren
// A first line starting with "#!" is skipped.
System.print("after shebang") // expect: after shebang
