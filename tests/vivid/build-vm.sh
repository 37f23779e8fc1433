#!/usr/bin/env bash
# Builds a tiny VM for the real-driver tests: Debian's own kernel (vmlinuz plus
# the media, vivid and virtio modules, in dependency order, and vicodec built
# for it by build-vicodec.sh) and a busybox initramfs holding the project's
# production binaries, their shared libraries and the guest test script.
#   usage: build-vm.sh PROD_BUILD_DIR OUT_DIR
# The kernel package is downloaded once (apt-get download, never installed)
# into $OUTPOST_VM_CACHE (default /var/tmp/outpost-vm-cache).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROD=$(cd "$1" && pwd)
OUT=$2
CACHE=${OUTPOST_VM_CACHE:-/var/tmp/outpost-vm-cache}
mkdir -p "$CACHE" "$OUT"

# 1. Debian's kernel: the metapackage names the concrete image package. A
# cached one that Debian has since replaced is dropped: vicodec is built
# against the headers of the same version, and only the current ones can be had.
real() { apt-cache depends linux-image-amd64 2>/dev/null |
         sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1; }
cur=$(real)
if [ -n "$cur" ] && ls "$CACHE"/linux-image-*.deb >/dev/null 2>&1 &&
   ! ls "$CACHE/${cur}"_*.deb >/dev/null 2>&1; then
  rm -f "$CACHE"/linux-image-*.deb
fi
if ! ls "$CACHE"/linux-image-*.deb >/dev/null 2>&1; then
  pkg=$cur
  if [ -z "$pkg" ] || ! (cd "$CACHE" && apt-get download "$pkg" >/dev/null 2>&1); then
    apt-get update -qq
    pkg=$(real)
    (cd "$CACHE" && apt-get download "$pkg" >/dev/null)
  fi
fi
deb=$(ls "$CACHE"/linux-image-*.deb | head -1)
K=$CACHE/kpkg
if [ ! -d "$K/boot" ] || [ "$deb" -nt "$K/boot" ]; then
  rm -rf "$K" && mkdir -p "$K"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$K" --wildcards './boot/vmlinuz-*' \
    './lib/modules/*/kernel/drivers/media/*' './lib/modules/*/kernel/drivers/virtio/*' \
    './lib/modules/*/kernel/drivers/block/virtio_blk.ko'
fi
KVER=$(ls "$K/lib/modules")
cp "$K/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
VICODEC=$CACHE/vicodec-$KVER.ko
"$HERE/build-vicodec.sh" "$KVER" "$VICODEC"

# 2. Root filesystem.
R=$OUT/rootfs
rm -rf "$R" && mkdir -p "$R"/{bin,usr/bin,proc,sys,dev,tmp,out,kmod,opt/outpost/bin,opt/outpost/modules}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
install -m755 "$HERE/guest-init.sh" "$R/init"
install -m755 "$HERE/guest-test.sh" "$R/test.sh"
: > "$R/kmod/order"
# vicodec last (after vivid, which stays /dev/video0), its dependencies before it
VDEPS=$(objcopy -O binary -j .modinfo "$VICODEC" /dev/stdout | tr '\0' '\n' | sed -n 's/^depends=//p' |
        tr ',' ' ')
for f in $("$HERE/kmod-order.sh" "$K/lib/modules/$KVER/kernel/drivers" vivid virtio_pci virtio_blk \
           $VDEPS); do
  cp "$f" "$R/kmod/" && basename "$f" >> "$R/kmod/order"
done
cp "$VICODEC" "$R/kmod/vicodec.ko" && echo vicodec.ko >> "$R/kmod/order"
BINS="$PROD/bin/outpost-kernel $PROD/bin/outpost-host $PROD/bin/outpostctl /usr/bin/v4l2-ctl"
SOS="$PROD/modules/capture-v4l2.so $PROD/modules/capture-testsrc.so $PROD/modules/encoder-v4l2m2m.so
     $PROD/tests/modules/test-sink.so $PROD/tests/modules/test-tap.so"
cp $PROD/bin/outpost-kernel $PROD/bin/outpost-host $PROD/bin/outpostctl "$R/opt/outpost/bin/"
cp $SOS "$R/opt/outpost/modules/"
cp /usr/bin/v4l2-ctl "$R/usr/bin/"
# ldd: "name => /path (addr)" for libraries, "/path (addr)" for the loader
for lib in $(ldd $BINS $SOS | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' |
             sort -u); do
  mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib"
done
P=/usr/lib/x86_64-linux-gnu/libv4l # libv4l2's format plugins, as on a device
[ -d $P ] && mkdir -p "$R$P" && cp -a $P/. "$R$P/"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$OUT/initramfs.cpio.gz"
echo "vm: kernel $KVER, initramfs $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
