/* The NEXMark event model shared by the nexmark-q* workloads: see bench/nexmark_model.c.
 * Only bench/ includes this header. */
#ifndef WEIR_BENCH_NEXMARK_MODEL_H
#define WEIR_BENCH_NEXMARK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NEXMARK_BID_SCHEMA                                                                      \
	"auction:i64,bidder:i64,price:i64,date_time:ts,channel:str15,url:str63"

/* The model (Beam's GeneratorConfig defaults). */
#define NEXMARK_PERSON_PROPORTION 1u
#define NEXMARK_AUCTION_PROPORTION 3u
#define NEXMARK_TOTAL_PROPORTION 50u
#define NEXMARK_BID_PROPORTION                                                                  \
	(NEXMARK_TOTAL_PROPORTION - NEXMARK_PERSON_PROPORTION - NEXMARK_AUCTION_PROPORTION)
#define NEXMARK_HOT_AUCTION_RATIO 100u
#define NEXMARK_HOT_BIDDER_RATIO 100u
#define NEXMARK_CONFIG_HOT_AUCTIONS 2u /* P(hot auction) = 1 - 1/2 */
#define NEXMARK_CONFIG_HOT_BIDDERS 4u  /* P(hot bidder) = 1 - 1/4 */
#define NEXMARK_IN_FLIGHT_AUCTIONS 100u
#define NEXMARK_ACTIVE_PEOPLE 1000u
#define NEXMARK_AUCTION_ID_LEAD 10u
#define NEXMARK_PERSON_ID_LEAD 10u
#define NEXMARK_FIRST_AUCTION_ID 1000
#define NEXMARK_FIRST_PERSON_ID 1000
#define NEXMARK_BASE_TIME_MS INT64_C(1700000000000)
#define NEXMARK_INTER_EVENT_US 10
#define NEXMARK_CHANNELS 10000u
#define NEXMARK_HOT_SELLER_RATIO 100u
#define NEXMARK_CONFIG_HOT_SELLERS 4u /* P(hot seller) = 1 - 1/4 */
/* Byte offsets of the bid's fields in weir's layout (from weir_schema_parse). */
struct nexmark_bid_layout {
	uint32_t auction, bidder, price, date_time, channel, url;
	uint32_t record_length;
};

struct nexmark_bid {
	int64_t auction, bidder, price, date_time_ms;
	char channel[16], url[64]; /* NUL-terminated; at most 15 and 63 bytes */
};


static inline void nexmark_put_i64(uint8_t *record, uint32_t offset, int64_t value)
{
	memcpy(record + offset, &value, sizeof(value));
}

static inline int64_t nexmark_get_i64(const uint8_t *record, uint32_t offset)
{
	int64_t value;
	memcpy(&value, record + offset, sizeof(value));
	return value;
}

/* CLOCK_MONOTONIC in ns. */
int64_t nexmark_now_ns(void);
/* splitmix64: the next number of @state's stream, and one below @bound. */
uint64_t nexmark_random(uint64_t *state);
uint64_t nexmark_below(uint64_t *state, uint64_t bound);

/* Event time of stream event @n, in ms. */
int64_t nexmark_time_ms(uint64_t n);
/* The stream event number of bid @b (0-based among bids). */
uint64_t nexmark_bid_event(uint64_t b);
/* Bid number @b of the bid stream, whole, or only its auction and bidder (cheaper). */
void nexmark_make_bid(uint64_t b, struct nexmark_bid *bid);
void nexmark_bid_keys(uint64_t b, int64_t *auction, int64_t *bidder);

/* The stream event number of the @m-th event that is a person or an auction (0-based). */
uint64_t nexmark_seller_event(uint64_t m);
bool nexmark_is_person(uint64_t n);
/* The id of person event @n; the id and seller of auction event @n. */
int64_t nexmark_person_id(uint64_t n);
void nexmark_make_auction(uint64_t n, int64_t *id, int64_t *seller);

/* Fills @layout from NEXMARK_BID_SCHEMA.  Returns: 0 or -errno (said on stderr). */
int nexmark_bid_layout_init(struct nexmark_bid_layout *layout);
/* weir_fill_fn (ctx: a struct nexmark_bid_layout): bids @first, @first + @step, ... */
void nexmark_fill_bids(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		       uint32_t record_length);

/* Makes an empty temporary file (under $TMPDIR, else /tmp) and puts its path in @path.
 * Returns: 0 or -errno (said on stderr). */
int nexmark_temp_file(char *path, size_t capacity);
/* @length bytes of anonymous memory for pre-generated records, and back.  Returns: 0 or
 * -ENOMEM (said on stderr). */
int nexmark_records_map(uint8_t **records, size_t length);
void nexmark_records_unmap(uint8_t *records, size_t length);

#endif
