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

/* A duration with a unit: "250ms", "1s", "2m" (a bare number is milliseconds).
 * Returns: 0, or -EINVAL after printing which option was wrong. */
static inline int weir_parse_duration_ms(const struct option *options, int value,
					 const char *text, uint64_t *out_ms)
{
	char *end = NULL;
	errno = 0;
	unsigned long long parsed = strtoull(text, &end, 10);
	uint64_t scale = 0;
	if (errno == 0 && end != text && text[0] != '-') {
		if (*end == '\0' || (end[0] == 'm' && end[1] == 's' && end[2] == '\0'))
			scale = 1;
		else if (end[0] == 's' && end[1] == '\0')
			scale = 1000;
		else if (end[0] == 'm' && end[1] == '\0')
			scale = 60000;
	}
	if (scale == 0 || parsed == 0 || parsed > UINT64_MAX / scale) {
		fprintf(stderr,
			"weir: --%s: '%s' is not a positive duration (e.g. 100ms, 1s, 2m)\n",
			weir_option_name(options, value), text);
		return -EINVAL;
	}
	*out_ms = parsed * scale;
	return 0;
}

#endif
