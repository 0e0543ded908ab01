import sys, re, collections
# parse perf script output (default format with callchain)
samples=[]; cur=None
for line in sys.stdin:
    if not line.strip():
        if cur: samples.append(cur); cur=None
        continue
    if not line.startswith((' ','\t')):
        if cur: samples.append(cur)
        cur=[]; continue
    parts=line.split(None,1)
    if len(parts)<2: continue
    rest=parts[1].strip()
    m=re.match(r'(.*) \((.*)\)$',rest)
    sym,dso=(m.group(1),m.group(2)) if m else (rest,'?')
    sym=re.sub(r'\+0x[0-9a-f]+$','',sym)
    if cur is None: cur=[]
    cur.append((sym,dso))
if cur: samples.append(cur)
N=len(samples)
cat=collections.Counter(); sysc=collections.Counter(); user=collections.Counter()
SCHED=('runtime.sysmon','runtime.schedule','runtime.findRunnable','runtime.stopm','runtime.startm','runtime.handoffp','runtime.notewakeup','runtime.notesleep','runtime.futex','runtime.park_m','runtime.entersyscall','runtime.exitsyscall','runtime.entersyscallblock','runtime.wakep','runtime.usleep','runtime.osyield','runtime.mcall','runtime.goready','runtime.ready','runtime.exitsyscallfast','runtime.entersyscall_sysmon','runtime.retake','runtime.runqgrab','runtime.lock2','runtime.unlock2','runtime.mPark','runtime.gopark','runtime.goexit0','runtime.gosched_m')
GC=('runtime.gcBgMarkWorker','runtime.gcDrain','runtime.mallocgc','runtime.scanobject','runtime.bgsweep','runtime.bgscavenge','runtime.gcStart','runtime.newobject','runtime.makeslice','runtime.growslice')
for s in samples:
    if not s: continue
    leafk = 'kernel' in s[0][1]
    ufr=[f for f in s if 'kernel' not in f[1]]
    syms=[f[0] for f in s]
    scall=next((x for x in syms if x.startswith('__x64_sys_') or x.startswith('__do_sys_')),None)
    if any(x in SCHED for x in syms):
        # the innermost scheduler function decides
        c='runtime: scheduler/sysmon/futex'
        if leafk: c+=' (kernel part)'
    elif any(x in GC for x in syms):
        c='runtime: GC + allocation'
    elif leafk:
        c='kernel: syscalls from ringfuse code'
        sysc[scall or ('irq/other:'+s[0][0])]+=1
    else:
        leaf=s[0][0]
        if 'ringfuse' in leaf: c='ringfuse code'; user[leaf]+=1
        elif leaf.startswith('runtime.') : c='runtime: other (memmove, maps, etc)'; user[leaf]+=1
        elif leaf.startswith('syscall.') or leaf.startswith('internal/runtime/syscall') or leaf.startswith('golang.org/x/sys'): c='syscall stubs (user side)'
        else: c='other user'; user[leaf]+=1
    cat[c]+=1
print("samples",N)
for c,n in cat.most_common(): print(f"{100*n/N:6.1f}%  {c}")
print("-- syscalls (kernel time outside scheduler)")
for c,n in sysc.most_common(12): print(f"{100*n/N:6.1f}%  {c}")
print("-- user leaves")
for c,n in user.most_common(10): print(f"{100*n/N:6.1f}%  {c}")
