/* A YUV4MPEG2 file, mapped and indexed up front so that a wrong or truncated
 * file is refused at start, not discovered mid-stream. 4:2:0 only. */
#ifndef OUTPOST_Y4M_H
#define OUTPOST_Y4M_H

#include <stddef.h>
#include <stdint.h>

typedef struct y4m y4m_t;

/* NULL on error, with a message naming the file and the problem in err. */
y4m_t *y4m_open(const char *path, char *err, size_t errlen);
void y4m_destroy(y4m_t **y);

int y4m_width(const y4m_t *y);
int y4m_height(const y4m_t *y);
int y4m_fps_num(const y4m_t *y);
int y4m_fps_den(const y4m_t *y);
size_t y4m_frames(const y4m_t *y);
size_t y4m_frame_size(const y4m_t *y);
/* Frame i's I420 bytes (borrowed from the mapping, valid until y4m_destroy). */
const uint8_t *y4m_frame(const y4m_t *y, size_t i);

#endif
