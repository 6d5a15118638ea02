# Recursive Fibonacci: static method calls and number arithmetic.
import time


class Fib:
    @staticmethod
    def get(n):
        if n < 2:
            return n
        return Fib.get(n - 1) + Fib.get(n - 2)


start = time.perf_counter()
total = 0
for i in range(0, 4):
    total = total + Fib.get(28)
print("checksum: %s" % total)
print("elapsed: %s" % (time.perf_counter() - start))
