/* The NEXMark event model, shared by the nexmark-q* workloads (bench/nexmark.c: q0-q2 over the
 * bid stream; bench/nexmark_windowed.c: q5, q7, q8).
 *
 * Method: Beam's reference generator (GeneratorConfig, PersonGenerator, AuctionGenerator,
 * BidGenerator, PriceGenerator) with its default configuration.  Stream event n is a person
 * when n % 50 == 0, an auction when n % 50 is 1-3, else a bid (1:3:46); its time is
 * 1,700,000,000,000 ms + n * 10 us (one event every 10 us: 100,000 events per second of event
 * time), in ms.  Ids start at 1000.  Every event is a function of n alone (splitmix64 seeded
 * with n), so a memory source's strides give every worker count the same events.
 * - Bids: the auction is, with P = 1/2, the hot one (the first of the latest batch of 100
 *   auctions), else uniform over the 100 auctions still in flight plus a lead of 10; the
 *   bidder is, with P = 3/4, the second person of the latest batch of 100 people, else
 *   uniform over the 1,000 active people plus a lead of 10.  price = round(10^(6 U) * 100)
 *   cents.  channel/url follow Flink's nexmark generator in spirit: with P = 1/2 one of 4
 *   hot channels, else "channel-K" (K < 10,000); url is the reference's 52-character item
 *   URL with "&ch=K" instead of its longer "&channel_id=" suffix, to fit str63; no `extra`.
 * - Auctions: the seller is, with P = 3/4, the hot one (the first of the latest batch of 100
 *   people), else drawn as a non-hot bidder is.
 * - Persons: their id is the next one; names, emails and the rest are not made (no query
 *   here reads them). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench/nexmark_model.h"
#include "core/assert.h"
#include "core/schema.h"

int64_t nexmark_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

uint64_t nexmark_random(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint64_t nexmark_below(uint64_t *state, uint64_t bound)
{
	return nexmark_random(state) % bound;
}

/* The stream event number of bid @bid (0-based among bids). */
uint64_t nexmark_bid_event(uint64_t bid)
{
	return bid / NEXMARK_BID_PROPORTION * NEXMARK_TOTAL_PROPORTION + NEXMARK_PERSON_PROPORTION +
	       NEXMARK_AUCTION_PROPORTION + bid % NEXMARK_BID_PROPORTION;
}

/* Base-0 id of the last auction made at or before event @n (n is a bid here). */
static int64_t last_auction(uint64_t n)
{
	uint64_t epoch = n / NEXMARK_TOTAL_PROPORTION, offset = n % NEXMARK_TOTAL_PROPORTION;
	if (offset < NEXMARK_PERSON_PROPORTION) {
		if (epoch == 0)
			return 0;
		epoch--;
		offset = NEXMARK_AUCTION_PROPORTION - 1;
	} else if (offset >= NEXMARK_PERSON_PROPORTION + NEXMARK_AUCTION_PROPORTION) {
		offset = NEXMARK_AUCTION_PROPORTION - 1;
	} else {
		offset -= NEXMARK_PERSON_PROPORTION;
	}
	return (int64_t)(epoch * NEXMARK_AUCTION_PROPORTION + offset);
}

static int64_t last_person(uint64_t n)
{
	uint64_t epoch = n / NEXMARK_TOTAL_PROPORTION, offset = n % NEXMARK_TOTAL_PROPORTION;
	if (offset >= NEXMARK_PERSON_PROPORTION)
		offset = NEXMARK_PERSON_PROPORTION - 1;
	return (int64_t)(epoch * NEXMARK_PERSON_PROPORTION + offset);
}

/* The random stream of event @n: every event is a function of its number alone. */
static uint64_t event_seed(uint64_t n)
{
	return n * UINT64_C(0x2545f4914f6cdd1d) + 1;
}

int64_t nexmark_time_ms(uint64_t n)
{
	return NEXMARK_BASE_TIME_MS + (int64_t)n * NEXMARK_INTER_EVENT_US / 1000;
}

uint64_t nexmark_seller_event(uint64_t m)
{
	const uint64_t sellers = NEXMARK_PERSON_PROPORTION + NEXMARK_AUCTION_PROPORTION;
	return m / sellers * NEXMARK_TOTAL_PROPORTION + m % sellers;
}

bool nexmark_is_person(uint64_t n)
{
	return n % NEXMARK_TOTAL_PROPORTION < NEXMARK_PERSON_PROPORTION;
}

int64_t nexmark_person_id(uint64_t n)
{
	WEIR_VERIFY(nexmark_is_person(n));
	return last_person(n) + NEXMARK_FIRST_PERSON_ID;
}

void nexmark_make_auction(uint64_t n, int64_t *id, int64_t *seller)
{
	WEIR_VERIFY(!nexmark_is_person(n) &&
		    n % NEXMARK_TOTAL_PROPORTION <
			    NEXMARK_PERSON_PROPORTION + NEXMARK_AUCTION_PROPORTION);
	uint64_t rng = event_seed(n);
	*id = last_auction(n) + NEXMARK_FIRST_AUCTION_ID;
	/* AuctionGenerator: with P = 3/4 the hot seller (the first of the latest batch of
	 * HOT_SELLER_RATIO people), else one of the active people, as bidders are drawn. */
	int64_t people = last_person(n) + 1;
	if (nexmark_below(&rng, NEXMARK_CONFIG_HOT_SELLERS) > 0) {
		*seller = (people - 1) / NEXMARK_HOT_SELLER_RATIO * NEXMARK_HOT_SELLER_RATIO;
	} else {
		int64_t active = people < NEXMARK_ACTIVE_PEOPLE ? people : NEXMARK_ACTIVE_PEOPLE;
		*seller = people - active +
			  (int64_t)nexmark_below(&rng, (uint64_t)active + NEXMARK_PERSON_ID_LEAD);
	}
	*seller += NEXMARK_FIRST_PERSON_ID;
}

/* The auction and bidder of stream event @n, drawing from @rng as BidGenerator does. */
static void bid_ids(uint64_t n, uint64_t *rng, struct nexmark_bid *bid)
{
	int64_t last = last_auction(n);
	if (nexmark_below(rng, NEXMARK_CONFIG_HOT_AUCTIONS) > 0) {
		bid->auction = last / NEXMARK_HOT_AUCTION_RATIO * NEXMARK_HOT_AUCTION_RATIO;
	} else {
		int64_t low =
			last > NEXMARK_IN_FLIGHT_AUCTIONS ? last - NEXMARK_IN_FLIGHT_AUCTIONS : 0;
		bid->auction = low + (int64_t)nexmark_below(rng, (uint64_t)(last - low) + 1 +
								NEXMARK_AUCTION_ID_LEAD);
	}
	bid->auction += NEXMARK_FIRST_AUCTION_ID;
	int64_t people = last_person(n) + 1;
	if (nexmark_below(rng, NEXMARK_CONFIG_HOT_BIDDERS) > 0) {
		bid->bidder =
			(people - 1) / NEXMARK_HOT_BIDDER_RATIO * NEXMARK_HOT_BIDDER_RATIO + 1;
	} else {
		int64_t active = people < NEXMARK_ACTIVE_PEOPLE ? people : NEXMARK_ACTIVE_PEOPLE;
		uint64_t drawn = nexmark_below(rng, (uint64_t)active + NEXMARK_PERSON_ID_LEAD);
		bid->bidder = people - active + (int64_t)drawn;
	}
	bid->bidder += NEXMARK_FIRST_PERSON_ID;
}

void nexmark_bid_keys(uint64_t b, int64_t *auction, int64_t *bidder)
{
	uint64_t n = nexmark_bid_event(b);
	uint64_t rng = event_seed(n);
	struct nexmark_bid bid;
	bid_ids(n, &rng, &bid);
	*auction = bid.auction;
	*bidder = bid.bidder;
}

static void letters(uint64_t *rng, char *out, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		out[i] = (char)('a' + nexmark_below(rng, 26));
	out[count] = '\0';
}

/* Bid number @b of the bid stream. */
void nexmark_make_bid(uint64_t b, struct nexmark_bid *bid)
{
	static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
	uint64_t n = nexmark_bid_event(b);
	uint64_t rng = event_seed(n);
	bid_ids(n, &rng, bid);
	double u = (double)(nexmark_random(&rng) >> 11) * 0x1p-53;
	bid->price = llround(pow(10.0, u * 6.0) * 100.0);
	bid->date_time_ms = nexmark_time_ms(n);
	char a[6], c[6];
	letters(&rng, a, 5);
	letters(&rng, c, 5);
	if (nexmark_below(&rng, 2) > 0) {
		uint64_t k = nexmark_below(&rng, 4);
		snprintf(bid->channel, sizeof(bid->channel), "%s", hot_channels[k]);
		snprintf(bid->url, sizeof(bid->url),
			 "https://www.nexmark.com/%s/%s/item.htm?query=1", a, c);
	} else {
		uint64_t k = nexmark_below(&rng, NEXMARK_CHANNELS);
		snprintf(bid->channel, sizeof(bid->channel), "channel-%" PRIu64, k);
		snprintf(bid->url, sizeof(bid->url),
			 "https://www.nexmark.com/%s/%s/item.htm?query=1&ch=%" PRIu64, a, c, k);
	}
}

/* A weir string field: length byte, content, zero padding up to @stored bytes. */
static void put_str(uint8_t *record, uint32_t offset, uint32_t stored, const char *text)
{
	size_t length = strlen(text);
	memset(record + offset, 0, stored);
	record[offset] = (uint8_t)length;
	memcpy(record + offset + 1, text, length);
}

static void write_bid(const struct nexmark_bid_layout *layout, const struct nexmark_bid *bid,
			 uint8_t *record)
{
	nexmark_put_i64(record, layout->auction, bid->auction);
	nexmark_put_i64(record, layout->bidder, bid->bidder);
	nexmark_put_i64(record, layout->price, bid->price);
	nexmark_put_i64(record, layout->date_time, bid->date_time_ms);
	put_str(record, layout->channel, 16, bid->channel);
	put_str(record, layout->url, 64, bid->url);
}

/* weir_fill_fn: bids @first, @first + @step, ... */
void nexmark_fill_bids(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		    uint32_t record_length)
{
	const struct nexmark_bid_layout *layout = ctx;
	if (record_length != layout->record_length)
		abort(); /* our bug: the schema and the layout disagree */
	for (uint64_t k = 0; k < count; k++) {
		struct nexmark_bid bid;
		nexmark_make_bid(first + k * step, &bid);
		write_bid(layout, &bid, records + k * record_length);
	}
}

int nexmark_bid_layout_init(struct nexmark_bid_layout *layout)
{
	struct weir_schema schema;
	char error[128];
	int rc = weir_schema_parse(&schema, NEXMARK_BID_SCHEMA, error, sizeof(error));
	if (rc != 0) {
		fprintf(stderr, "weir bench: nexmark: %s\n", error);
		return rc;
	}
	uint32_t *const offsets[] = {&layout->auction, &layout->bidder, &layout->price,
				     &layout->date_time, &layout->channel, &layout->url};
	for (uint32_t i = 0; i < schema.field_count; i++)
		*offsets[i] = schema.fields[i].offset;
	layout->record_length = schema.record_length;
	return 0;
}

int nexmark_temp_file(char *path, size_t capacity)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, capacity, "%s/weir-nexmark-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		int rc = -errno;
		fprintf(stderr, "weir bench: nexmark: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	close(fd);
	return 0;
}

int nexmark_records_map(uint8_t **records, size_t length)
{
	void *memory = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	if (memory == MAP_FAILED) {
		fprintf(stderr, "weir bench: nexmark: %zu bytes: %s\n", length, strerror(errno));
		return -ENOMEM;
	}
	*records = memory;
	return 0;
}

void nexmark_records_unmap(uint8_t *records, size_t length)
{
	if (records != NULL)
		munmap(records, length);
}
