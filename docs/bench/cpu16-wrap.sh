#!/bin/bash
# wrap.sh MODE OUTBASE ringfuse-argv...   MODE = perf | strace
mode=$1; out=$2; shift 2
"$@" 2>"$out.daemon.log" & pid=$!
trap 'kill -TERM $pid' TERM INT
( sleep 1.5
  if [ "$mode" = perf ]; then exec perf record -q -g -F 999 -p $pid -o "$out.perf.data" >/dev/null 2>&1
  else exec strace -c -f -p $pid -o "$out.strace.txt" 2>/dev/null; fi ) &
spid=$!
wait $pid; wait $pid; rc=$?
wait $spid
exit $rc
