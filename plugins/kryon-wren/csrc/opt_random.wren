// opt_random.wren -- The Wren half of the optional "random" module.
// The generator (WELL512a) and its seeding live in opt_random.c; the
// state is a list of 16 32-bit words plus the current index in _state.

class Random {
  construct new() {
    _state = null
    seed_(null)
  }

  construct new(seed) {
    _state = null
    if (seed is Num) {
      seed_(seed)
    } else {
      if (!(seed is Sequence)) Fiber.abort("Seed must be a number or a sequence of numbers.")
      var seeds = []
      for (element in seed) {
        if (!(element is Num)) Fiber.abort("Sequence elements must all be numbers.")
        seeds.add(element)
        if (seeds.count == 16) break
      }
      if (seeds.isEmpty) Fiber.abort("Sequence cannot be empty.")
      seed_(seeds)
    }
  }

  foreign seed_(seed)
  foreign float()

  float(end) {
    if (!(end is Num)) Fiber.abort("End must be a number.")
    return float() * end
  }

  float(start, end) {
    if (!(start is Num)) Fiber.abort("Start must be a number.")
    if (!(end is Num)) Fiber.abort("End must be a number.")
    return float() * (end - start) + start
  }

  int(end) {
    if (!(end is Num)) Fiber.abort("End must be a number.")
    return (float() * end).floor
  }

  int(start, end) {
    if (!(start is Num)) Fiber.abort("Start must be a number.")
    if (!(end is Num)) Fiber.abort("End must be a number.")
    return (float() * (end - start)).floor + start
  }

  sample(list) {
    if (!(list is List)) Fiber.abort("List must be a list.")
    if (list.isEmpty) Fiber.abort("Not enough elements to sample.")
    return list[int(list.count)]
  }

  sample(list, count) {
    if (!(list is List)) Fiber.abort("List must be a list.")
    if (!(count is Num) || !count.isInteger || count < 0) {
      Fiber.abort("Count must be a non-negative integer.")
    }
    if (count > list.count) Fiber.abort("Not enough elements to sample.")
    // A partial Fisher-Yates shuffle of a copy: the first count slots.
    var pool = list.toList
    var i = 0
    while (i < count) {
      pool.swap(i, int(i, pool.count))
      i = i + 1
    }
    var result = []
    i = 0
    while (i < count) {
      result.add(pool[i])
      i = i + 1
    }
    return result
  }

  shuffle(list) {
    if (!(list is List)) Fiber.abort("List must be a list.")
    // Fisher-Yates: every permutation equally likely.
    var i = 0
    while (i < list.count - 1) {
      list.swap(i, int(i, list.count))
      i = i + 1
    }
  }
}
