# for-in iteration over a list (and over ranges to build it).
import time

start = time.perf_counter()
list = []
for i in range(0, 1000000): list.append(i)

sum = 0
for round in range(0, 4):
    for i in list: sum = sum + i

print("checksum: %s" % sum)
print("elapsed: %s" % (time.perf_counter() - start))
