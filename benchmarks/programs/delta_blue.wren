// DeltaBlue: an incremental one-way dataflow constraint solver.
// Constraints carry strengths; the planner keeps the strongest ones
// satisfied, and extracts a plan (an ordered list of constraints) that
// recomputes the variables after an input changes.

class Strength {
  construct new(value, name) {
    _value = value
    _name = name
  }

  value { _value }
  name { _name }
  nextWeaker { Strengths[_value + 1] }

  static stronger(a, b) { a.value < b.value }
  static weaker(a, b) { a.value > b.value }
  static weakest(a, b) { Strength.weaker(a, b) ? a : b }
  static strongest(a, b) { Strength.stronger(a, b) ? a : b }
}

var REQUIRED = Strength.new(0, "required")
var STRONG_PREFERRED = Strength.new(1, "strongPreferred")
var PREFERRED = Strength.new(2, "preferred")
var STRONG_DEFAULT = Strength.new(3, "strongDefault")
var NORMAL = Strength.new(4, "normal")
var WEAK_DEFAULT = Strength.new(5, "weakDefault")
var WEAKEST = Strength.new(6, "weakest")
var Strengths = [REQUIRED, STRONG_PREFERRED, PREFERRED, STRONG_DEFAULT,
                 NORMAL, WEAK_DEFAULT, WEAKEST, WEAKEST]

var NONE = 0
var FORWARD = 1
var BACKWARD = 2

var ThePlanner = null

class Constraint {
  construct new(strength) {
    _strength = strength
  }

  strength { _strength }

  addConstraint() {
    addToGraph()
    ThePlanner.incrementalAdd(this)
  }

  // Picks a direction and, when possible, makes this constraint determine
  // its output. Returns the constraint it overrode, or null.
  satisfy(mark) {
    chooseMethod(mark)
    if (!isSatisfied) {
      if (_strength == REQUIRED) Fiber.abort("Could not satisfy a required constraint")
      return null
    }
    markInputs(mark)
    var out = output
    var overridden = out.determinedBy
    if (overridden != null) overridden.markUnsatisfied()
    out.determinedBy = this
    if (!ThePlanner.addPropagate(this, mark)) Fiber.abort("Cycle encountered")
    out.mark = mark
    return overridden
  }

  destroyConstraint() {
    if (isSatisfied) ThePlanner.incrementalRemove(this)
    removeFromGraph()
  }

  isInput { false }
}

class UnaryConstraint is Constraint {
  construct new(variable, strength) {
    super(strength)
    _output = variable
    _satisfied = false
    addConstraint()
  }

  addToGraph() {
    _output.addConstraint(this)
    _satisfied = false
  }

  chooseMethod(mark) {
    _satisfied = _output.mark != mark && Strength.stronger(strength, _output.walkStrength)
  }

  isSatisfied { _satisfied }
  markInputs(mark) {}
  output { _output }

  recalculate() {
    _output.walkStrength = strength
    _output.stay = !isInput
    if (_output.stay) execute()
  }

  markUnsatisfied() {
    _satisfied = false
  }

  inputsKnown(mark) { true }

  removeFromGraph() {
    if (_output != null) _output.removeConstraint(this)
    _satisfied = false
  }
}

// Keeps a variable at its current value.
class StayConstraint is UnaryConstraint {
  construct new(variable, strength) {
    super(variable, strength)
  }

  execute() {}
}

// Marks a variable as changed by the user.
class EditConstraint is UnaryConstraint {
  construct new(variable, strength) {
    super(variable, strength)
  }

  isInput { true }
  execute() {}
}

class BinaryConstraint is Constraint {
  construct new(v1, v2, strength) {
    super(strength)
    _v1 = v1
    _v2 = v2
    _direction = NONE
  }

  v1 { _v1 }
  v2 { _v2 }
  direction { _direction }

  chooseMethod(mark) {
    if (_v1.mark == mark) {
      if (_v2.mark != mark && Strength.stronger(strength, _v2.walkStrength)) {
        _direction = FORWARD
      } else {
        _direction = NONE
      }
      return
    }
    if (_v2.mark == mark) {
      if (_v1.mark != mark && Strength.stronger(strength, _v1.walkStrength)) {
        _direction = BACKWARD
      } else {
        _direction = NONE
      }
      return
    }
    if (Strength.weaker(_v1.walkStrength, _v2.walkStrength)) {
      if (Strength.stronger(strength, _v1.walkStrength)) {
        _direction = BACKWARD
      } else {
        _direction = NONE
      }
    } else {
      if (Strength.stronger(strength, _v2.walkStrength)) {
        _direction = FORWARD
      } else {
        _direction = BACKWARD
      }
    }
  }

  addToGraph() {
    _v1.addConstraint(this)
    _v2.addConstraint(this)
    _direction = NONE
  }

  isSatisfied { _direction != NONE }

  markInputs(mark) {
    input.mark = mark
  }

  input { _direction == FORWARD ? _v1 : _v2 }
  output { _direction == FORWARD ? _v2 : _v1 }

  recalculate() {
    var ihn = input
    var out = output
    out.walkStrength = Strength.weakest(strength, ihn.walkStrength)
    out.stay = ihn.stay
    if (out.stay) execute()
  }

  markUnsatisfied() {
    _direction = NONE
  }

  inputsKnown(mark) {
    var i = input
    return i.mark == mark || i.stay || i.determinedBy == null
  }

  removeFromGraph() {
    if (_v1 != null) _v1.removeConstraint(this)
    if (_v2 != null) _v2.removeConstraint(this)
    _direction = NONE
  }
}

// dest = src * scale + offset, solvable in both directions.
class ScaleConstraint is BinaryConstraint {
  construct new(src, scale, offset, dest, strength) {
    super(src, dest, strength)
    _scale = scale
    _offset = offset
    addConstraint()
  }

  addToGraph() {
    super.addToGraph()
    _scale.addConstraint(this)
    _offset.addConstraint(this)
  }

  removeFromGraph() {
    super.removeFromGraph()
    if (_scale != null) _scale.removeConstraint(this)
    if (_offset != null) _offset.removeConstraint(this)
  }

  markInputs(mark) {
    super.markInputs(mark)
    _scale.mark = mark
    _offset.mark = mark
  }

  execute() {
    if (direction == FORWARD) {
      v2.value = v1.value * _scale.value + _offset.value
    } else {
      v1.value = (v2.value - _offset.value) / _scale.value
    }
  }

  recalculate() {
    var ihn = input
    var out = output
    out.walkStrength = Strength.weakest(strength, ihn.walkStrength)
    out.stay = ihn.stay && _scale.stay && _offset.stay
    if (out.stay) execute()
  }
}

// v1 == v2.
class EqualityConstraint is BinaryConstraint {
  construct new(v1, v2, strength) {
    super(v1, v2, strength)
    addConstraint()
  }

  execute() {
    output.value = input.value
  }
}

class Variable {
  construct new(name, value) {
    _name = name
    _value = value
    _constraints = []
    _determinedBy = null
    _mark = 0
    _walkStrength = WEAKEST
    _stay = true
  }

  name { _name }
  value { _value }
  value=(v) { _value = v }
  constraints { _constraints }
  determinedBy { _determinedBy }
  determinedBy=(c) { _determinedBy = c }
  mark { _mark }
  mark=(m) { _mark = m }
  walkStrength { _walkStrength }
  walkStrength=(s) { _walkStrength = s }
  stay { _stay }
  stay=(s) { _stay = s }

  addConstraint(c) {
    _constraints.add(c)
  }

  removeConstraint(c) {
    var i = 0
    while (i < _constraints.count) {
      if (_constraints[i] == c) {
        _constraints.removeAt(i)
      } else {
        i = i + 1
      }
    }
    if (_determinedBy == c) _determinedBy = null
  }
}

class Plan {
  construct new() {
    _list = []
  }

  add(c) {
    _list.add(c)
  }

  execute() {
    for (c in _list) c.execute()
  }
}

class Planner {
  construct new() {
    _currentMark = 0
  }

  newMark() {
    _currentMark = _currentMark + 1
    return _currentMark
  }

  incrementalAdd(c) {
    var mark = newMark()
    var overridden = c.satisfy(mark)
    while (overridden != null) overridden = overridden.satisfy(mark)
  }

  incrementalRemove(c) {
    var out = c.output
    c.markUnsatisfied()
    c.removeFromGraph()
    var unsatisfied = removePropagateFrom(out)
    var strength = REQUIRED
    while (true) {
      for (u in unsatisfied) {
        if (u.strength == strength) incrementalAdd(u)
      }
      strength = strength.nextWeaker
      if (strength == WEAKEST) break
    }
  }

  makePlan(sources) {
    var mark = newMark()
    var plan = Plan.new()
    var todo = sources
    while (todo.count > 0) {
      var c = todo.removeAt(-1)
      if (c.output.mark != mark && c.inputsKnown(mark)) {
        plan.add(c)
        c.output.mark = mark
        addConstraintsConsumingTo(c.output, todo)
      }
    }
    return plan
  }

  extractPlanFromConstraints(constraints) {
    var sources = []
    for (c in constraints) {
      if (c.isInput && c.isSatisfied) sources.add(c)
    }
    return makePlan(sources)
  }

  addPropagate(c, mark) {
    var todo = [c]
    while (todo.count > 0) {
      var d = todo.removeAt(-1)
      if (d.output.mark == mark) {
        incrementalRemove(c)
        return false
      }
      d.recalculate()
      addConstraintsConsumingTo(d.output, todo)
    }
    return true
  }

  removePropagateFrom(out) {
    out.determinedBy = null
    out.walkStrength = WEAKEST
    out.stay = true
    var unsatisfied = []
    var todo = [out]
    while (todo.count > 0) {
      var v = todo.removeAt(-1)
      for (c in v.constraints) {
        if (!c.isSatisfied) unsatisfied.add(c)
      }
      var determining = v.determinedBy
      for (next in v.constraints) {
        if (next != determining && next.isSatisfied) {
          next.recalculate()
          todo.add(next.output)
        }
      }
    }
    return unsatisfied
  }

  addConstraintsConsumingTo(v, coll) {
    var determining = v.determinedBy
    for (c in v.constraints) {
      if (c != determining && c.isSatisfied) coll.add(c)
    }
  }
}

class Tests {
  // A chain of n equality constraints: editing the first variable must
  // reach the last one.
  static chain(n) {
    ThePlanner = Planner.new()
    var prev = null
    var first = null
    var last = null
    for (i in 0..n) {
      var v = Variable.new("v%(i)", 0)
      if (prev != null) EqualityConstraint.new(prev, v, REQUIRED)
      if (i == 0) first = v
      if (i == n) last = v
      prev = v
    }
    StayConstraint.new(last, STRONG_DEFAULT)
    var edit = EditConstraint.new(first, PREFERRED)
    var plan = ThePlanner.extractPlanFromConstraints([edit])
    var total = 0
    for (i in 0...100) {
      first.value = i
      plan.execute()
      if (last.value != i) Fiber.abort("Chain test failed")
      total = total + last.value
    }
    return total
  }

  // n source/destination pairs linked by scale constraints sharing one
  // scale and one offset variable.
  static projection(n) {
    ThePlanner = Planner.new()
    var scale = Variable.new("scale", 10)
    var offset = Variable.new("offset", 1000)
    var src = null
    var dst = null
    var dests = []
    for (i in 0...n) {
      src = Variable.new("src", i)
      dst = Variable.new("dst", i)
      dests.add(dst)
      StayConstraint.new(src, NORMAL)
      ScaleConstraint.new(src, scale, offset, dst, REQUIRED)
    }
    change(src, 17)
    if (dst.value != 1170) Fiber.abort("Projection test 1 failed")
    change(dst, 1050)
    if (src.value != 5) Fiber.abort("Projection test 2 failed")
    change(scale, 5)
    for (i in 0...n - 1) {
      if (dests[i].value != i * 5 + 1000) Fiber.abort("Projection test 3 failed")
    }
    change(offset, 2000)
    var total = 0
    for (i in 0...n - 1) {
      if (dests[i].value != i * 5 + 2000) Fiber.abort("Projection test 4 failed")
      total = total + dests[i].value
    }
    return total
  }

  static change(v, newValue) {
    var edit = EditConstraint.new(v, PREFERRED)
    var plan = ThePlanner.extractPlanFromConstraints([edit])
    for (i in 0...10) {
      v.value = newValue
      plan.execute()
    }
    edit.destroyConstraint()
  }
}

var start = System.clock
var checksum = 0
for (i in 0...80) {
  checksum = checksum + Tests.chain(100)
  checksum = checksum + Tests.projection(100)
}
System.print("checksum: %(checksum)")
System.print("elapsed: %(System.clock - start)")
