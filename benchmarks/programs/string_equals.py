# String equality: equal, unequal and equal-length strings built at run time.
import time

start = time.perf_counter()
words = []
for i in range(0, 200): words.append("word-number-" + str(i % 50) + "-suffix")

count = 0
for round in range(0, 6000):
    for a in words:
        if a == "word-number-7-suffix": count = count + 1
        if a == words[round % 199]: count = count + 1
        if a != words[round % 199 + 1]: count = count + 1
    for i in range(0, 199):
        if words[i] == words[i + 1]: count = count + 1
for round in range(0, 30000):
    for a in words:
        if a == "word-number-1-suffix": count = count + 1

print("checksum: %s" % count)
print("elapsed: %s" % (time.perf_counter() - start))
