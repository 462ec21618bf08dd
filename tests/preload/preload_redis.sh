#!/usr/bin/env bash
# Test 3: redis-server under LD_PRELOAD=libnumaslab.so: redis-benchmark, then
# 20000 binary keys (16 B..64 KiB) written with redis-cli --pipe, BGSAVE (a
# forked child), the keys read back, more data types, FLUSHALL, SHUTDOWN
# NOSAVE with a clean exit; then a second server loads the RDB and the same
# checks pass again.
#   usage: preload_redis.sh <libnumaslab.so> <redis_check.py>
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
CHECK=${2:?usage: $0 <libnumaslab.so> <redis_check.py>}
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools
need_cmd redis-benchmark redis-tools
need_cmd redis-check-rdb redis-server
PY=/usr/bin/python3
[[ -x $PY ]] || skip "$PY is not installed (apt-get install python3)"
make_scratch
NKEYS=${NS_REDIS_KEYS:-20000}
SEED=4242
SERVER_PID=
LOG=$SCRATCH/redis.log

kill_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
at_exit kill_server
fail_log() { # fail with the server's log tail
    echo "---- last lines of the redis-server log ($LOG):" >&2
    tail -40 "$LOG" >&2 || true
    fail "$@"
}

# 0. the client tools start under the preload
v=$(preloaded redis-cli --version 2>&1) || fail "redis-cli --version under LD_PRELOAD: $v"
[[ $v =~ ^redis-cli\ [0-9]+\.[0-9]+ ]] || fail "redis-cli --version printed '$v'"
log "$v (preloaded)"

# start_server: start redis-server (preloaded) on a free loopback port, wait
# for PING; retries if the port got taken meanwhile.  Loads $SCRATCH/dump.rdb
# if it exists.
start_server() {
    local rc
    for _ in 1 2 3 4 5; do
        PORT=$("$PY" "$CHECK" port)
        : >"$LOG"
        LD_PRELOAD="$NS_LIB" redis-server --port "$PORT" --bind 127.0.0.1 \
            --save '' --appendonly no --daemonize no --dir "$SCRATCH" --dbfilename dump.rdb \
            --logfile '' --protected-mode yes --databases 2 >"$LOG" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 1 300); do
            if [[ $(redis-cli -p "$PORT" ping 2>/dev/null) == PONG ]]; then break; fi
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        [[ $(redis-cli -p "$PORT" ping 2>/dev/null) == PONG ]] && break
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            fail_log "redis-server (pid $SERVER_PID) does not answer PING on port $PORT after 30 s"
        fi
        rc=0
        wait "$SERVER_PID" || rc=$?
        SERVER_PID=
        grep -qi 'address already in use' "$LOG" && continue
        fail_log "redis-server under LD_PRELOAD exited at start-up: $(describe_status $rc)"
    done
    [[ -n $SERVER_PID ]] || fail_log "could not find a free port for redis-server"
    log "redis-server pid $SERVER_PID on 127.0.0.1:$PORT"
    grep -qF "$(readlink -f "$NS_LIB")" "/proc/$SERVER_PID/maps" ||
        fail_log "libnumaslab is not mapped in the redis-server process"
}

# stop_server: SHUTDOWN NOSAVE; the server must exit 0 with a clean log.
stop_server() {
    local rc=0
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && fail_log "redis-server still running 10 s after SHUTDOWN NOSAVE"
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    ((rc == 0)) || fail_log "redis-server exited with $(describe_status $rc) after SHUTDOWN NOSAVE"
    if grep -qE 'REDIS BUG REPORT|crashed by signal|ASSERTION FAILED|Guru Meditation' "$LOG"; then
        fail_log "redis-server log reports a crash"
    fi
    grep -q 'ready to exit, bye bye' "$LOG" || fail_log "redis-server did not log a clean exit"
    no_reports "$LOG" "redis-server"
    log "redis-server exited 0 after SHUTDOWN NOSAVE"
}

# 1. start the server
start_server
log "libnumaslab is mapped in redis-server"

alive() {
    kill -0 "$SERVER_PID" 2>/dev/null || {
        rc=0; wait "$SERVER_PID" || rc=$?; SERVER_PID=
        fail_log "redis-server died $1: $(describe_status $rc)"
    }
    [[ $(redis-cli -p "$PORT" ping 2>&1) == PONG ]] || fail_log "redis-server does not answer PING $1"
}

# 2. redis-benchmark (itself preloaded too)
rc=0
preloaded redis-benchmark -p "$PORT" -q -n 100000 -c 50 -t set,get,lpush,lpop,incr -d 256 -r 10000 \
    >"$SCRATCH/bench.raw" 2>&1 || rc=$?
tr '\r' '\n' <"$SCRATCH/bench.raw" | grep -v '^ *$' >"$SCRATCH/bench.out" || true
((rc == 0)) || { tail -20 "$SCRATCH/bench.out" >&2; alive "during redis-benchmark";
                 fail "redis-benchmark: $(describe_status $rc)"; }
for t in SET GET LPUSH LPOP INCR; do
    line=$(grep -E "^$t: [0-9.]+ requests per second" "$SCRATCH/bench.out" | tail -1) ||
        { cat "$SCRATCH/bench.out" >&2; fail "redis-benchmark printed no result for $t"; }
    log "benchmark $line"
done
alive "after redis-benchmark"
n=$(redis-cli -p "$PORT" dbsize)
((n > 1000)) || fail_log "after the SET benchmark DBSIZE is $n"
[[ $(redis-cli -p "$PORT" flushall) == OK ]] || fail_log "FLUSHALL failed"

# 3. write NKEYS keys with redis-cli --pipe (preloaded as well)
rc=0
"$PY" "$CHECK" gen "$NKEYS" "$SEED" | preloaded redis-cli -p "$PORT" --pipe >"$SCRATCH/pipe.out" 2>&1 || rc=$?
cat "$SCRATCH/pipe.out"
((rc == 0)) || { alive "during redis-cli --pipe"; fail "redis-cli --pipe: $(describe_status $rc)"; }
grep -q "errors: 0, replies: $NKEYS" "$SCRATCH/pipe.out" || fail "redis-cli --pipe did not report 0 errors and $NKEYS replies"
alive "after the pipe"

# 4. BGSAVE: a fork()ed child of the preloaded server writes the RDB file
[[ $(redis-cli -p "$PORT" bgsave) == *started* ]] || fail_log "BGSAVE was not started"
for _ in $(seq 1 600); do
    redis-cli -p "$PORT" info persistence | tr -d '\r' | grep -q '^rdb_bgsave_in_progress:0' && break
    sleep 0.1
done
pers=$(redis-cli -p "$PORT" info persistence | tr -d '\r')
grep -q '^rdb_bgsave_in_progress:0' <<<"$pers" || fail_log "BGSAVE still running after 60 s"
grep -q '^rdb_last_bgsave_status:ok' <<<"$pers" || fail_log "BGSAVE failed: $(grep bgsave <<<"$pers")"
out=$(redis-check-rdb "$SCRATCH/dump.rdb" 2>&1) || fail "redis-check-rdb rejects the RDB written under the preload: $out"
grep -q 'RDB looks OK' <<<"$out" || fail "redis-check-rdb: $out"
log "BGSAVE (forked child) wrote $(wc -c <"$SCRATCH/dump.rdb") bytes; redis-check-rdb: OK"
alive "after BGSAVE"

# 5. read everything back and more (client not preloaded: the server is under test)
rc=0
"$PY" "$CHECK" verify "$PORT" "$NKEYS" "$SEED" || rc=$?
((rc == 0)) || { alive "during the checks"; fail "the data read back from redis-server is wrong (see above)"; }

# 6. INFO from a preloaded redis-cli; then a clean shutdown
info=$(preloaded redis-cli -p "$PORT" info memory) || fail "redis-cli info memory failed"
alloc=$(printf '%s\n' "$info" | tr -d '\r' | sed -n 's/^mem_allocator://p')
[[ -n $alloc ]] || fail "INFO memory has no mem_allocator line"
log "INFO memory: mem_allocator:$alloc (redis' own accounting; malloc itself is numaslab's)"
info=$(redis-cli -p "$PORT" info server | tr -d '\r')
[[ $(sed -n 's/^process_id://p' <<<"$info") == "$SERVER_PID" ]] || fail "INFO server reports another process"
stop_server

# 7. a new preloaded server loads the RDB: the same checks pass again
start_server
n=$(redis-cli -p "$PORT" dbsize)
[[ $n == "$NKEYS" ]] || fail_log "after loading the RDB DBSIZE is $n, want $NKEYS"
rc=0
"$PY" "$CHECK" verify "$PORT" "$NKEYS" "$SEED" || rc=$?
((rc == 0)) || { alive "during the checks after the reload"; fail "data loaded from the RDB is wrong (see above)"; }
stop_server
log "PASS"
