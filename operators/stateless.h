/* Stateless operators fused into the source's stage: filter, map, project.  Their public
 * entry points are weir_job_filter/map/project in include/weir/weir.h; each costs one call per
 * batch (the user's function sees a whole batch), never one per record. */
#ifndef WEIR_OPERATORS_STATELESS_H
#define WEIR_OPERATORS_STATELESS_H

#include "weir/weir.h"

#endif
