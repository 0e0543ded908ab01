#!/bin/bash
cd /tmp/cpu16
O=entry_timeout=1,attr_timeout=1
RF=/tmp/cpu16/ringfuse
for mode in perf strace; do
 for t in dev uring; do
  [ $t = uring ] && extra=",io_uring,io_uring_q_depth=1" || extra=""
  for w in randread-4k-qd1 fsmark-1; do
   b=/tmp/cpu16/prof/$mode-$t-$w
   prof=""
   [ $mode = perf ] && prof="--cpuprofile $b.pprof"
   ./ringbench -ringfuse $RF -config "x=cpu16-wrap.sh $mode $b $RF mount --stats $prof -o $O$extra {src} {mnt}" -configs x -workloads $w -runs 1 -out $b.md > $b.log 2>&1
   echo "$b rc=$?"; tail -1 $b.log
  done
 done
done
echo ALLDONE
