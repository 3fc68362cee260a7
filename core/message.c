#include "core/message.h"

#include <stdarg.h>
#include <stdio.h>

void weir_message_set(char *buffer, size_t length, const char *format, ...)
{
	if (buffer == NULL || length == 0)
		return;
	va_list args;
	va_start(args, format);
	vsnprintf(buffer, length, format, args);
	va_end(args);
}
