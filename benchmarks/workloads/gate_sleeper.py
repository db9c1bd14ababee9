"""Gate test workload: sleeps 50 ms x TIME_FACTOR plus a little proportional CPU work, then
allocates about 0.5 MB x ALLOC_FACTOR under tracemalloc, and prints both figures as a
``DLDOCTOR_METRICS`` line. Sleep-dominated, so CPU load from neighbours hits both gate sides
alike.

    python gate_sleeper.py TIME_FACTOR [ALLOC_FACTOR]
"""

import json
import sys
import time
import tracemalloc

factor = float(sys.argv[1])
alloc = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
start = time.perf_counter()
time.sleep(0.05 * factor)
total = sum(i * i for i in range(int(20000 * factor)))
work_s = time.perf_counter() - start
tracemalloc.start()
blocks = [bytes(1000) for _ in range(int(500 * alloc))]
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print("DLDOCTOR_METRICS " + json.dumps({"work_s": work_s, "alloc_peak_bytes": peak}))
