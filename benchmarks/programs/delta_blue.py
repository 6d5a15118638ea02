# DeltaBlue: an incremental one-way dataflow constraint solver.
# Constraints carry strengths; the planner keeps the strongest ones
# satisfied, and extracts a plan (an ordered list of constraints) that
# recomputes the variables after an input changes.
import time


class Strength:
    def __init__(self, value, name):
        self.value = value
        self.name = name

    def nextWeaker(self):
        return Strengths[self.value + 1]

    @staticmethod
    def stronger(a, b):
        return a.value < b.value

    @staticmethod
    def weaker(a, b):
        return a.value > b.value

    @staticmethod
    def weakest(a, b):
        return a if Strength.weaker(a, b) else b

    @staticmethod
    def strongest(a, b):
        return a if Strength.stronger(a, b) else b


REQUIRED = Strength(0, "required")
STRONG_PREFERRED = Strength(1, "strongPreferred")
PREFERRED = Strength(2, "preferred")
STRONG_DEFAULT = Strength(3, "strongDefault")
NORMAL = Strength(4, "normal")
WEAK_DEFAULT = Strength(5, "weakDefault")
WEAKEST = Strength(6, "weakest")
Strengths = [REQUIRED, STRONG_PREFERRED, PREFERRED, STRONG_DEFAULT,
             NORMAL, WEAK_DEFAULT, WEAKEST, WEAKEST]

NONE = 0
FORWARD = 1
BACKWARD = 2

ThePlanner = None


class Constraint:
    def __init__(self, strength):
        self.strength = strength

    def addConstraint(self):
        self.addToGraph()
        ThePlanner.incrementalAdd(self)

    # Picks a direction and, when possible, makes this constraint determine
    # its output. Returns the constraint it overrode, or None.
    def satisfy(self, mark):
        self.chooseMethod(mark)
        if not self.isSatisfied():
            if self.strength is REQUIRED:
                raise RuntimeError("Could not satisfy a required constraint")
            return None
        self.markInputs(mark)
        out = self.output()
        overridden = out.determinedBy
        if overridden is not None:
            overridden.markUnsatisfied()
        out.determinedBy = self
        if not ThePlanner.addPropagate(self, mark):
            raise RuntimeError("Cycle encountered")
        out.mark = mark
        return overridden

    def destroyConstraint(self):
        if self.isSatisfied():
            ThePlanner.incrementalRemove(self)
        self.removeFromGraph()

    def isInput(self):
        return False


class UnaryConstraint(Constraint):
    def __init__(self, variable, strength):
        super().__init__(strength)
        self.myOutput = variable
        self.satisfied = False
        self.addConstraint()

    def addToGraph(self):
        self.myOutput.addConstraint(self)
        self.satisfied = False

    def chooseMethod(self, mark):
        self.satisfied = self.myOutput.mark != mark and Strength.stronger(self.strength, self.myOutput.walkStrength)

    def isSatisfied(self):
        return self.satisfied

    def markInputs(self, mark):
        pass

    def output(self):
        return self.myOutput

    def recalculate(self):
        self.myOutput.walkStrength = self.strength
        self.myOutput.stay = not self.isInput()
        if self.myOutput.stay:
            self.execute()

    def markUnsatisfied(self):
        self.satisfied = False

    def inputsKnown(self, mark):
        return True

    def removeFromGraph(self):
        if self.myOutput is not None:
            self.myOutput.removeConstraint(self)
        self.satisfied = False


# Keeps a variable at its current value.
class StayConstraint(UnaryConstraint):
    def __init__(self, variable, strength):
        super().__init__(variable, strength)

    def execute(self):
        pass


# Marks a variable as changed by the user.
class EditConstraint(UnaryConstraint):
    def __init__(self, variable, strength):
        super().__init__(variable, strength)

    def isInput(self):
        return True

    def execute(self):
        pass


class BinaryConstraint(Constraint):
    def __init__(self, v1, v2, strength):
        super().__init__(strength)
        self.v1 = v1
        self.v2 = v2
        self.direction = NONE

    def chooseMethod(self, mark):
        if self.v1.mark == mark:
            if self.v2.mark != mark and Strength.stronger(self.strength, self.v2.walkStrength):
                self.direction = FORWARD
            else:
                self.direction = NONE
            return
        if self.v2.mark == mark:
            if self.v1.mark != mark and Strength.stronger(self.strength, self.v1.walkStrength):
                self.direction = BACKWARD
            else:
                self.direction = NONE
            return
        if Strength.weaker(self.v1.walkStrength, self.v2.walkStrength):
            if Strength.stronger(self.strength, self.v1.walkStrength):
                self.direction = BACKWARD
            else:
                self.direction = NONE
        else:
            if Strength.stronger(self.strength, self.v2.walkStrength):
                self.direction = FORWARD
            else:
                self.direction = BACKWARD

    def addToGraph(self):
        self.v1.addConstraint(self)
        self.v2.addConstraint(self)
        self.direction = NONE

    def isSatisfied(self):
        return self.direction != NONE

    def markInputs(self, mark):
        self.input().mark = mark

    def input(self):
        return self.v1 if self.direction == FORWARD else self.v2

    def output(self):
        return self.v2 if self.direction == FORWARD else self.v1

    def recalculate(self):
        ihn = self.input()
        out = self.output()
        out.walkStrength = Strength.weakest(self.strength, ihn.walkStrength)
        out.stay = ihn.stay
        if out.stay:
            self.execute()

    def markUnsatisfied(self):
        self.direction = NONE

    def inputsKnown(self, mark):
        i = self.input()
        return i.mark == mark or i.stay or i.determinedBy is None

    def removeFromGraph(self):
        if self.v1 is not None:
            self.v1.removeConstraint(self)
        if self.v2 is not None:
            self.v2.removeConstraint(self)
        self.direction = NONE


# dest = src * scale + offset, solvable in both directions.
class ScaleConstraint(BinaryConstraint):
    def __init__(self, src, scale, offset, dest, strength):
        super().__init__(src, dest, strength)
        self.scale = scale
        self.offset = offset
        self.addConstraint()

    def addToGraph(self):
        super().addToGraph()
        self.scale.addConstraint(self)
        self.offset.addConstraint(self)

    def removeFromGraph(self):
        super().removeFromGraph()
        if self.scale is not None:
            self.scale.removeConstraint(self)
        if self.offset is not None:
            self.offset.removeConstraint(self)

    def markInputs(self, mark):
        super().markInputs(mark)
        self.scale.mark = mark
        self.offset.mark = mark

    def execute(self):
        if self.direction == FORWARD:
            self.v2.value = self.v1.value * self.scale.value + self.offset.value
        else:
            self.v1.value = (self.v2.value - self.offset.value) / self.scale.value

    def recalculate(self):
        ihn = self.input()
        out = self.output()
        out.walkStrength = Strength.weakest(self.strength, ihn.walkStrength)
        out.stay = ihn.stay and self.scale.stay and self.offset.stay
        if out.stay:
            self.execute()


# v1 == v2.
class EqualityConstraint(BinaryConstraint):
    def __init__(self, v1, v2, strength):
        super().__init__(v1, v2, strength)
        self.addConstraint()

    def execute(self):
        self.output().value = self.input().value


class Variable:
    def __init__(self, name, value):
        self.name = name
        self.value = value
        self.constraints = []
        self.determinedBy = None
        self.mark = 0
        self.walkStrength = WEAKEST
        self.stay = True

    def addConstraint(self, c):
        self.constraints.append(c)

    def removeConstraint(self, c):
        i = 0
        while i < len(self.constraints):
            if self.constraints[i] is c:
                del self.constraints[i]
            else:
                i = i + 1
        if self.determinedBy is c:
            self.determinedBy = None


class Plan:
    def __init__(self):
        self.list = []

    def add(self, c):
        self.list.append(c)

    def execute(self):
        for c in self.list:
            c.execute()


class Planner:
    def __init__(self):
        self.currentMark = 0

    def newMark(self):
        self.currentMark = self.currentMark + 1
        return self.currentMark

    def incrementalAdd(self, c):
        mark = self.newMark()
        overridden = c.satisfy(mark)
        while overridden is not None:
            overridden = overridden.satisfy(mark)

    def incrementalRemove(self, c):
        out = c.output()
        c.markUnsatisfied()
        c.removeFromGraph()
        unsatisfied = self.removePropagateFrom(out)
        strength = REQUIRED
        while True:
            for u in unsatisfied:
                if u.strength is strength:
                    self.incrementalAdd(u)
            strength = strength.nextWeaker()
            if strength is WEAKEST:
                break

    def makePlan(self, sources):
        mark = self.newMark()
        plan = Plan()
        todo = sources
        while len(todo) > 0:
            c = todo.pop()
            if c.output().mark != mark and c.inputsKnown(mark):
                plan.add(c)
                c.output().mark = mark
                self.addConstraintsConsumingTo(c.output(), todo)
        return plan

    def extractPlanFromConstraints(self, constraints):
        sources = []
        for c in constraints:
            if c.isInput() and c.isSatisfied():
                sources.append(c)
        return self.makePlan(sources)

    def addPropagate(self, c, mark):
        todo = [c]
        while len(todo) > 0:
            d = todo.pop()
            if d.output().mark == mark:
                self.incrementalRemove(c)
                return False
            d.recalculate()
            self.addConstraintsConsumingTo(d.output(), todo)
        return True

    def removePropagateFrom(self, out):
        out.determinedBy = None
        out.walkStrength = WEAKEST
        out.stay = True
        unsatisfied = []
        todo = [out]
        while len(todo) > 0:
            v = todo.pop()
            for c in v.constraints:
                if not c.isSatisfied():
                    unsatisfied.append(c)
            determining = v.determinedBy
            for next in v.constraints:
                if next is not determining and next.isSatisfied():
                    next.recalculate()
                    todo.append(next.output())
        return unsatisfied

    def addConstraintsConsumingTo(self, v, coll):
        determining = v.determinedBy
        for c in v.constraints:
            if c is not determining and c.isSatisfied():
                coll.append(c)


class Tests:
    # A chain of n equality constraints: editing the first variable must
    # reach the last one.
    @staticmethod
    def chain(n):
        global ThePlanner
        ThePlanner = Planner()
        prev = None
        first = None
        last = None
        for i in range(0, n + 1):
            v = Variable("v%s" % i, 0)
            if prev is not None:
                EqualityConstraint(prev, v, REQUIRED)
            if i == 0:
                first = v
            if i == n:
                last = v
            prev = v
        StayConstraint(last, STRONG_DEFAULT)
        edit = EditConstraint(first, PREFERRED)
        plan = ThePlanner.extractPlanFromConstraints([edit])
        total = 0
        for i in range(0, 100):
            first.value = i
            plan.execute()
            if last.value != i:
                raise RuntimeError("Chain test failed")
            total = total + last.value
        return total

    # n source/destination pairs linked by scale constraints sharing one
    # scale and one offset variable.
    @staticmethod
    def projection(n):
        global ThePlanner
        ThePlanner = Planner()
        scale = Variable("scale", 10)
        offset = Variable("offset", 1000)
        src = None
        dst = None
        dests = []
        for i in range(0, n):
            src = Variable("src", i)
            dst = Variable("dst", i)
            dests.append(dst)
            StayConstraint(src, NORMAL)
            ScaleConstraint(src, scale, offset, dst, REQUIRED)
        Tests.change(src, 17)
        if dst.value != 1170:
            raise RuntimeError("Projection test 1 failed")
        Tests.change(dst, 1050)
        if src.value != 5:
            raise RuntimeError("Projection test 2 failed")
        Tests.change(scale, 5)
        for i in range(0, n - 1):
            if dests[i].value != i * 5 + 1000:
                raise RuntimeError("Projection test 3 failed")
        Tests.change(offset, 2000)
        total = 0
        for i in range(0, n - 1):
            if dests[i].value != i * 5 + 2000:
                raise RuntimeError("Projection test 4 failed")
            total = total + dests[i].value
        return total

    @staticmethod
    def change(v, newValue):
        edit = EditConstraint(v, PREFERRED)
        plan = ThePlanner.extractPlanFromConstraints([edit])
        for i in range(0, 10):
            v.value = newValue
            plan.execute()
        edit.destroyConstraint()


start = time.perf_counter()
checksum = 0
for i in range(0, 80):
    checksum = checksum + Tests.chain(100)
    checksum = checksum + Tests.projection(100)
print("checksum: %s" % checksum)
print("elapsed: %s" % (time.perf_counter() - start))
