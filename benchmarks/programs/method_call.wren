// Dynamic dispatch: a toggle and a subclass that flips every n-th call.
class Toggle {
  construct new(state) {
    _state = state
  }

  value { _state }

  activate {
    _state = !_state
    return this
  }
}

class NthToggle is Toggle {
  construct new(state, limit) {
    super(state)
    _limit = limit
    _count = 0
  }

  activate {
    _count = _count + 1
    if (_count >= _limit) {
      super.activate
      _count = 0
    }
    return this
  }
}

var start = System.clock
var n = 200000
var trues = 0

var toggle = Toggle.new(true)
for (i in 0...n) {
  if (toggle.activate.value) trues = trues + 1
  if (toggle.activate.value) trues = trues + 1
  if (toggle.activate.value) trues = trues + 1
  if (toggle.activate.value) trues = trues + 1
  if (toggle.activate.value) trues = trues + 1
}

var nth = NthToggle.new(true, 3)
for (i in 0...n) {
  if (nth.activate.value) trues = trues + 1
  if (nth.activate.value) trues = trues + 1
  if (nth.activate.value) trues = trues + 1
  if (nth.activate.value) trues = trues + 1
  if (nth.activate.value) trues = trues + 1
}

System.print("checksum: %(trues)")
System.print("elapsed: %(System.clock - start)")
