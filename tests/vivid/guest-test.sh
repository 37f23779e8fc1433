#!/bin/sh
# Runs inside the VM (busybox). Drives the production kernel with
# capture-v4l2 against vivid, then encoder-v4l2m2m against vicodec, and leaves
# evidence in $1 for check.py: status snapshots (outpostctl status --json),
# kernel logs, dumped frames and units, vicodec's decoding of the units.
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
v4l2-ctl -d /dev/video0 --stream-mmap --stream-count=60 > /dev/null 2>&1 & HOG=$!
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
# --- encoder-v4l2m2m on vicodec's stateful encoder (codec fwht) ---------------
node() { # the /dev node of a vicodec instance by its name
  for n in /sys/class/video4linux/video*; do
    [ "$(cat $n/name)" = "$1" ] && echo /dev/${n##*/}
  done
}
enc_cfg() { # name width height units-to-dump raw-frames-to-dump [encoder settings [modules]]
  cat > /tmp/$1.cfg <<CFG
device = { id = "vm"; };
runtime_dir = "$RUN";
module_dir = "/opt/outpost/modules";
modules = (
  { name = "capture"; plugin = "capture-testsrc"; settings = { width = $2; height = $3; fps = 10; }; },
  { name = "tap"; plugin = "test-tap"; settings = { dump = "$OUT/$1-raw"; dump_frames = $5; }; },
  { name = "encoder"; plugin = "encoder-v4l2m2m";
    settings = { codec = "fwht"; fps = 10; bitrate = 100000; keyframe_interval = 1; $6 }; },
  { name = "sink"; plugin = "test-sink";
    settings = { pattern = false; dump = "$OUT/$1-units"; dump_frames = $4; }; }${7:-}
);
CFG
}
pid_of() { outpostctl -c /tmp/$1.cfg status 2>/dev/null | awk -v m=$2 '$1 == m {print $3}'; }
decode() { # units -> decoded YU12 by vicodec's stateful decoder
  v4l2-ctl -d $(node stateful-decoder) --stream-out-mmap --stream-mmap --stream-from=$OUT/$1-units \
    --stream-to=$OUT/$1-decoded.yuv > $OUT/$1-decode.txt 2>&1
  echo "decode rc=$?" >> $OUT/$1-decode.txt
}
v4l2-ctl -d $(node stateful-encoder) --all > $OUT/vicodec-enc.txt 2>&1
t0=$(cut -d' ' -f1 /proc/uptime)

say "enc: testsrc 640x480 -> encoder-v4l2m2m (found by its capabilities) -> sink"
enc_cfg enc 640 480 15 20
start enc
wait_frames enc 15 60 || say "enc: fewer than 15 units"
status enc enc-a
outpostctl -c /tmp/enc.cfg send encoder keyframe > $OUT/enc-keyframe.json 2>&1
outpostctl -c /tmp/enc.cfg send encoder bitrate '{"kbps": 20000}' > $OUT/enc-bitrate.json 2>&1
u=$(sink_frames enc)
wait_frames enc $((u + 3)) 20 || say "enc: no units after the commands"
status enc enc-b
say "enc: resize to 640x360"
outpostctl -c /tmp/enc.cfg send capture resolution '{"width": 640, "height": 360}' > /dev/null 2>&1
# status comes from each module a few times a second: wait until the encoder's shows the re-open
i=0
until outpostctl -c /tmp/enc.cfg status --json 2>/dev/null | grep -q '"new frame size"' ||
      [ $i -ge 150 ]; do usleep 200000; i=$((i + 1)); done
u=$(sink_frames enc)
wait_frames enc $((u + 3)) 40 || say "enc: no units after the resize"
status enc enc-c
say "enc: kill -9 the encoder"
kill -9 "$(pid_of enc encoder)"
u=$(sink_frames enc)
wait_frames enc $((u + 6)) 40 || say "enc: no units after the restart"
status enc enc-d
stop enc
say "enc: stopped; vicodec decodes the units"
decode enc
t1=$(cut -d' ' -f1 /proc/uptime)

# Multi-planar, as venus and bcm2835-codec are driven; and behind the sink (which
# sends nothing on), an encoder asking for H.264, which vicodec has not: no format.
say "mplane: vicodec again with multiplanar=1, NV12 input, the device named"
rmmod vicodec && insmod /kmod/vicodec.ko multiplanar=1 || say "mplane: reloading vicodec failed"
i=0
while [ -z "$(node stateful-encoder)" ] && [ $i -lt 50 ]; do usleep 100000; i=$((i + 1)); done
enc_cfg mp 640 480 8 12 "device = \"$(node stateful-encoder)\"; raw_format = \"nv12\";" ",
  { name = \"nofmt\"; plugin = \"encoder-v4l2m2m\"; restart = \"temporary\";
    settings = { codec = \"h264\"; }; }"
start mp
wait_frames mp 8 60 || say "mplane: fewer than 8 units"
status mp mp-a
stop mp
say "mplane: stopped; vicodec decodes the units"
decode mp
t2=$(cut -d' ' -f1 /proc/uptime)
echo "$t0 $t1 $t2" > $OUT/enc-times.txt
say "done"
echo 0 > $OUT/rc
