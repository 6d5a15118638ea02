// opt_random.wren -- The Wren side of the optional "random" module.
//
// The generator and every method are primitives (opt_random.c) working
// on the state list kept in _state. Wren only reads a seed that is given
// as a sequence, since that may need the sequence's own iterate.
class Random {
  construct new() {
    _state = Random.stateFromClock_()
  }

  construct new(seed) {
    if (seed is Sequence) seed = seed.take(16).toList
    _state = Random.stateFromSeed_(seed)
  }

  foreign static stateFromClock_()
  foreign static stateFromSeed_(seed)

  foreign float()
  foreign float(end)
  foreign float(start, end)
  foreign int(end)
  foreign int(start, end)
  foreign sample(list)
  foreign sample(list, count)
  foreign shuffle(list)
}
