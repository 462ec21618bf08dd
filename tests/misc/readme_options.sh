#!/usr/bin/env bash
# The README's option table must be exactly what `numaslab options --markdown`
# prints from the option table in the source.
set -euo pipefail
tool=$1 readme=$2
want=$("$tool" options --markdown)
have=$(sed -n '/<!-- options:begin -->/,/<!-- options:end -->/p' "$readme" | sed '1d;$d')
if [[ "$want" != "$have" ]]; then
    echo "README.md option table differs from 'numaslab options --markdown':" >&2
    diff <(echo "$have") <(echo "$want") >&2 || true
    echo "fix: regenerate the table between the options markers" >&2
    exit 1
fi
echo "README option table matches the source ($(echo "$want" | tail -n +3 | wc -l) options)"
