import sys,collections
samples=[];cur=None
for line in sys.stdin:
    if not line.strip():
        if cur: samples.append(cur)
        cur=None; continue
    if not line.startswith(('\t',' ')):
        if cur: samples.append(cur)
        cur=[line.split()[0]]; continue
    p=line.split(None,1)
    if len(p)>1: 
        if cur is None: cur=['?']
        cur.append(p[1].split(' (')[0].split('+0x')[0])
if cur: samples.append(cur)
N=len(samples); c=collections.Counter(); comm=collections.Counter()
for s in samples:
    comm[s[0]]+=1
    syms=s[1:]
    if 'runtime.sysmon' in syms:
        k='sysmon: '+('handoffp/startm wake' if 'runtime.handoffp' in syms or 'runtime.startm' in syms else 'usleep' if 'runtime.usleep' in syms or 'runtime.usleep.abi0' in syms else 'other')
    elif any(x in syms for x in ('runtime.exitsyscall','runtime.exitsyscall0')): k='exitsyscall (P reacquire/park)'
    elif any(x in syms for x in ('runtime.entersyscallblock','runtime.entersyscall','runtime.handoffp')): k='entersyscall/handoffp'
    elif any(x in syms for x in ('runtime.findRunnable','runtime.stopm','runtime.schedule','runtime.park_m','runtime.notesleep')): k='schedule/findRunnable/stopm (idle M sleep/wake)'
    elif any(x in syms for x in ('runtime.wakep','runtime.ready','runtime.goready','runtime.notewakeup','runtime.futexwakeup')): k='wakep/ready (waking another M)'
    else: continue
    c[k]+=1
print('samples',N,'by thread:',dict(comm.most_common(6)))
for k,n in c.most_common(): print(f"{100*n/N:6.1f}% {k}")
