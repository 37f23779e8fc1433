/* encoder-v4l2m2m's backend: a V4L2 memory-to-memory STATEFUL encoder
 * (Documentation/userspace-api/media/v4l/dev-encoder.rst), as Qualcomm's
 * venus, Raspberry Pi's bcm2835-codec, and other SoC encoders are driven on
 * mainline kernels, and vicodec (the kernel's virtual FWHT codec) in the VM test.
 *
 *   device.c    finds the device by capabilities, negotiates formats, frame
 *               rate and controls, allocates and maps the buffers;
 *   stream.c    one frame in (a copy into an MMAP OUTPUT buffer), coded
 *               units out, the drain (V4L2_ENC_CMD_STOP -> LAST), close;
 *   bitstream.c keyframe and header-only units for drivers that do not flag them;
 *   module.c    its own settings, the coded format, status, notes on commands:
 *               the shared core's hooks (../encoder-common/encoder.h).
 *
 * The host runs one module per process, so what status shows of the device
 * is one process-wide record (m2m_report_t), whatever instance is open. */
#ifndef OUTPOST_M2M_H
#define OUTPOST_M2M_H

#include "encoder.h"

#include <jansson.h>
#include <linux/videodev2.h>
#include <stddef.h>
#include <stdint.h>

#define M2M_MAX_BUFS 8    /* buffers used per queue; a driver's extra ones stay unqueued */
#define M2M_MAX_PLANES 3  /* Y, U, V: what the raw formats taken here need */
#define M2M_MAX_NODES 64  /* /dev/video0..63 looked at when no device is set */
#define M2M_MAX_FMTS 64   /* VIDIOC_ENUM_FMT indices tried per queue */
#define M2M_HDR_MAX 65536 /* a header-only unit held for the next one (SPS/PPS: ~100 B) */

enum { M2M_CODEC_AUTO = 0, M2M_CODEC_H265, M2M_CODEC_H264, M2M_CODEC_FWHT };

/* Controls the module wants; a bit set in m2m_report_t.unsupported when the
 * driver has no such control for the chosen codec (or no way to do it). */
enum {
  M2M_CTL_BITRATE = 1u << 0,
  M2M_CTL_FORCE_KEY = 1u << 1,
  M2M_CTL_GOP = 1u << 2,
  M2M_CTL_FPS = 1u << 3, /* VIDIOC_S_PARM on OUTPUT */
  M2M_CTL_PROFILE = 1u << 4,
  M2M_CTL_LEVEL = 1u << 5,
  M2M_CTL_BFRAMES = 1u << 6,
  M2M_CTL_HEADERS = 1u << 7, /* parameter sets repeated on keyframes */
  M2M_CTL_RC_MODE = 1u << 8,
  M2M_CTL_COUNT = 9,
};

/* What settings say (module.c reads them from the core's copy at each open). */
typedef struct m2m_settings {
  char device[64]; /* "": found by capabilities */
  int codec;       /* M2M_CODEC_*: "auto" is H.265, then H.264 (FWHT only when asked) */
  uint32_t raw;    /* 0: YU12, then NV12; or the one asked for */
} m2m_settings_t;

/* The device and what happened on it, process-wide (see the header). */
typedef struct m2m_report {
  char path[64], driver[32], card[32];
  int mplane;
  uint32_t coded, raw;           /* fourcc */
  int width, height;             /* the frames' */
  int buf_width, buf_height;     /* the driver's OUTPUT buffers' (aligned) */
  int fps_num, fps_den;          /* timeperframe the driver took, 0/0: none */
  int gop;                       /* the GOP the driver took, 0: its own */
  int bitrate_kbps;              /* as the driver took it, 0: none */
  char profile[64];              /* "constrained baseline, level 3.1"; "": none set */
  unsigned n_out, n_cap;         /* buffers used */
  uint32_t cap_size;             /* bytes of a CAPTURE buffer */
  unsigned unsupported, refused; /* M2M_CTL_* bits */
  uint64_t opens, units, late, error_bufs, ts_guessed, dropped_busy, keys_forced;
  uint64_t keys_unforced; /* asked for, and the driver has no way */
  uint64_t drains, drain_timeouts, eos_events, busy;
  double last_drain_ms;
  char last_drain[96];
} m2m_report_t;

extern m2m_report_t m2m_report;
extern m2m_settings_t m2m_settings;

/* One open encoder instance (the backend's self). */
typedef struct m2m_buf {
  void *mem[M2M_MAX_PLANES];
  uint32_t len[M2M_MAX_PLANES];
  int queued;
} m2m_buf_t;

typedef struct m2m_plane {
  int mem;        /* memory plane */
  uint32_t off;   /* offset in it */
  uint32_t pitch; /* bytes per line */
} m2m_plane_t;

typedef struct m2m {
  int fd;
  uint32_t out_type, cap_type;
  int mplane, planes; /* memory planes of the raw format */
  uint32_t coded, raw;
  int width, height, fps, bitrate_kbps, keyint; /* as set on the driver */
  int level;                                    /* the level menu index set, -1 none */
  m2m_plane_t layout[3];                        /* Y, U, V (for NV12, [1] is UV and [2] unused) */
  uint32_t used[M2M_MAX_PLANES];                /* bytesused per memory plane */
  m2m_buf_t out[M2M_MAX_BUFS], cap[M2M_MAX_BUFS];
  unsigned n_out, n_cap;
  int force_id; /* V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 0 without */
  int streaming, draining, drained, no_drain_cmd;
  int lent;            /* CAPTURE buffer handed out by the last receive, -1 none */
  int key_next;        /* a CAPTURE error: force a keyframe on the next frame */
  int64_t drain_until; /* ... and up to here for the LAST buffer of a drain */
  int64_t drain_start;
  uintptr_t pending[2 * M2M_MAX_BUFS]; /* tags queued, oldest first */
  unsigned n_pending;
  uintptr_t last_tag; /* of the frame queued last */
  uint8_t *hdr;       /* owned: a header-only unit held for the next one */
  size_t hdr_len;
  uint8_t *join; /* owned: header + unit handed out */
  size_t join_cap;
  uint64_t drain_units, drain_eos; /* units in this drain; EOS events before it */
} m2m_t;

/* device.c */
int m2m_xioctl(int fd, unsigned long req, void *arg);
/* Opens, negotiates and maps; the queues are streaming on success. 0, or -1
 * with why in err (no device / no format / what failed, naming the device). */
int m2m_dev_open(const enc_config_t *cfg, m2m_t *m, char *err, size_t errlen);
/* controls.c: frame rate and controls on a negotiated, not yet streaming
 * instance. Never fatal: what the driver lacks or refuses goes into the report. */
void m2m_ctl_open(m2m_t *m, const enc_config_t *cfg);
/* New bitrate / GOP / frame rate on a streaming instance: 0 in place, 1 when
 * it needs a re-open (the driver says EBUSY while streaming, as the spec
 * allows, or the level set no longer allows the rate). */
int m2m_ctl_reconfigure(m2m_t *m, const enc_config_t *cfg);
/* Unmaps, frees the buffers, closes. */
void m2m_dev_close(m2m_t *m);
/* stream.c: CAPTURE buffer i back to the driver; 0 or -1 (errno). */
int m2m_queue_cap(m2m_t *m, unsigned i);
const char *m2m_fourcc(uint32_t fourcc, char out[8]);
/* Names of the M2M_CTL_* bits set, comma-separated, into out. */
void m2m_ctl_names(unsigned bits, char *out, size_t len);
/* module.c: the settings into m2m_settings (0, or -1 with why in err); the
 * backend's hooks (encoder.h): the coded format of an open instance, its part
 * of status, a note on a command it cannot carry out. */
int m2m_settings_read(const json_t *st, char *err, size_t errlen);
uint32_t m2m_format_of(void *self);
void m2m_status(void *self, json_t *st);
const char *m2m_note(void *self, const char *command);

/* bitstream.c: 1 when the unit starts a coded video sequence anew (IDR/IRAP,
 * FWHT I-frame); *vcl set to 0 for a unit of parameter sets only. */
int m2m_is_key(uint32_t coded, const uint8_t *p, size_t n, int *vcl);

#endif
