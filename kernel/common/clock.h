/* Clocks in microseconds. Monotonic for intervals and deadlines (it is the same
 * clock in every process of the machine, so timestamps can cross processes);
 * real time only for what humans or other machines read. */
#ifndef OUTPOST_CLOCK_H
#define OUTPOST_CLOCK_H

#include <stdint.h>

int64_t clock_mono_us(void);
int64_t clock_real_us(void);

#endif
