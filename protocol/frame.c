#include "frame.h"

#include <errno.h>
#include <string.h>

int outpost_frame_desc_check(const void *buf, size_t len, outpost_frame_desc_t *out) {
  if (!buf || len != sizeof(*out))
    return -EBADMSG;
  memcpy(out, buf, sizeof(*out));
  if (out->magic != OUTPOST_FRAME_DESC_MAGIC || out->version != OUTPOST_FRAME_DESC_VERSION ||
      out->in_ring > 1 || out->width > 16384 || out->height > 16384 || out->size > (256u << 20))
    return -EBADMSG;
  return 0;
}
