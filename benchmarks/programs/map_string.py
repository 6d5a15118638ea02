# Map with string keys: build keys, insert, look up, remove.
import time

start = time.perf_counter()
n = 200000
keys = []
for i in range(0, n): keys.append("key" + str(i))

map = {}
for i in range(0, n): map[keys[i]] = i

sum = 0
for round in range(0, 3):
    for key in keys: sum = sum + map[key]
for i in range(0, n):
    if ("key" + str(i * 7)) in map: sum = sum + 1

for key in keys: map.pop(key)

print("checksum: %s %s" % (sum, len(map)))
print("elapsed: %s" % (time.perf_counter() - start))
