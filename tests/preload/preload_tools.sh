#!/usr/bin/env bash
# Test 5: standard command-line programs under LD_PRELOAD=libnumaslab.so
# give exactly the output they give without it.
#   usage: preload_tools.sh <libnumaslab.so>
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
for t in sort gzip gunzip find bash awk tar sed grep cmp md5sum seq wc; do need_cmd "$t"; done
make_scratch
S=$SCRATCH
export LC_ALL=C

# same NAME CMD...: run CMD plain and preloaded (stdout to files), both must
# succeed and print the same bytes.
same() {
    local name=$1 rc=0
    shift
    plain "$@" >"$S/$name.plain" 2>"$S/$name.plain.err" || rc=$?
    ((rc == 0)) || fail "$name without preload: $(describe_status $rc): $(head -5 "$S/$name.plain.err")"
    preloaded "$@" >"$S/$name.pre" 2>"$S/$name.pre.err" || rc=$?
    ((rc == 0)) || fail "$name under LD_PRELOAD: $(describe_status $rc): $(head -5 "$S/$name.pre.err")"
    no_reports "$S/$name.pre.err" "$name"
    if ! cmp -s "$S/$name.plain" "$S/$name.pre"; then
        show_diff "$S/$name.plain" "$S/$name.pre" "$name"
        fail "$name: output under LD_PRELOAD differs from the output without it"
    fi
    log "$name: $(wc -c <"$S/$name.pre") bytes of output identical"
}

# 1. awk generates 200k pseudo-random lines (associative arrays, sprintf)
gen='BEGIN { srand(12345); for (i = 0; i < 200000; i++) {
        k = int(rand() * 1000000); w = ""
        n = 1 + int(rand() * 30)
        for (j = 0; j < n; j++) w = w sprintf("%c", 97 + int(rand() * 26))
        seen[w]++
        printf "%s,%d,%07.3f,%s\n", w, k, rand() * 1000, (seen[w] > 1 ? "dup" : "new") } }'
same awk-gen awk "$gen"
cp "$S/awk-gen.plain" "$S/in.txt"
lines=$(wc -l <"$S/in.txt")
((lines == 200000)) || fail "generator made $lines lines, want 200000"

# 2. sort: in memory, numeric by field, unique, and an external merge sort
#    with a tiny buffer (temporary files) on 2 threads
same sort-plain sort "$S/in.txt"
same sort-numeric sort -t, -k2,2n -k1,1 "$S/in.txt"
same sort-unique sort -u -t, -k1,1 "$S/in.txt"
same sort-external sort -S 256K -T "$S" --parallel=2 -t, -k3,3r -k1,1 "$S/in.txt"
# the sorted output is a permutation of the input and is ordered
cmp -s <(sort "$S/sort-external.pre" | md5sum) <(sort "$S/in.txt" | md5sum) ||
    fail "sort under LD_PRELOAD lost or changed lines"
preloaded sort -c "$S/sort-plain.pre" || fail "sort -c: the preloaded sort's output is not sorted"

# 3. gzip | gunzip round trip, byte for byte, and the same compressed bytes
{ cat "$S/in.txt" "$S/sort-numeric.pre"; head -c 3000000 /dev/urandom; cat "$S/sort-unique.pre"; } >"$S/big.bin"
same gzip gzip -n -6 -c "$S/big.bin"
preloaded gzip -n -9 -c "$S/big.bin" | preloaded gunzip -c >"$S/big.round" ||
    fail "gzip | gunzip under LD_PRELOAD failed"
cmp "$S/big.bin" "$S/big.round" || fail "gzip | gunzip round trip under LD_PRELOAD changed the data"
log "gzip | gunzip: $(wc -c <"$S/big.bin") bytes round trip identical"

# 4. find over /usr/share: same file list and count
# (/usr/share can change under us, e.g. a concurrent apt-get install: a
# mismatch is retried, and only a persistent one fails)
for _ in 1 2 3; do
    plain find /usr/share -type f >"$S/find.plain" 2>/dev/null || true
    preloaded find /usr/share -type f >"$S/find.pre" 2>"$S/find.pre.err" ||
        fail "find under LD_PRELOAD: $(head -5 "$S/find.pre.err")"
    no_reports "$S/find.pre.err" find
    plain find /usr/share -type f >"$S/find.plain2" 2>/dev/null || true
    cmp -s "$S/find.plain" "$S/find.pre" && break
    cmp -s "$S/find.plain" "$S/find.plain2" || { log "find: /usr/share changed meanwhile, again"; continue; }
    show_diff "$S/find.plain" "$S/find.pre" "find /usr/share -type f"
    fail "find /usr/share -type f lists other files under LD_PRELOAD"
done
cmp -s "$S/find.plain" "$S/find.pre" || fail "find: /usr/share kept changing, could not compare"
n_plain=$(wc -l <"$S/find.plain")
n_pre=$(preloaded wc -l <"$S/find.pre")
[[ $n_plain == "$n_pre" ]] || fail "find /usr/share -type f | wc -l: $n_plain without preload, $n_pre with"
((n_pre > 100)) || fail "find found only $n_pre files under /usr/share"
log "find /usr/share -type f | wc -l = $n_pre with and without preload"

# 5. bash building strings, arrays and associative arrays in a loop
bash_prog='
s=""; declare -a arr; declare -A map
for ((i = 0; i < 30000; i++)); do
    s+="$i,"
    arr[i]="item-$((i * 7 % 1000))-$i"
    map["k$((i % 5000))"]+="x"
done
sum=0; for v in "${map[@]}"; do ((sum += ${#v})); done
joined=$(IFS=:; printf "%s" "${arr[*]}")
up=${s//,/;}; up=${up^^}
printf "len=%d arr=%d map=%d sum=%d joined=%d up=%d last=%s\n" \
    "${#s}" "${#arr[@]}" "${#map[@]}" "$sum" "${#joined}" "${#up}" "${arr[29999]}"
for ((i = 0; i < 300; i++)); do x=$(printf "%0${i}d" 0); echo "${#x}"; done | md5sum'
same bash bash --norc --noprofile -c "$bash_prog"
exp_len=0
for ((d = 1, lo = 0; lo < 30000; d++, lo = lo == 0 ? 10 : lo * 10)); do
    hi=$((lo == 0 ? 10 : lo * 10)); ((hi > 30000)) && hi=30000
    exp_len=$((exp_len + (hi - lo) * (d + 1)))
done
head -1 "$S/bash.pre" | grep -q "^len=$exp_len arr=30000 map=5000 sum=30000 " ||
    fail "bash string loop gave '$(head -1 "$S/bash.pre")', want len=$exp_len arr=30000 map=5000 sum=30000"

# 6. tar round trip of a directory tree; sed and grep with many regexes
mkdir -p "$S/tree"
for i in $(seq 1 300); do
    mkdir -p "$S/tree/d$((i % 17))"
    head -c $((i * 997 % 70000)) "$S/big.bin" >"$S/tree/d$((i % 17))/f$i"
done
(cd "$S" && preloaded tar cf - tree) | (mkdir -p "$S/untar" && cd "$S/untar" && preloaded tar xf -) ||
    fail "tar c | tar x under LD_PRELOAD failed"
for f in $(cd "$S/tree" && find . -type f); do
    cmp -s "$S/tree/$f" "$S/untar/tree/$f" || fail "tar round trip changed $f"
done
log "tar round trip of $(find "$S/tree" -type f | wc -l) files identical"
same sed sed -E -e 's/^([a-z]+),([0-9]+)/\2=\1/' -e 's/dup$/DUPLICATE/' -e '/^9/d' "$S/in.txt"
same grep grep -E -c -e '^[a-e]{3,}' -e ',9[0-9]{5},' -e 'q.*z.*,new$' "$S/in.txt"
log "PASS"
