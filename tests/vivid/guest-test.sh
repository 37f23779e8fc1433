#!/bin/sh
# Runs inside the VM (busybox). Drives the production kernel with
# capture-v4l2 against vivid and leaves evidence in $1 for check.py:
# status snapshots (outpostctl status --json), kernel logs, dumped frames.
OUT=$1
RUN=/dev/shm/op
say() { echo "[guest $(cut -d' ' -f1 /proc/uptime)s] $*"; }

cfg() { # name device width height dump [format]
  fmt=""
  [ -n "${6:-}" ] && fmt="format = \"$6\";"
  cat > /tmp/$1.cfg <<CFG
device = { id = "vm"; };
runtime_dir = "$RUN";
module_dir = "/opt/outpost/modules";
modules = (
  { name = "capture"; plugin = "capture-v4l2";
    settings = { device = "$2"; width = $3; height = $4; fps = 25; $fmt }; },
  { name = "sink"; plugin = "test-sink";
    settings = { pattern = false; dump = "$5"; dump_frames = 40; }; }
);
CFG
}
status() { outpostctl -c /tmp/$1.cfg status --json > $OUT/$2.json 2>&1; }
sink_frames() { # frames the sink has seen: the IN column of the status table
  outpostctl -c /tmp/$1.cfg status 2>/dev/null | awk '$1 == "sink" {print $(NF - 2)}'
}
uptime_s() { cut -d. -f1 /proc/uptime; }
wait_frames() { # cfg count seconds
  end=$(($(uptime_s) + $3))
  while [ "$(uptime_s)" -lt $end ]; do
    n=$(sink_frames $1)
    [ -n "$n" ] && [ "$n" -ge "$2" ] && return 0
    usleep 200000
  done
  return 1
}
start() { outpost-kernel -c /tmp/$1.cfg 2> $OUT/kernel-$1.log & KPID=$!; }
stop() { kill -TERM $KPID; wait $KPID; echo "kernel exit $?" >> $OUT/kernel-$1.log; rm -rf $RUN; }

v4l2-ctl -d /dev/video0 --all > $OUT/v4l2-all.txt 2>&1
v4l2-ctl -d /dev/video0 --list-ctrls > $OUT/v4l2-ctrls.txt 2>&1

say "main: capture 640x480, then a damaged buffer, then a disconnect"
cfg main /dev/video0 640 480 $OUT/frames.raw YUYV
start main
wait_frames main 40 40 || say "main: fewer than 40 frames"
status main status-a
v4l2-ctl -d /dev/video0 -c inject_v4l2_buf_flag_error=1 > $OUT/inject-error.txt 2>&1
sleep 2
status main status-b
v4l2-ctl -d /dev/video0 -c disconnect=1 > $OUT/inject-disconnect.txt 2>&1
say "main: disconnected"
n=$(sink_frames main)
wait_frames main $((n + 25)) 25 || say "main: no frames after the disconnect"
status main status-c
stop main

say "size: ask for 1000x100"
cfg size /dev/video0 1000 100 /dev/null
start size
wait_frames size 5 20 || say "size: no frames"
status size status-size
stop size

say "busy: another program streams first"
v4l2-ctl -d /dev/video0 --stream-mmap --stream-count=40 > /dev/null 2>&1 & HOG=$!
usleep 500000
cfg busy /dev/video0 640 480 /dev/null
start busy
sleep 1
status busy status-busy1
wait $HOG
wait_frames busy 5 20 || say "busy: no frames after the other program left"
status busy status-busy2
stop busy

say "nodevice: /dev/video7"
cfg nodev /dev/video7 640 480 /dev/null
start nodev
sleep 2
status nodev status-nodev
stop nodev
say "done"
echo 0 > $OUT/rc
