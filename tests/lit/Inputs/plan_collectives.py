"""Lists the collectives of one program of a plan in galaxyc's --emit=plan-text
form, one per line: KERNEL BLOCK [fwd|bwd] ELEMENTS [coalesce=N], where ELEMENTS
is the all_reduce's (the same on every rank) or the gathered / scattered full
tensor's element count (`plan_collectives.py PROGRAM < plan.txt`), so lit tests
can check that every rank issues the same collectives in the same order."""
import math
import re
import sys

want = sys.argv[1]
text = sys.stdin.read()
numel = {}
for buf in re.findall(r"\nbuffers \{\n(.*?)\n\}", text, re.S):
    bid = re.search(r"^\s*id: (\d+)", buf, re.M)
    shape = [int(s) for s in re.findall(r"^\s*shape: (\d+)", buf, re.M)]
    numel[int(bid.group(1)) if bid else 0] = math.prod(shape)
for prog in re.split(r"\nprograms \{", text)[1:]:
    if re.search(r'^\s*name: "([\w.]+)"', prog, re.M).group(1) != want:
        continue
    for instr in re.findall(r"\n  instrs \{\n(.*?)\n  \}", prog, re.S):
        kernel = re.search(r'kernel: "(\w+)"', instr).group(1)
        if kernel not in ("all_reduce", "all_gather", "reduce_scatter"):
            continue
        block = re.search(r'block: "([\w.\-]+)"', instr)
        ins = int(re.search(r"inputs: (\d+)", instr).group(1))
        outs = int(re.search(r"outputs: (\d+)", instr).group(1))
        full = numel[ins if kernel == "reduce_scatter" else outs]
        line = f"{kernel} {block.group(1) if block else '-'} "
        line += "bwd" if "backward: true" in instr else "fwd"
        line += f" {full}"
        coalesce = re.search(r"coalesce: (\d+)", instr)
        if coalesce:
            line += f" coalesce={coalesce.group(1)}"
        print(line)
