# Map with integer keys: insert, look up, remove.
import time

start = time.perf_counter()
map = {}
n = 400000

for i in range(1, n + 1): map[i] = i

sum = 0
for i in range(1, n + 1): sum = sum + map[i]
for i in range(1, n + 1): sum = sum + map[i * 2 % n + 1]

for i in range(1, n + 1): map.pop(i)

print("checksum: %s %s" % (sum, len(map)))
print("elapsed: %s" % (time.perf_counter() - start))
