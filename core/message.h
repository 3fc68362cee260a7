/* Error messages into a caller's buffer (the "char *error, size_t error_length" pair that
 * functions returning -errno fill in to say what and where).  Context: any thread. */
#ifndef WEIR_CORE_MESSAGE_H
#define WEIR_CORE_MESSAGE_H

#include <stddef.h>

/* printf into @buffer (@length bytes, truncated to fit); nothing when @buffer is NULL or
 * @length is 0. */
__attribute__((format(printf, 3, 4))) void weir_message_set(char *buffer, size_t length,
							      const char *format, ...);

#endif
