/* weir gen: a deterministic synthetic card-transactions CSV (ts,card,merchant,amount).
 * Timestamps rise by --step per row with up to --disorder units of jitter backwards, so the
 * file is out of order by at most --disorder: a job with --out-of-orderness >= that sees no
 * late event.  Amounts are multiples of 0.25, so their sums are exact in any order. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A skewed pick in [0, n): small numbers are much more likely (a few hot cards). */
static uint64_t skewed(uint64_t *state, uint64_t n)
{
	uint64_t a = splitmix64(state) % n;
	uint64_t b = splitmix64(state) % n;
	return a < b ? a : b;
}

static void gen_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir gen --rows N [--out FILE] [--seed S] [--cards N] [--merchants N]\n"
		"                [--step T] [--disorder D] [--bad-every K]\n"
		"  writes 'ts,card,merchant,amount' rows; --bad-every K makes every K-th line\n"
		"  malformed (to exercise error reporting)\n");
}

int weir_cmd_gen(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"rows", required_argument, NULL, 'r'},
		{"out", required_argument, NULL, 'o'},
		{"seed", required_argument, NULL, 's'},
		{"cards", required_argument, NULL, 'c'},
		{"merchants", required_argument, NULL, 'm'},
		{"step", required_argument, NULL, 't'},
		{"disorder", required_argument, NULL, 'd'},
		{"bad-every", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t rows = 0, seed = 1, cards = 1000, merchants = 50, step = 10, disorder = 0;
	uint64_t bad_every = 0;
	const char *out_path = NULL;
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		uint64_t *target = NULL;
		switch (option) {
		case 'r': target = &rows; break;
		case 's': target = &seed; break;
		case 'c': target = &cards; break;
		case 'm': target = &merchants; break;
		case 't': target = &step; break;
		case 'd': target = &disorder; break;
		case 'b': target = &bad_every; break;
		case 'o': out_path = optarg; break;
		case 'h': gen_usage(stdout); return 0;
		default: gen_usage(stderr); return 2;
		}
		if (target != NULL && weir_parse_u64(long_options, option, optarg, target) != 0)
			return 2;
	}
	if (rows == 0 || cards == 0 || merchants == 0 || optind != argc) {
		gen_usage(stderr);
		return 2;
	}
	FILE *out = stdout;
	if (out_path != NULL && strcmp(out_path, "-") != 0) {
		out = fopen(out_path, "w");
		if (out == NULL) {
			fprintf(stderr, "weir gen: cannot create %s: %s\n", out_path,
				strerror(errno));
			return 2;
		}
	}
	fprintf(out, "ts,card,merchant,amount\n");
	uint64_t state = seed;
	for (uint64_t i = 0; i < rows; i++) {
		int64_t jitter = disorder > 0 ? (int64_t)(splitmix64(&state) % (disorder + 1)) : 0;
		int64_t ts = (int64_t)(i * step) - jitter;
		uint64_t card = skewed(&state, cards);
		uint64_t merchant = splitmix64(&state) % merchants;
		double amount = (double)(1 + splitmix64(&state) % 2000) * 0.25;
		if (bad_every > 0 && (i + 1) % bad_every == 0)
			fprintf(out, "%" PRId64 ",c%05" PRIu64 ",not-a-number\n", ts, card);
		else
			fprintf(out, "%" PRId64 ",c%05" PRIu64 ",m%03" PRIu64 ",%.2f\n", ts, card,
				merchant, amount);
	}
	if (out != stdout && fclose(out) != 0) {
		fprintf(stderr, "weir gen: writing %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	return 0;
}
