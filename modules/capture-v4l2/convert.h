/* Camera formats to I420, written straight into the output frame (the one
 * copy a raw frame pays). Strides are the driver's bytesperline. */
#ifndef OUTPOST_CONVERT_H
#define OUTPOST_CONVERT_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 0, or -1 when src_len is too short for w x h at that stride.
 * dst holds w*h*3/2 bytes; w and h are even. */
int convert_yuyv_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst);
int convert_nv12_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst);
int convert_i420_to_i420(const uint8_t *src, size_t src_len, int stride, int w, int h,
                         uint8_t *dst);

#endif
