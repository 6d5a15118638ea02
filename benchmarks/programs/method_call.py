# Dynamic dispatch: a toggle and a subclass that flips every n-th call.
import time


class Toggle:
    def __init__(self, state):
        self.state = state

    def value(self):
        return self.state

    def activate(self):
        self.state = not self.state
        return self


class NthToggle(Toggle):
    def __init__(self, state, limit):
        super().__init__(state)
        self.limit = limit
        self.count = 0

    def activate(self):
        self.count = self.count + 1
        if self.count >= self.limit:
            super().activate()
            self.count = 0
        return self


start = time.perf_counter()
n = 200000
trues = 0

toggle = Toggle(True)
for i in range(0, n):
    if toggle.activate().value(): trues = trues + 1
    if toggle.activate().value(): trues = trues + 1
    if toggle.activate().value(): trues = trues + 1
    if toggle.activate().value(): trues = trues + 1
    if toggle.activate().value(): trues = trues + 1

nth = NthToggle(True, 3)
for i in range(0, n):
    if nth.activate().value(): trues = trues + 1
    if nth.activate().value(): trues = trues + 1
    if nth.activate().value(): trues = trues + 1
    if nth.activate().value(): trues = trues + 1
    if nth.activate().value(): trues = trues + 1

print("checksum: %s" % trues)
print("elapsed: %s" % (time.perf_counter() - start))
