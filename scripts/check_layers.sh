#!/usr/bin/env bash
# check_layers.sh BUILD_DIR - the layer rule, checked on the built objects.
#
# Folders are layers, each using only those below it:
#   src/base (0) <- src/hugepage (1) <- src/superslab (2) <- src/numa (3)
#   <- src/tiny (4) <- src/ (5: entry points)
# For every object of the core (BUILD_DIR/CMakeFiles/numaslab_core_obj.dir)
# this lists the symbols it references (nm -u) and the folder that defines
# each; a reference to a folder above the object's own fails, and so does
# any pair of folders that reference each other.  The sources are checked
# too: a file may #include only headers of its own folder or below.
set -euo pipefail
build=${1:?usage: check_layers.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../src" && pwd)
objdir=$build/CMakeFiles/numaslab_core_obj.dir/src
[ -d "$objdir" ] || { echo "check_layers: no objects under $objdir (build first)" >&2; exit 1; }

rank() {
    case $1 in
    base) echo 0 ;; hugepage) echo 1 ;; superslab) echo 2 ;; numa) echo 3 ;; tiny) echo 4 ;; .) echo 5 ;;
    *) echo "check_layers: unknown folder src/$1" >&2; exit 1 ;;
    esac
}
folder_of() { # path relative to src -> folder name ("." for src/ itself)
    local d; d=$(dirname "$1"); echo "${d%%/*}"
}

declare -A def_folder
mapfile -t objs < <(cd "$objdir" && find . -name '*.o' | sed 's|^\./||' | sort)
[ ${#objs[@]} -gt 5 ] || { echo "check_layers: only ${#objs[@]} objects found" >&2; exit 1; }
for o in "${objs[@]}"; do
    f=$(folder_of "$o")
    while read -r sym; do def_folder[$sym]=$f; done < <(nm --defined-only -g "$objdir/$o" | awk '{print $3}')
done

fail=0
declare -A edge
for o in "${objs[@]}"; do
    f=$(folder_of "$o")
    for sym in $(nm -u "$objdir/$o" | awk '{print $2}'); do
        g=${def_folder[$sym]:-}
        [ -n "$g" ] && [ "$g" != "$f" ] || continue
        edge[$f:$g]=1
        if [ "$(rank "$g")" -gt "$(rank "$f")" ]; then
            echo "check_layers: src/${o%.o} (layer src/$f) uses $sym from src/$g, a layer above it"
            fail=1
        fi
    done
done
for e in "${!edge[@]}"; do
    f=${e%%:*} g=${e##*:}
    if [ -n "${edge[$g:$f]:-}" ] && [[ "$f" < "$g" ]]; then
        echo "check_layers: src/$f and src/$g reference each other"
        fail=1
    fi
done

# includes: a header of a folder above is a layer violation even when no
# symbol shows it (inline functions, types)
while IFS= read -r file; do
    rel=${file#"$src"/}
    f=$(folder_of "$rel")
    while IFS= read -r inc; do
        target=$(cd "$(dirname "$file")" && realpath -m "$inc")
        case $target in "$src"/*) ;; *) continue ;; esac
        g=$(folder_of "${target#"$src"/}")
        if [ "$(rank "$g")" -gt "$(rank "$f")" ]; then
            echo "check_layers: src/$rel includes ${target#"$src"/}, a layer above it"
            fail=1
        fi
    done < <(sed -n 's/^#include "\(.*\)"/\1/p' "$file")
done < <(find "$src" -name '*.[ch]')

if [ $fail = 0 ]; then
    echo "check_layers: ${#objs[@]} objects, ${#def_folder[@]} symbols: every reference points to its own layer or below"
fi
exit $fail
