/* The deterministic generator source: weir_job_source_generator() in include/weir/weir.h.
 * Event i goes to partition i % n, so the set of events is the same for any worker count
 * and a run can be replayed from (seed, count) alone.  The memory source
 * (weir_job_source_memory) makes the same split up front, so benchmarks time the job alone. */
#ifndef WEIR_IO_GENERATOR_H
#define WEIR_IO_GENERATOR_H

#include "weir/weir.h"

#endif
