/* Strict number parsing for command-line options: the whole argument must be a number in
 * range, else a message naming the option goes to stderr. */
#ifndef WEIR_CLI_OPTIONS_H
#define WEIR_CLI_OPTIONS_H

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline const char *weir_option_name(const struct option *options, int value)
{
	for (const struct option *o = options; o->name != NULL; o++) {
		if (o->val == value)
			return o->name;
	}
	return "?";
}

/* Returns: 0, or -EINVAL after printing which option was wrong. */
static inline int weir_parse_u64(const struct option *options, int value, const char *text,
				 uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	unsigned long long parsed = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
		fprintf(stderr, "weir: --%s: '%s' is not a non-negative integer\n",
			weir_option_name(options, value), text);
		return -EINVAL;
	}
	*out = parsed;
	return 0;
}

static inline int weir_parse_i64(const struct option *options, int value, const char *text,
				 int64_t *out)
{
	char *end = NULL;
	errno = 0;
	long long parsed = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0') {
		fprintf(stderr, "weir: --%s: '%s' is not an integer\n",
			weir_option_name(options, value), text);
		return -EINVAL;
	}
	*out = parsed;
	return 0;
}

#endif
