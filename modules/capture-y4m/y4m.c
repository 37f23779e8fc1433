#include "y4m.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER 1024

struct y4m {
  const uint8_t *map; /* owned read-only mapping of the whole file */
  size_t map_len;
  int width, height, fps_num, fps_den;
  size_t frame_size;
  size_t n_frames;
  size_t *offsets; /* owned; where each frame's pixels start */
};

static y4m_t *s_fail(y4m_t *y, char *err, size_t errlen, const char *path, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", path, msg);
  y4m_destroy(&y);
  return NULL;
}

/* The header's tokens: W, H, F (rate), C (colour space); I, A and X are ignored. */
static int s_header(y4m_t *y, const char *line, char *why, size_t whylen) {
  const char *p = line + 10; /* after "YUV4MPEG2 " */
  while (*p && *p != '\n') {
    while (*p == ' ')
      p++;
    const char *tok = p;
    while (*p && *p != ' ' && *p != '\n')
      p++;
    int len = (int)(p - tok);
    if (len < 1)
      continue;
    switch (tok[0]) {
    case 'W':
      y->width = atoi(tok + 1);
      break;
    case 'H':
      y->height = atoi(tok + 1);
      break;
    case 'F':
      if (sscanf(tok + 1, "%d:%d", &y->fps_num, &y->fps_den) != 2)
        y->fps_num = 0;
      break;
    case 'C':
      if (strncmp(tok + 1, "420", 3) ||
          (len > 4 && strncmp(tok + 4, "jpeg", 4) && strncmp(tok + 4, "paldv", 5) &&
           strncmp(tok + 4, "mpeg2", 5))) {
        snprintf(why, whylen, "colour space %.*s is not supported (4:2:0 only)", len, tok);
        return -1;
      }
      break;
    default:
      break;
    }
  }
  if (y->width < 2 || y->height < 2 || y->width > 8192 || y->height > 8192 || y->width % 2 ||
      y->height % 2) {
    snprintf(why, whylen, "bad or missing size W%d H%d (even, 2..8192)", y->width, y->height);
    return -1;
  }
  if (y->fps_num <= 0 || y->fps_den <= 0 || y->fps_num / y->fps_den > 240) {
    snprintf(why, whylen, "bad or missing frame rate (F<num>:<den>)");
    return -1;
  }
  return 0;
}

y4m_t *y4m_open(const char *path, char *err, size_t errlen) {
  y4m_t *y = calloc(1, sizeof *y);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return s_fail(y, err, errlen, path, "%s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < 10) {
    close(fd);
    return s_fail(y, err, errlen, path, "not a YUV4MPEG2 file (too short or not a file)");
  }
  y->map_len = (size_t)st.st_size;
  void *m = mmap(NULL, y->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED)
    return s_fail(y, err, errlen, path, "mmap: %s", strerror(errno));
  y->map = m;
  const char *text = (const char *)y->map;
  const char *eol = memchr(text, '\n', y->map_len < MAX_HEADER ? y->map_len : MAX_HEADER);
  if (memcmp(text, "YUV4MPEG2 ", 10) || !eol)
    return s_fail(y, err, errlen, path, "not a YUV4MPEG2 file (bad signature or header)");
  char header[MAX_HEADER + 1], why[160];
  memcpy(header, text, (size_t)(eol - text) + 1);
  header[eol - text + 1] = 0;
  if (s_header(y, header, why, sizeof why))
    return s_fail(y, err, errlen, path, "%s", why);
  y->frame_size = (size_t)y->width * y->height * 3 / 2;
  size_t pos = (size_t)(eol - text) + 1, cap = 0;
  while (pos < y->map_len) {
    size_t left = y->map_len - pos;
    const char *fe = memchr(text + pos, '\n', left < MAX_HEADER ? left : MAX_HEADER);
    if (left < 5 || memcmp(text + pos, "FRAME", 5) || !fe)
      return s_fail(y, err, errlen, path, "frame %zu: no FRAME marker at byte %zu", y->n_frames,
                    pos);
    pos = (size_t)(fe - text) + 1;
    if (y->map_len - pos < y->frame_size)
      return s_fail(y, err, errlen, path, "frame %zu truncated: %zu of %zu bytes", y->n_frames,
                    y->map_len - pos, y->frame_size);
    if (y->n_frames == cap) {
      cap = cap ? cap * 2 : 64;
      y->offsets = realloc(y->offsets, cap * sizeof *y->offsets);
    }
    y->offsets[y->n_frames++] = pos;
    pos += y->frame_size;
  }
  if (!y->n_frames)
    return s_fail(y, err, errlen, path, "no frames");
  return y;
}

void y4m_destroy(y4m_t **yp) {
  y4m_t *y = *yp;
  if (!y)
    return;
  if (y->map)
    munmap((void *)y->map, y->map_len);
  free(y->offsets);
  free(y);
  *yp = NULL;
}

int y4m_width(const y4m_t *y) {
  return y->width;
}
int y4m_height(const y4m_t *y) {
  return y->height;
}
int y4m_fps_num(const y4m_t *y) {
  return y->fps_num;
}
int y4m_fps_den(const y4m_t *y) {
  return y->fps_den;
}
size_t y4m_frames(const y4m_t *y) {
  return y->n_frames;
}
size_t y4m_frame_size(const y4m_t *y) {
  return y->frame_size;
}
const uint8_t *y4m_frame(const y4m_t *y, size_t i) {
  return i < y->n_frames ? y->map + y->offsets[i] : NULL;
}
