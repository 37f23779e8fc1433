/* stamp-read WIDTHxHEIGHT [FILE]: reads raw I420 frames of that size from FILE
 * (or stdin, or "-") and prints one line per frame: "index frame time_ms" for a
 * frame whose stamp reads, "index none" for one without (protocol/stamp.h).
 * Exit 0; 1 when the input ends inside a frame or cannot be read; 2 on usage. */
#include "stamp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  int width = 0, height = 0;
  if (argc < 2 || argc > 3 || sscanf(argv[1], "%dx%d", &width, &height) != 2 || width < 2 ||
      height < 2 || width > 16384 || height > 16384) {
    fprintf(stderr, "usage: stamp-read WIDTHxHEIGHT [FILE|-]  (raw I420 frames)\n");
    return 2;
  }
  FILE *in = stdin;
  if (argc == 3 && strcmp(argv[2], "-") && !(in = fopen(argv[2], "rb"))) {
    perror(argv[2]);
    return 1;
  }
  /* Only the luma plane is read; chroma is skipped with the rest of the frame. */
  size_t size = (size_t)width * height + 2 * ((size_t)((width + 1) / 2) * ((height + 1) / 2));
  uint8_t *buf = malloc(size);
  if (!buf) {
    perror("malloc");
    return 1;
  }
  int rc = 0;
  for (uint64_t index = 0;; index++) {
    size_t got = fread(buf, 1, size, in);
    if (got == 0 && feof(in))
      break;
    if (got != size) {
      fprintf(stderr, "stamp-read: %s after %" PRIu64 " frames (%zu of %zu bytes)\n",
              ferror(in) ? "read error" : "input ends inside a frame", index, got, size);
      rc = 1;
      break;
    }
    uint32_t frame;
    uint64_t time_ms;
    if (stamp_read(buf, width, height, width, &frame, &time_ms) == 0)
      printf("%" PRIu64 " %" PRIu32 " %" PRIu64 "\n", index, frame, time_ms);
    else
      printf("%" PRIu64 " none\n", index);
  }
  free(buf);
  if (in != stdin)
    fclose(in);
  if (fflush(stdout))
    rc = 1;
  return rc;
}
