// core.wren -- Kryon Wren's core classes, the part written in Wren.
//
// The VM compiles this into the core module at start-up and core.c then
// binds its C primitives onto the classes declared here. Whatever can be
// done without running Wren code (counting, copying, searching, printing
// and joining the built-in values) is a primitive. What is left here is
// what has to call back into Wren: a block argument, the iterate and
// iteratorValue of a user's sequence, a user's toString. Those calls run
// as ordinary bytecode, so a fiber may yield from inside any of them.
//
// Methods whose names end in "_" are private helpers; the plain*_ ones
// are primitives that answer null (or false) when a value needs a Wren
// toString or a Wren iterator, and the Wren code next to them takes over.

class Bool {}
class Fiber {}
class Fn {}
class Null {}
class Num {}

// Everything here speaks only the iterator protocol: iterate(cursor)
// gives the next cursor (null asks for the first; false or null ends)
// and iteratorValue(cursor) the element under it.
class Sequence {
  each(fn) {
    for (item in this) fn.call(item)
  }

  // all/any stop at the first deciding answer and return it as it is.
  all(test) {
    var answer = true
    for (item in this) {
      answer = test.call(item)
      if (!answer) break
    }
    return answer
  }

  any(test) {
    var answer = false
    for (item in this) {
      answer = test.call(item)
      if (answer) break
    }
    return answer
  }

  contains(value) {
    for (item in this) if (value == item) return true
    return false
  }

  count {
    var n = 0
    for (item in this) n = n + 1
    return n
  }

  count(test) {
    var n = 0
    for (item in this) if (test.call(item)) n = n + 1
    return n
  }

  isEmpty { !iterate(null) }

  reduce(fn) {
    var cursor = iterate(null)
    if (!cursor) Fiber.abort("Can't reduce an empty sequence.")
    var total = iteratorValue(cursor)
    cursor = iterate(cursor)
    while (cursor) {
      total = fn.call(total, iteratorValue(cursor))
      cursor = iterate(cursor)
    }
    return total
  }

  reduce(seed, fn) {
    var total = seed
    for (item in this) total = fn.call(total, item)
    return total
  }

  toList {
    var items = []
    for (item in this) items.add(item)
    return items
  }

  // The elements are gathered first; List.join does the rest.
  join() { toList.join("") }
  join(separator) { toList.join(separator) }

  map(fn) {
    var source = this
    return SequenceView.new_(source, null) {|at| fn.call(source.iteratorValue(at)) }
  }

  where(test) {
    var source = this
    return SequenceView.new_(source, Fn.new {|at|
      at = source.iterate(at)
      while (at && !test.call(source.iteratorValue(at))) at = source.iterate(at)
      return at
    }, null)
  }

  skip(count) {
    Sequence.checkCount_(count)
    var source = this
    return SequenceView.new_(source, Fn.new {|at|
      // Only the first step skips; later ones just follow the source.
      if (at) return source.iterate(at)
      var left = count
      at = source.iterate(null)
      while (at && left > 0) {
        at = source.iterate(at)
        left = left - 1
      }
      return at
    }, null)
  }

  // take's cursor is a fresh [stepsTaken, sourceCursor] pair each step.
  take(count) {
    Sequence.checkCount_(count)
    var source = this
    return SequenceView.new_(source, Fn.new {|at|
      var taken = at ? at[0] : 0
      if (taken >= count) return false
      var inner = source.iterate(at ? at[1] : null)
      return inner ? [taken + 1, inner] : inner
    }) {|at| source.iteratorValue(at[1]) }
  }
}

// The lazy sequence behind map, where, skip and take over a source
// sequence: `advance` turns a cursor into the next one and `read` a
// cursor into its element. Its iterate and iteratorValue are primitives
// that hand the call to these functions directly (the function runs in
// place of the method). The
// view keeps no position of its own; the cursor a loop holds is the whole
// state, so any number of loops can walk one view at the same time.
class SequenceView is Sequence {
  // A null step means "as the source does": the primitives then call the
  // source's own primitive directly when it has one (lists, ranges,
  // strings, maps, other views) and the stand-in function otherwise.
  construct new_(source, advance, read) {
    _source = source
    _advance = advance || Fn.new {|at| source.iterate(at) }
    _read = read || Fn.new {|at| source.iteratorValue(at) }
    _advanceIsSource = advance == null
    _readIsSource = read == null
  }
}

class String is Sequence {
  bytes { StringBytes.of_(this) }
  codePoints { StringCodePoints.of_(this) }
}

// Views of a string's bytes and code points; their subscript, count and
// iterator methods are primitives over the string in the first field.
class StringBytes is Sequence {
  construct of_(text) { _text = text }
}

class StringCodePoints is Sequence {
  construct of_(text) { _text = text }
}

class List is Sequence {
  addAll(other) {
    if (!appendPlain_(other)) for (item in other) add(item)
    return other
  }

  +(other) {
    var result = toList
    result.addAll(other)
    return result
  }

  sort() {
    if (!sortPlain_()) sort {|a, b| a < b }
    return this
  }

  sort(comparer) {
    if (!(comparer is Fn)) Fiber.abort("Comparer must be a function.")
    mergeSort_(comparer)
    return this
  }

  // Bottom-up merge sort. Runs of 8 are first sorted in place by
  // insertion; then runs of 8, 16, 32... are merged pair by pair into a
  // scratch list and the two lists trade places. An element moves ahead
  // of another only when the comparer says it must, so equal elements
  // keep their order.
  mergeSort_(before) {
    var n = count
    if (n < 2) return
    var lo = 0
    while (lo < n) {
      var hi = (lo + 8).min(n)
      var i = lo + 1
      while (i < hi) {
        var item = this[i]
        var j = i
        while (j > lo && before.call(item, this[j - 1])) {
          this[j] = this[j - 1]
          j = j - 1
        }
        this[j] = item
        i = i + 1
      }
      lo = hi
    }
    var from = this
    var into = List.filled(n, null)
    var width = 8
    while (width < n) {
      lo = 0
      while (lo < n) {
        var mid = (lo + width).min(n)
        var hi = (mid + width).min(n)
        var left = lo
        var right = mid
        var out = lo
        if (right < hi) {
          // a and b are the heads of the two runs; only the one taken
          // is read again.
          var a = from[left]
          var b = from[right]
          while (true) {
            if (before.call(b, a)) {
              into[out] = b
              out = out + 1
              right = right + 1
              if (right == hi) break
              b = from[right]
            } else {
              into[out] = a
              out = out + 1
              left = left + 1
              if (left == mid) break
              a = from[left]
            }
          }
        }
        while (left < mid) {
          into[out] = from[left]
          left = left + 1
          out = out + 1
        }
        while (right < hi) {
          into[out] = from[right]
          right = right + 1
          out = out + 1
        }
        lo = hi
      }
      var swap = from
      from = into
      into = swap
      width = width + width
    }
    if (!Object.same(from, this)) {
      var k = 0
      while (k < n) {
        this[k] = from[k]
        k = k + 1
      }
    }
  }

  contains(value) {
    var found = containsPlain_(value)
    return found == null ? super.contains(value) : found
  }

  join() { joinPlain_("") || joinSpelled_("") }
  join(separator) { joinPlain_(separator) || joinSpelled_(separator) }

  // Some element has a Wren toString: spell each one out, then join.
  joinSpelled_(separator) {
    var texts = []
    for (item in this) {
      var text = item.toString
      if (!(text is String)) Fiber.abort("toString must return a string.")
      texts.add(text)
    }
    return texts.joinPlain_(separator)
  }

  toString { plainText_ || "[" + joinSpelled_(", ") + "]" }
}

class Map is Sequence {
  keys { MapKeys.of_(this) }
  values { MapValues.of_(this) }

  toString {
    var text = plainText_
    if (text) return text
    var pairs = []
    for (entry in this) pairs.add("%(entry.key): %(entry.value)")
    return "{" + pairs.join(", ") + "}"
  }
}

// One key/value pair of a map. Map.iteratorValue (a primitive) makes
// them; key and value are primitives reading the two fields.
class MapEntry {
  construct new(key, value) {
    _key = key
    _value = value
  }
  toString { "%(key):%(value)" }
}

// Views of a map's keys and of its values (primitives over the map in
// the first field, walking the same cursors as the map itself).
class MapKeys is Sequence {
  construct of_(map) { _map = map }
}

class MapValues is Sequence {
  construct of_(map) { _map = map }
}

class Range is Sequence {}

// The compiler records a class's attributes here: `self` holds the
// class's own, `methods` maps each method signature to its attributes.
class ClassAttributes {
  construct new(own, perMethod) {
    _own = own
    _perMethod = perMethod
  }
  self { _own }
  methods { _perMethod }
}

// Output goes through put_(value, ending), a primitive that writes a
// plain value and the ending in one go and answers false for a value
// whose text a Wren toString decides; that text is then written instead.
class System {
  static print() { put_("", "\n") }

  static print(value) {
    if (!put_(value, "\n")) put_(textOf_(value), "\n")
    return value
  }

  static write(value) {
    if (!put_(value, "")) put_(textOf_(value), "")
    return value
  }

  static printAll(sequence) {
    writeAll(sequence)
    put_("", "\n")
  }

  static writeAll(sequence) {
    for (value in sequence) write(value)
  }

  static textOf_(value) {
    var text = value.toString
    return text is String ? text : "[invalid toString]"
  }
}
