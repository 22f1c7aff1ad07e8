"""Lists the collectives of each function in partitioned galaxy IR, one per line:
   FUNC fwd|bwd KIND BLOCK.LAYER [dim=D sizes=N0,N1,...]
so lit tests can check the exact sequence a mode inserts (and nothing else)."""
import re
import sys

func = None
for line in sys.stdin:
    m = re.search(r"func\.func @(\w+)", line)
    if m:
        func = m.group(1)
        continue
    m = re.search(r"galaxy\.(all_reduce|all_gather|reduce_scatter|all_to_all)\b", line)
    if not m:
        continue
    block = re.search(r'galaxy\.block = "(\w+)"', line)
    layer = re.search(r"galaxy\.layer = (-?\d+)", line)
    where = f"{block.group(1) if block else '?'}.{layer.group(1) if layer else '?'}"
    phase = "bwd" if "galaxy.backward" in line else "fwd"
    extra = ""
    dim = re.search(r"\bdim = (\d+)", line)
    sizes = re.search(r"sizes = array<i64: ([\d, ]+)>", line)
    if dim and sizes:
        extra = f" dim={dim.group(1)} sizes={sizes.group(1).replace(' ', '')}"
    print(f"{func} {phase} {m.group(1)} {where}{extra}")
