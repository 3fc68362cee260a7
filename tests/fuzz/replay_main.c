/* Goal: run a libFuzzer harness where libFuzzer is not available (gcc builds, gcc ASan), so
 * the harness and the code under it are exercised by every build's test run.
 *
 * Method: usage `fuzz_packet_replay DIR... [MUTATIONS]`.  Every regular file of each
 * directory (sorted by name, hidden files skipped) is fed to LLVMFuzzerTestOneInput as is;
 * then MUTATIONS (default 100000) inputs derived from them by seeded random edits (byte
 * flips, overwrites with 0x00/0xff, inserts, erases, truncation, a new link byte), each in a
 * heap buffer of exactly its size.  The seed is printed; WEIR_SEED=n replays it.  The
 * harness aborts on a failed invariant; exit 1 when no input was found (a wrong path). */
#include <dirent.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUTS_MAX 1024
#define INPUT_LENGTH_MAX 65536 /* bytes; longer files are cut */
#define EDITS_MAX 8
#define SLACK 64 /* bytes an input may grow by inserts */

struct input {
	uint8_t *bytes;
	size_t length;
};

static struct input inputs[INPUTS_MAX];
static size_t input_count;
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_file(const char *path)
{
	FILE *file = fopen(path, "rb");
	uint8_t *bytes = malloc(INPUT_LENGTH_MAX);

	if (file == NULL || bytes == NULL) {
		fprintf(stderr, "fuzz_packet_replay: cannot read %s\n", path);
		exit(1);
	}
	size_t length = fread(bytes, 1, INPUT_LENGTH_MAX, file);

	fclose(file);
	if (input_count == INPUTS_MAX) {
		free(bytes);
		return;
	}
	inputs[input_count].bytes = bytes;
	inputs[input_count].length = length;
	input_count++;
}

/* Loads every non-hidden regular file in @directory, in name order. */
static void load_directory(const char *directory)
{
	DIR *dir = opendir(directory);
	char *names[INPUTS_MAX];
	size_t name_count = 0;
	struct dirent *entry;

	if (dir == NULL) {
		fprintf(stderr, "fuzz_packet_replay: cannot open %s\n", directory);
		exit(1);
	}
	while ((entry = readdir(dir)) != NULL && name_count < INPUTS_MAX) {
		if (entry->d_name[0] == '.')
			continue;
		names[name_count] = strdup(entry->d_name);
		if (names[name_count] == NULL)
			abort();
		name_count++;
	}
	closedir(dir);
	qsort(names, name_count, sizeof(names[0]), compare_names);
	for (size_t i = 0; i < name_count; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", directory, names[i]);
		load_file(path);
		free(names[i]);
	}
}

/* One random edit of @bytes (@length, capacity @capacity); returns the new length. */
static size_t mutate_once(uint8_t *bytes, size_t length, size_t capacity)
{
	size_t at = length > 0 ? (size_t)(rng_next() % length) : 0;

	switch (rng_next() % 7) {
	case 0: /* flip bits */
		if (length > 0)
			bytes[at] ^= (uint8_t)(1 + rng_next() % 255);
		return length;
	case 1: /* boundary values: lengths and offsets love 0x00 and 0xff */
		if (length > 0)
			bytes[at] = rng_next() % 2 ? 0xff : 0x00;
		return length;
	case 2: /* insert a byte */
		if (length == capacity)
			return length;
		memmove(bytes + at + 1, bytes + at, length - at);
		bytes[at] = (uint8_t)rng_next();
		return length + 1;
	case 3: /* erase a byte */
		if (length == 0)
			return length;
		memmove(bytes + at, bytes + at + 1, length - at - 1);
		return length - 1;
	case 4: /* truncate */
		return length > 0 ? (size_t)(rng_next() % (length + 1)) : 0;
	case 5: /* another link type */
		if (length > 0)
			bytes[0] = (uint8_t)rng_next();
		return length;
	default: /* a random byte */
		if (length > 0)
			bytes[at] = (uint8_t)rng_next();
		return length;
	}
}

static void run_exact(const uint8_t *bytes, size_t length)
{
	uint8_t *copy = malloc(length > 0 ? length : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, bytes, length);
	LLVMFuzzerTestOneInput(copy, length);
	free(copy);
}

int main(int argc, char **argv)
{
	uint64_t mutation_count = 100000;
	int directory_count = argc - 1;

	if (argc >= 3 && argv[argc - 1][0] >= '0' && argv[argc - 1][0] <= '9') {
		mutation_count = strtoull(argv[argc - 1], NULL, 10);
		directory_count--;
	}
	for (int i = 1; i <= directory_count; i++)
		load_directory(argv[i]);
	if (input_count == 0) {
		fprintf(stderr, "usage: fuzz_packet_replay DIR... [MUTATIONS]: no input found\n");
		return 1;
	}

	const char *text = getenv("WEIR_SEED");
	uint64_t seed = text != NULL && *text != '\0' ? strtoull(text, NULL, 0)
						       : (uint64_t)time(NULL);

	printf("fuzz_packet_replay: %zu inputs, %" PRIu64 " mutations, WEIR_SEED=%" PRIu64 "\n",
	       input_count, mutation_count, seed);
	fflush(stdout);
	rng_state = seed;
	for (size_t i = 0; i < input_count; i++)
		run_exact(inputs[i].bytes, inputs[i].length);
	for (uint64_t n = 0; n < mutation_count; n++) {
		const struct input *from = &inputs[rng_next() % input_count];
		uint8_t work[INPUT_LENGTH_MAX + SLACK];
		size_t length = from->length;
		uint32_t edits = 1 + (uint32_t)(rng_next() % EDITS_MAX);

		memcpy(work, from->bytes, length);
		for (uint32_t e = 0; e < edits; e++)
			length = mutate_once(work, length, from->length + SLACK);
		run_exact(work, length);
	}
	for (size_t i = 0; i < input_count; i++)
		free(inputs[i].bytes);
	printf("fuzz_packet_replay: done\n");
	return 0;
}
