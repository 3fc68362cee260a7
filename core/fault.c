#include "core/fault.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"

#define FAULT_RULES_MAX 16u
#define FAULT_NAME_MAX 64u

enum fault_kind { FAULT_KILL, FAULT_WRITE_EIO, FAULT_FSYNC_EIO, FAULT_ENOSPC, FAULT_SHORT };

struct fault_rule {
	enum fault_kind kind;
	char point[FAULT_NAME_MAX]; /* FAULT_KILL only */
	uint64_t nth;		    /* fires on this hit, 1-based */
	_Atomic uint64_t hits;
};

static struct fault_rule fault_rules[FAULT_RULES_MAX];
static uint32_t fault_rule_count;
static char fault_error[160];
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static _Atomic bool fault_on;

static bool parse_rule(const char *text, size_t length)
{
	static const struct {
		const char *name;
		enum fault_kind kind;
	} kinds[] = {{"write-eio", FAULT_WRITE_EIO},
		     {"fsync-eio", FAULT_FSYNC_EIO},
		     {"enospc", FAULT_ENOSPC},
		     {"short-write", FAULT_SHORT}};
	char rule[FAULT_NAME_MAX + 16];
	if (length == 0 || length >= sizeof(rule) || fault_rule_count == FAULT_RULES_MAX)
		return false;
	memcpy(rule, text, length);
	rule[length] = '\0';
	struct fault_rule *out = &fault_rules[fault_rule_count];
	out->nth = 1;
	char *at = strchr(rule, '@');
	if (at != NULL) {
		char *end = NULL;
		*at = '\0';
		out->nth = strtoull(at + 1, &end, 10);
		if (end == at + 1 || *end != '\0' || out->nth == 0)
			return false;
	}
	if (strncmp(rule, "kill:", 5) == 0) {
		if (rule[5] == '\0' || strlen(rule + 5) >= FAULT_NAME_MAX)
			return false;
		out->kind = FAULT_KILL;
		snprintf(out->point, sizeof(out->point), "%s", rule + 5);
		fault_rule_count++;
		return true;
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strcmp(rule, kinds[k].name) == 0) {
			out->kind = kinds[k].kind;
			fault_rule_count++;
			return true;
		}
	}
	return false;
}

static void fault_parse(void)
{
	const char *text = getenv("WEIR_FAULT");
	if (text == NULL || text[0] == '\0')
		return;
	while (*text != '\0') {
		size_t length = strcspn(text, ",");
		if (!parse_rule(text, length)) {
			snprintf(fault_error, sizeof(fault_error),
				 "WEIR_FAULT: cannot use rule '%.*s' (expected kill:POINT[@N], "
				 "write-eio[@N], fsync-eio[@N], enospc[@N] or short-write[@N])",
				 (int)length, text);
			fault_rule_count = 0;
			return;
		}
		text += length;
		if (*text == ',')
			text++;
	}
	atomic_store(&fault_on, fault_rule_count > 0);
}

bool weir_fault_enabled(void)
{
	pthread_once(&fault_once, fault_parse);
	return atomic_load_explicit(&fault_on, memory_order_relaxed);
}

const char *weir_fault_config_error(void)
{
	pthread_once(&fault_once, fault_parse);
	return fault_error[0] != '\0' ? fault_error : NULL;
}

/* Whether this hit of @rule is the one it fires on. */
static bool rule_fires(struct fault_rule *rule)
{
	uint64_t hit = atomic_fetch_add(&rule->hits, 1) + 1;
	return hit == rule->nth;
}

void weir_fault_point(const char *name)
{
	WEIR_ASSERT(name != NULL);
	if (!weir_fault_enabled())
		return;
	for (uint32_t r = 0; r < fault_rule_count; r++) {
		struct fault_rule *rule = &fault_rules[r];
		if (rule->kind != FAULT_KILL || strcmp(rule->point, name) != 0)
			continue;
		if (rule_fires(rule)) {
			static const char message[] =
				"weir: fault injection: killed at a kill point\n";
			ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
			(void)ignored;
			kill(getpid(), SIGKILL);
			_exit(137); /* not reached */
		}
	}
}

int weir_fault_io(enum weir_fault_io kind)
{
	if (!weir_fault_enabled())
		return 0;
	/* Every applicable rule counts every call, so each rule's @N means the N-th call of its
	 * kind whatever the other rules did; the first rule that fires decides. */
	int result = 0;
	for (uint32_t r = 0; r < fault_rule_count; r++) {
		struct fault_rule *rule = &fault_rules[r];
		bool is_write = rule->kind == FAULT_WRITE_EIO || rule->kind == FAULT_ENOSPC ||
				rule->kind == FAULT_SHORT;
		bool applies = kind == WEIR_FAULT_IO_FSYNC ? rule->kind == FAULT_FSYNC_EIO
							   : is_write;
		if (!applies || !rule_fires(rule) || result != 0)
			continue;
		result = rule->kind == FAULT_ENOSPC  ? -ENOSPC
			 : rule->kind == FAULT_SHORT ? 1
						     : -EIO;
	}
	return result;
}
