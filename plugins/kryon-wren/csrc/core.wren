// core.wren -- The parts of Kryon Wren's core library written in Wren.
// Compiled into the core module when a VM starts; core.c then binds the
// primitive (C) methods onto these classes.

class Bool {}
class Fiber {}
class Fn {}
class Null {}
class Num {}

class Sequence {
  all(f) {
    var result = true
    for (element in this) {
      result = f.call(element)
      if (!result) return result
    }
    return result
  }

  any(f) {
    var result = false
    for (element in this) {
      result = f.call(element)
      if (result) return result
    }
    return result
  }

  contains(element) {
    for (item in this) {
      if (element == item) return true
    }
    return false
  }

  count {
    var result = 0
    for (element in this) result = result + 1
    return result
  }

  count(f) {
    var result = 0
    for (element in this) {
      if (f.call(element)) result = result + 1
    }
    return result
  }

  each(f) {
    for (element in this) f.call(element)
  }

  isEmpty { iterate(null) ? false : true }

  map(transformation) { MapSequence.new(this, transformation) }

  skip(count) {
    if (!(count is Num) || !count.isInteger || count < 0) {
      Fiber.abort("Count must be a non-negative integer.")
    }
    return SkipSequence.new(this, count)
  }

  take(count) {
    if (!(count is Num) || !count.isInteger || count < 0) {
      Fiber.abort("Count must be a non-negative integer.")
    }
    return TakeSequence.new(this, count)
  }

  where(predicate) { WhereSequence.new(this, predicate) }

  reduce(acc, f) {
    for (element in this) acc = f.call(acc, element)
    return acc
  }

  reduce(f) {
    var iter = iterate(null)
    if (!iter) Fiber.abort("Can't reduce an empty sequence.")
    var result = iteratorValue(iter)
    while (iter = iterate(iter)) result = f.call(result, iteratorValue(iter))
    return result
  }

  join() { join("") }

  join(separator) {
    if (!(separator is String)) Fiber.abort("Separator must be a string.")
    var parts = []
    for (element in this) parts.add(element.toString)
    return parts.joinStrings_(separator)
  }

  toList {
    var result = []
    for (element in this) result.add(element)
    return result
  }
}

class MapSequence is Sequence {
  construct new(sequence, fn) {
    _sequence = sequence
    _fn = fn
  }
  iterate(iterator) { _sequence.iterate(iterator) }
  iteratorValue(iterator) { _fn.call(_sequence.iteratorValue(iterator)) }
}

class SkipSequence is Sequence {
  construct new(sequence, count) {
    _sequence = sequence
    _count = count
  }
  iterate(iterator) {
    if (iterator) return _sequence.iterate(iterator)
    iterator = _sequence.iterate(iterator)
    var count = _count
    while (count > 0 && iterator) {
      iterator = _sequence.iterate(iterator)
      count = count - 1
    }
    return iterator
  }
  iteratorValue(iterator) { _sequence.iteratorValue(iterator) }
}

// The lazy sequences keep no iteration state of their own: everything a
// loop needs travels in the iterator value, so one sequence can be
// iterated by any number of loops at once (nested or interleaved).
// TakeSequence's iterator is a fresh [taken, innerIterator] pair per step.
class TakeSequence is Sequence {
  construct new(sequence, count) {
    _sequence = sequence
    _count = count
  }
  iterate(iterator) {
    var taken = 1
    var inner = null
    if (iterator) {
      taken = iterator[0] + 1
      inner = iterator[1]
    }
    if (taken > _count) return false
    inner = _sequence.iterate(inner)
    return inner ? [taken, inner] : inner
  }
  iteratorValue(iterator) { _sequence.iteratorValue(iterator[1]) }
}

class WhereSequence is Sequence {
  construct new(sequence, fn) {
    _sequence = sequence
    _fn = fn
  }
  iterate(iterator) {
    while (iterator = _sequence.iterate(iterator)) {
      if (_fn.call(_sequence.iteratorValue(iterator))) break
    }
    return iterator
  }
  iteratorValue(iterator) { _sequence.iteratorValue(iterator) }
}

class String is Sequence {
  bytes { StringByteSequence.new(this) }
  codePoints { StringCodePointSequence.new(this) }
}

class StringByteSequence is Sequence {
  construct new(string) {
    _string = string
  }
  [index] { _string.byteAt_(index) }
  iterate(iterator) { _string.iterateByte_(iterator) }
  iteratorValue(iterator) { _string.byteAt_(iterator) }
  count { _string.byteCount_ }
}

class StringCodePointSequence is Sequence {
  construct new(string) {
    _string = string
  }
  [index] { _string.codePointAt_(index) }
  iterate(iterator) { _string.iterate(iterator) }
  iteratorValue(iterator) { _string.codePointAt_(iterator) }
  count { _string.count }
}

class List is Sequence {
  addAll(other) {
    for (element in other) add(element)
    return other
  }

  sort() {
    if (sortDefault_()) return this
    return sort {|low, high| low < high }
  }

  sort(comparer) {
    if (!(comparer is Fn)) Fiber.abort("Comparer must be a function.")
    if (count > 1) sortRange_(0, count - 1, comparer)
    return this
  }

  sortRange_(lo, hi, comparer) {
    while (lo < hi) {
      var p = partition_(lo, hi, comparer)
      if (p - lo < hi - p) {
        sortRange_(lo, p - 1, comparer)
        lo = p + 1
      } else {
        sortRange_(p + 1, hi, comparer)
        hi = p - 1
      }
    }
  }

  partition_(lo, hi, comparer) {
    swap(((lo + hi) / 2).floor, hi)
    var pivot = this[hi]
    var i = lo
    var j = lo
    while (j < hi) {
      if (comparer.call(this[j], pivot)) {
        swap(i, j)
        i = i + 1
      }
      j = j + 1
    }
    swap(i, hi)
    return i
  }

  toString { "[%(join(", "))]" }

  +(other) {
    var result = this[0..-1]
    for (element in other) result.add(element)
    return result
  }

  *(count) {
    if (!(count is Num) || !count.isInteger || count < 0) {
      Fiber.abort("Count must be a non-negative integer.")
    }
    var result = []
    var i = 0
    while (i < count) {
      result.addAll(this)
      i = i + 1
    }
    return result
  }
}

class Map is Sequence {
  keys { MapKeySequence.new(this) }
  values { MapValueSequence.new(this) }

  toString {
    var first = true
    var result = "{"
    for (key in keys) {
      if (!first) result = result + ", "
      first = false
      result = result + "%(key): %(this[key])"
    }
    return result + "}"
  }

  iteratorValue(iterator) {
    return MapEntry.new(keyIteratorValue_(iterator), valueIteratorValue_(iterator))
  }
}

class MapEntry {
  construct new(key, value) {
    _key = key
    _value = value
  }
  key { _key }
  value { _value }
  toString { "%(_key):%(_value)" }
}

class MapKeySequence is Sequence {
  construct new(map) {
    _map = map
  }
  iterate(n) { _map.iterate(n) }
  iteratorValue(iterator) { _map.keyIteratorValue_(iterator) }
}

class MapValueSequence is Sequence {
  construct new(map) {
    _map = map
  }
  iterate(n) { _map.iterate(n) }
  iteratorValue(iterator) { _map.valueIteratorValue_(iterator) }
}

class Range is Sequence {}

class ClassAttributes {
  self { _self }
  methods { _methods }
  construct new(self, methods) {
    _self = self
    _methods = methods
  }
}

class System {
  static print() {
    writeString_("\n")
  }

  static print(obj) {
    writeObject_(obj)
    writeString_("\n")
    return obj
  }

  static printAll(sequence) {
    for (object in sequence) writeObject_(object)
    writeString_("\n")
  }

  static write(obj) {
    writeObject_(obj)
    return obj
  }

  static writeAll(sequence) {
    for (object in sequence) writeObject_(object)
  }

  static writeObject_(obj) {
    if (writeDirect_(obj)) return
    var string = obj.toString
    if (string is String) {
      writeString_(string)
    } else {
      writeString_("[invalid toString]")
    }
  }
}
