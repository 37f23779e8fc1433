/* One line per event on stderr: "2026-11-21T10:40:15.123Z who: message". */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

void outpost_log(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
