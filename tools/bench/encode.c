/* An encoder module's own speed, outside the kernel: a minimal fake host
 * dlopen()s the module and feeds it every frame of a y4m clip as fast as it
 * takes them (unpaced), with the live settings (keyframe_interval 300 s).
 * Prints one line for tools/bench/encoders.sh and encoder_table.sh:
 *   MODULE frames=N units=N fps=F cpu_ms_per_frame=C kbps=K delay=D peak_kbps=P
 * (fps, CPU and kbps per coded unit out, i.e. per frame the module delivered;
 * delay: the most frames fed after a frame before its unit came out, i.e. the
 * encoder's frames in flight; peak_kbps: the most bytes in any window of one
 * second of frames, by frame number.) With OUT, the units are also written
 * there for a decoder: IVF with the temporal delimiters put back (AV1), or
 * Annex B as it is (H.265, H.264), and OUT.skipped lists the frames without
 * a unit (0-based indices: frames the core's rate guard did not encode).
 *   bench_encode MODULE.so CLIP.y4m [bitrate_kbps=500 [OUT]] */
#include "../../modules/capture-y4m/y4m.h"

#include <dlfcn.h>
#include <jansson.h>
#include <outpost/module.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct outpost_host {
  uint8_t *pending; /* owned; the buffer from frame_begin, freed at commit */
  uint64_t units, bytes, keys, refused;
  json_t *status;   /* owned; the last set_status */
  uint64_t feeding; /* the number of the frame inside on_frame */
  uint64_t delay;   /* the most frames in flight seen at a unit's commit */
  size_t *sizes;    /* owned; bytes per frame number - 1 (0: no unit for that frame) */
  uint64_t last;    /* the highest frame number a unit came for */
  size_t frames;
  FILE *out; /* owned; NULL: units are not written */
};

static uint8_t *s_frame_begin(outpost_host_t *h, uint32_t format, size_t size) {
  (void)format;
  free(h->pending); /* a begin without a commit (the module dropped the unit) */
  /* A fresh buffer per unit, as a host would hand out a new slot or message. */
  h->pending = malloc(size ? size : 1);
  return h->pending;
}

/* IVF (32-byte file header, 12 bytes a frame) for AV1: what ffmpeg's ivf demuxer and
 * libdav1d read; the temporal delimiter the module stripped goes back in front. */
static void s_write_unit(outpost_host_t *h, const outpost_frame_t *meta) {
  static const uint8_t td[2] = {0x12, 0x00};
  if (meta->format == OUTPOST_FMT_AV1) {
    uint8_t fh[12];
    uint32_t len = (uint32_t)meta->size + 2;
    uint64_t pts = h->units - 1;
    for (int i = 0; i < 4; i++)
      fh[i] = (uint8_t)(len >> (8 * i));
    for (int i = 0; i < 8; i++)
      fh[4 + i] = (uint8_t)(pts >> (8 * i));
    fwrite(fh, 1, sizeof fh, h->out);
    fwrite(td, 1, sizeof td, h->out);
  }
  fwrite(h->pending, 1, meta->size, h->out);
}

static void s_write_ivf_header(FILE *f, int width, int height, int fps) {
  uint8_t hd[32] = {'D', 'K', 'I', 'F', 0, 0, 32, 0, 'A', 'V', '0', '1'};
  hd[12] = (uint8_t)width, hd[13] = (uint8_t)(width >> 8);
  hd[14] = (uint8_t)height, hd[15] = (uint8_t)(height >> 8);
  hd[16] = (uint8_t)fps, hd[17] = (uint8_t)(fps >> 8); /* timebase 1/fps */
  hd[20] = 1;
  fwrite(hd, 1, sizeof hd, f);
}

/* The largest number of kbit in any run of `fps` consecutive frame numbers. */
static double s_peak_kbps(const size_t *sizes, size_t n, int fps) {
  size_t win = 0, peak = 0;
  for (size_t i = 0; i < n; i++) {
    win += sizes[i];
    if (i >= (size_t)fps)
      win -= sizes[i - (size_t)fps];
    if (win > peak)
      peak = win;
  }
  return (double)peak * 8 / 1000.0;
}

static int s_frame_commit(outpost_host_t *h, const outpost_frame_t *meta) {
  if (!h->pending) {
    h->refused++;
    return -1;
  }
  h->units++;
  h->bytes += meta->size;
  if (h->feeding > meta->number && h->feeding - meta->number > h->delay)
    h->delay = h->feeding - meta->number;
  if (meta->number >= 1 && meta->number <= h->frames)
    h->sizes[meta->number - 1] = meta->size;
  if (meta->number > h->last)
    h->last = meta->number;
  if (h->out)
    s_write_unit(h, meta);
  if (meta->flags & OUTPOST_FRAME_KEY)
    h->keys++;
  free(h->pending);
  h->pending = NULL;
  return 0;
}

static void s_wake_at(outpost_host_t *h, int64_t monotonic_us) {
  (void)h, (void)monotonic_us;
}

static void s_watch_fd(outpost_host_t *h, int fd) {
  (void)h, (void)fd;
}

static void s_set_status(outpost_host_t *h, json_t *status) {
  json_decref(h->status);
  h->status = status;
}

static void s_vprint(const char *what, const char *fmt, va_list ap) {
  fprintf(stderr, "bench_encode: %s", what);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

__attribute__((format(printf, 2, 3))) static void s_error(outpost_host_t *h, const char *fmt, ...) {
  (void)h;
  va_list ap;
  va_start(ap, fmt);
  s_vprint("error: ", fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void s_log(outpost_host_t *h, const char *fmt, ...) {
  (void)h;
  va_list ap;
  va_start(ap, fmt);
  s_vprint("", fmt, ap);
  va_end(ap);
}

static uint64_t s_command(outpost_host_t *h, const char *module, const char *command,
                          json_t *args) {
  (void)h, (void)module, (void)command;
  json_decref(args); /* an encoder sends none; there is no kernel here to route them */
  return 0;
}

static const outpost_host_api_t s_api = {s_frame_begin, s_frame_commit, s_wake_at, s_watch_fd,
                                         s_set_status,  s_error,        s_log,     s_command};

static double s_wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system time of the whole process: RUSAGE_SELF sums every thread, so
 * the encoder library's worker threads are counted, as ffmpeg -benchmark does. */
static double s_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s MODULE.so CLIP.y4m [bitrate_kbps=500 [OUT]]\n", argv[0]);
    return 2;
  }
  int kbps = argc > 3 ? atoi(argv[3]) : 500;
  char err[512];
  y4m_t *clip = y4m_open(argv[2], err, sizeof err);
  if (!clip) {
    fprintf(stderr, "bench_encode: %s\n", err);
    return 1;
  }
  void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  const outpost_module_t *mod = so ? dlsym(so, "outpost_module") : NULL;
  if (!mod || mod->abi != OUTPOST_MODULE_ABI || !mod->on_frame) {
    fprintf(stderr, "bench_encode: %s: %s\n", argv[1],
            !so    ? dlerror()
            : !mod ? "no outpost_module symbol"
                   : "wrong ABI or not a sink/filter module");
    return 1;
  }
  /* The settings a live encoder runs with; fps rounded, as the module takes an integer. */
  int fps_num = y4m_fps_num(clip), fps_den = y4m_fps_den(clip);
  int fps = (fps_num + fps_den / 2) / fps_den;
  json_t *settings =
      json_pack("{s:i, s:i, s:i}", "bitrate", kbps, "fps", fps, "keyframe_interval", 300);
  struct outpost_host host = {0};
  void *self = NULL;
  if (mod->init(&host, &s_api, settings, &self)) {
    fprintf(stderr, "bench_encode: %s: init failed\n", mod->name);
    return 1;
  }
  json_decref(settings);

  size_t n = y4m_frames(clip);
  host.sizes = calloc(n, sizeof *host.sizes);
  host.frames = n;
  if (argc > 4) {
    if (!(host.out = fopen(argv[4], "wb"))) {
      perror(argv[4]);
      return 1;
    }
    if (!strstr(mod->name, "x265") && !strstr(mod->name, "x264")) /* the AV1 modules */
      s_write_ivf_header(host.out, y4m_width(clip), y4m_height(clip), fps);
  }
  outpost_frame_t f = {.format = OUTPOST_FMT_I420,
                       .width = (uint32_t)y4m_width(clip),
                       .height = (uint32_t)y4m_height(clip),
                       .size = y4m_frame_size(clip)};
  /* Fault the whole mapping in first, so that reading the file is not timed. */
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t o = 0; o < f.size; o += 4096)
      sink ^= y4m_frame(clip, i)[o];
  (void)sink;

  double w0 = s_wall_s(), c0 = s_cpu_s();
  for (size_t i = 0; i < n; i++) {
    f.number = i + 1;
    /* capture times at the clip's rate (from one frame in: 0 is "none" to the core's rate
     * guard, which drains by them; all at 0, it skipped nearly every frame) */
    f.capture_us = (int64_t)((i + 1) * 1000000ull * (uint64_t)fps_den / (uint64_t)fps_num);
    host.feeding = f.number;
    f.data = y4m_frame(clip, i);
    if (mod->on_frame(self, &f))
      fprintf(stderr, "bench_encode: frame %zu refused\n", i + 1);
  }
  /* destroy is timed too: it is where the frames still inside the encoder
   * come out (ffmpeg's run includes its flush as well). */
  mod->destroy(&self);
  double wall = s_wall_s() - w0, cpu = s_cpu_s() - c0;

  /* Per coded unit out, not per frame in: a frame the module never delivered
   * (lost in a flush that did not happen) must not make it look faster. */
  double per = host.units ? (double)host.units : 1;
  /* The rate over the frames up to the last that came out, so that a short flush does not read
   * as a lower rate; the frames the core's rate guard did not encode count as given (as in
   * tests/encoder), or the rate would read high by what it held back. */
  double clip_s = (double)(host.last ? host.last : host.units) * fps_den / fps_num;
  printf("%s frames=%zu units=%llu fps=%.1f cpu_ms_per_frame=%.2f kbps=%.0f delay=%llu "
         "peak_kbps=%.0f\n",
         mod->name, n, (unsigned long long)host.units, per / wall, cpu * 1000.0 / per,
         (double)host.bytes * 8 / 1000.0 / clip_s, (unsigned long long)host.delay,
         s_peak_kbps(host.sizes, n, fps));
  if (host.units != n || host.refused)
    fprintf(stderr, "bench_encode: %s: %zu frames in, %llu units out, %llu refused\n", mod->name, n,
            (unsigned long long)host.units, (unsigned long long)host.refused);
  json_decref(host.status);
  if (host.out) {
    fclose(host.out);
    /* OUT.skipped: the 0-based indices of the frames before the last unit that have no unit
     * (the rate guard's), for a judge that pairs decoded pictures with the clip by index. */
    char path[4096];
    snprintf(path, sizeof path, "%s.skipped", argv[4]);
    FILE *sk = fopen(path, "w");
    for (uint64_t i = 0; sk && i < host.last; i++)
      if (!host.sizes[i])
        fprintf(sk, "%llu\n", (unsigned long long)i);
    if (sk)
      fclose(sk);
  }
  free(host.sizes);
  free(host.pending);
  y4m_destroy(&clip);
  /* No dlclose: an encoder library's thread pool may outlive its context. */
  return 0;
}
