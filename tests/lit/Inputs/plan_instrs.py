"""Lists the instructions of one program of a plan in galaxyc's --emit=plan-text form,
one per line: KERNEL BLOCK [fwd|bwd] [tile=BEGIN+COUNT in=I,.. out=O,..]
(`plan_instrs.py PROGRAM < plan.txt`), so lit tests can check what the lowering emits."""
import re
import sys

want = sys.argv[1]
text = sys.stdin.read()
for prog in re.split(r"\nprograms \{", text)[1:]:
    if re.search(r'^\s*name: "([\w.]+)"', prog, re.M).group(1) != want:
        continue
    for instr in re.findall(r"\n  instrs \{\n(.*?)\n  \}", prog, re.S):
        kernel = re.search(r'kernel: "(\w+)"', instr).group(1)
        block = re.search(r'block: "([\w.\-]+)"', instr)
        line = f"{kernel} {block.group(1) if block else '-'} "
        line += "bwd" if "backward: true" in instr else "fwd"
        tile = re.search(r"\n    tile \{\n(.*?)\n    \}", instr, re.S)
        if tile:
            t = tile.group(1)
            begin = re.search(r"begin: (\d+)", t)
            count = re.search(r"count: (\d+)", t).group(1)
            ins = ",".join(re.findall(r"inputs: (\d+)", t))
            outs = ",".join(re.findall(r"outputs: (\d+)", t))
            line += f" tile={begin.group(1) if begin else 0}+{count} in={ins} out={outs}"
        print(line)
