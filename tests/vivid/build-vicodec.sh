#!/usr/bin/env bash
# Builds vicodec.ko, the kernel's virtual stateful codec (FWHT), for the VM's
# kernel. Debian's 6.1 kernels build neither vicodec nor v4l2-mem2mem, so it is
# built out of tree from Debian's linux-source-6.1 against the VM kernel's own
# linux-headers (the same gcc-12 that built the kernel), with v4l2-mem2mem.c
# compiled into the same module. Cached per kernel version: only the first run
# pays for unpacking the source (~15 s) and the build (~10 s).
#   usage: build-vicodec.sh KVER OUT.ko
set -euo pipefail
KVER=$1
OUT=$2
[ -s "$OUT" ] && exit 0
HDR=/usr/src/linux-headers-$KVER
SRC=/usr/src/linux-source-6.1.tar.xz
if [ ! -d "$HDR" ] || [ ! -f "$SRC" ]; then
  # tools/install-deps installs both for the current kernel; the VM's kernel
  # may be an older one from the cache, whose headers are fetched here.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    linux-source-6.1 "linux-headers-$KVER" >/dev/null
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
tar -xJf "$SRC" -C "$W" linux-source-6.1/drivers/media/test-drivers/vicodec \
  linux-source-6.1/drivers/media/v4l2-core/v4l2-mem2mem.c
S=$W/linux-source-6.1/drivers/media
M=$W/mod
mkdir -p "$M"
cp "$S"/test-drivers/vicodec/*.[ch] "$S"/v4l2-core/v4l2-mem2mem.c "$M"/
# Both files declare a `debug` module parameter, and one module may have only
# one (insmod: "cannot create duplicate filename .../parameters/debug").
sed -i 's/^module_param(debug, bool, 0644);//' "$M"/v4l2-mem2mem.c
printf 'obj-m := vicodec.o\nvicodec-objs := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o v4l2-mem2mem.o\n' \
  >"$M"/Makefile
make -s -C "$HDR" M="$M" CC=gcc-12 modules >"$W/make.log" 2>&1 || { cat "$W/make.log"; exit 1; }
mkdir -p "$(dirname "$OUT")"
# without its debug sections: 1.3 MB -> ~0.2 MB in the initramfs
strip --strip-debug -o "$OUT.tmp" "$M"/vicodec.ko && mv "$OUT.tmp" "$OUT"
