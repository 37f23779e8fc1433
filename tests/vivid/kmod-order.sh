#!/usr/bin/env bash
# Prints the .ko files needed for the named kernel modules, dependencies
# first, from the "depends=" field of each module's .modinfo section.
#   usage: kmod-order.sh MODULE_TREE name...
set -euo pipefail
TREE=$1
shift
declare -A PATHOF SEEN
while IFS= read -r f; do
  n=$(basename "$f" .ko)
  PATHOF[$n]=$f
  PATHOF[${n//-/_}]=$f
done < <(find "$TREE" -name '*.ko')
visit() {
  [[ -n ${SEEN[$1]:-} ]] && return 0
  SEEN[$1]=1
  [[ -n ${PATHOF[$1]:-} ]] || { echo "kmod-order: no module $1" >&2; exit 1; }
  local d
  for d in $(objcopy -O binary -j .modinfo "${PATHOF[$1]}" /dev/stdout | tr '\0' '\n' |
             sed -n 's/^depends=//p' | tr ',' ' '); do
    visit "$d"
  done
  echo "${PATHOF[$1]}"
}
for m in "$@"; do visit "$m"; done
