#!/bin/sh
# PID 1 of the test VM: mounts, loads vivid and vicodec, runs /test.sh /out,
# writes /out as a tar onto the raw virtio disk, powers off.
export PATH=/bin:/usr/bin:/opt/outpost/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /tmp /out
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
for m in $(cat /kmod/order); do
  case $m in
    vivid.ko) insmod /kmod/$m n_devs=1 node_types=0x1 ;;
    *) insmod /kmod/$m ;;
  esac || echo "[guest] insmod $m failed"
done
i=0
# /dev/video0: vivid; 1-3: vicodec (encoder, decoder, stateless decoder)
while [ ! -e /dev/video3 ] && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
echo "[guest] $(cut -d' ' -f1 /proc/uptime)s: $(ls /dev/video* 2>/dev/null | tr '\n' ' ')"
sh /test.sh /out 2>&1 | tee /out/test.log
dmesg > /out/dmesg.txt
tar cf /dev/vda -C /out . && sync
echo "[guest] done"
poweroff -f
