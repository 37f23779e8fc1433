#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void outpost_log(const char *who, const char *fmt, ...) {
  struct timespec ts;
  struct tm tm;
  char line[1024];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s: ", ts.tv_nsec / 1000000, who);
  va_list ap;
  va_start(ap, fmt);
  if (n < (int)sizeof line)
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  va_end(ap);
  /* One write per line so processes sharing stderr never interleave mid-line. */
  size_t len = strnlen(line, sizeof line - 2);
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}
