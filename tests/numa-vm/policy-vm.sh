#!/bin/sh
# policy-vm.sh - runs INSIDE the NUMA VM (busybox sh), started by policy.sh:
# the cases listed in CASEFILE, one process each, with a time limit; prints
# each case's output indented and one PASS/FAIL line; exit status = number
# of failed cases.
#
#   policy-vm.sh CASEFILE
#
# CASEFILE: one case a line, "NAME FLAGS COMMAND...", FLAGS a comma list of
#   quiet   the case also fails when it writes anything on stderr
#   ref     a reference run (glibc's malloc): marked REF in the output
#   -       nothing
# COMMAND is run by sh -c (so it may use env, numactl, ;, &&).
# PER_CASE_TIMEOUT (seconds, default 60) can be set with the harness's --env.
casefile=$1
limit=${PER_CASE_TIMEOUT:-60}
up() { cut -d' ' -f1 /proc/uptime; }
d=/sys/devices/system/node
echo "policy-vm: online $(cat $d/online), possible $(cat $d/possible), has_cpu $(cat $d/has_cpu)," \
     "has_memory $(cat $d/has_memory), cpus present $(cat /sys/devices/system/cpu/present)," \
     "MemFree MiB:" "$(for m in "$d"/node[0-9]*/meminfo; do awk '/MemFree/ {printf "node%s=%d ", $2, $4/1024}' "$m"; done)"
failed=0 failed_names="" total=0
while read -r name flags cmd; do
    case $name in ''|'#'*) continue ;; esac
    total=$((total + 1))
    kind=""; case ",$flags," in *,ref,*) kind=" (REF glibc)" ;; esac
    echo "== $name$kind: $cmd"
    t0=$(up)
    timeout "$limit" sh -c "$cmd" </dev/null >/tmp/case.out 2>/tmp/case.err
    rc=$?
    dt=$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')
    sed 's/^/   /' /tmp/case.out | head -n 40
    [ -s /tmp/case.err ] && sed 's/^/   stderr: /' /tmp/case.err | head -n 20
    why=""
    if [ $rc -ne 0 ]; then
        case $rc in 143) why="timed out after ${limit}s" ;; 13[0-9]) why="killed by signal $((rc - 128))" ;; *) why="exit $rc" ;; esac
    fi
    case ",$flags," in
        *,quiet,*) [ -s /tmp/case.err ] && why="${why:+$why; }wrote on stderr" ;;
    esac
    if [ -z "$why" ]; then
        echo "PASS $name$kind (${dt}s)"
    else
        echo "FAIL $name$kind (${dt}s, $why)"
        failed=$((failed + 1)) failed_names="$failed_names $name"
    fi
done <"$casefile"
echo "policy-vm: $((total - failed)) of $total cases passed${failed_names:+; failed:$failed_names}"
exit $failed
