#!/usr/bin/env bash
# Boots the VM built by build-vm.sh under qemu (TCG: this machine's /dev/kvm
# cannot boot a stock kernel) and unpacks the guest's results.
#   usage: run-vm.sh VM_DIR RESULTS_DIR
set -uo pipefail
VM=$1
RES=$2
rm -rf "$RES" && mkdir -p "$RES"
truncate -s 128M "$VM/out.img" # sparse: what the guest writes
timeout "${OUTPOST_VM_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
  -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$VM/vmlinuz" -initrd "$VM/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1" \
  -drive file="$VM/out.img",format=raw,if=virtio \
  -serial stdio < /dev/null | tr -d '\r' > "$RES/console.log"
rc=${PIPESTATUS[0]}
tar xf "$VM/out.img" -C "$RES" 2>/dev/null || echo "run-vm: no results on the VM's disk"
rm -f "$VM/out.img"
echo "run-vm: qemu exit $rc"
exit $rc
