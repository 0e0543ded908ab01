import sys,re
txt=open('perfclass.txt').read(); sch=open('perfsched.txt').read()
base={'perf-dev-randread-4k-qd1':55.2,'perf-uring-randread-4k-qd1':41.0,'perf-dev-fsmark-1':158,'perf-uring-fsmark-1':84}
FILE=('pread64','openat','close','name_to_handle_at','newfstatat','getxattr','fstat','unlinkat','fchown','statx','pwrite64')
for blk,sblk in zip(txt.split('=== ')[1:],sch.split('=== ')[1:]):
    name=blk.split('.perf')[0]; b=base[name]
    cat=dict((l.split('%',1)[1].strip(),float(l.split('%')[0])) for l in blk.split('-- syscalls')[0].splitlines()[2:] if '%' in l)
    sc=[(l.split('%',1)[1].strip(),float(l.split('%')[0])) for l in blk.split('-- syscalls')[1].split('-- user')[0].splitlines() if '%' in l]
    ss=dict((l.split('%',1)[1].strip(),float(l.split('%')[0])) for l in sblk.splitlines() if '%' in l)
    k=cat.get('kernel: syscalls from ringfuse code',0)
    f=sum(v for s,v in sc if any(s.endswith(x) for x in FILE))
    sysmon=sum(v for s,v in ss.items() if s.startswith('sysmon'))
    sched=cat.get('runtime: scheduler/sysmon/futex (kernel part)',0)+cat.get('runtime: scheduler/sysmon/futex',0)
    rf=cat.get('ringfuse code',0)
    misc=100-k-sched-rf
    rows=[('backing-fs syscalls',f),('transport syscalls + their switches',k-f),('Go sysmon',sysmon),('other Go scheduler',sched-sysmon),('ringfuse code',rf),('GC, other runtime, stubs',misc)]
    print(name, ' | '.join(f"{n} {v:.1f}% = {v*b/100:.1f}µs" for n,v in rows))
