/* DPDK ports as a packet source (weir_job_source_dpdk).
 *
 * The EAL starts once per process, from weir's own option string.  The port is configured by
 * the first worker that opens a partition: one RX queue per worker when the port does RSS,
 * with a symmetric Toeplitz key so both directions of a flow hash to the same queue;
 * otherwise one queue, read by worker 0, and the key_by spreads the events.  Each worker then
 * sets up its own queue with descriptors and mbufs from a mempool of its own NUMA socket (one
 * pool per socket), and the last one starts the port; the others wait for that (startup
 * only, bounded).  Each worker reads up to 16 bursts of 32 per pull, parses each burst in
 * place and frees its mbufs at once: no mbuf ever crosses a ring.  Event time: net_pcap
 * stamps every mbuf with the capture's timestamp (in microseconds, in the mbuf timestamp
 * field, whether or not the offload is asked for; not in its infinite_rx replay, whose
 * copies carry no stamp); frames without a stamp, and every frame of other ports, get the
 * wall-clock time of their burst, because a NIC's hardware timestamps count in its own clock
 * and would need a clock conversion first. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* DPDK's headers test GCC_VERSION, which clang leaves undefined: -Wundef would reject them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#pragma GCC diagnostic pop

#include "core/assert.h"
#include "core/job.h"
#include "core/mem.h"
#include "io/packet_event.h"

#define DPDK_BURST 32u
#define DPDK_BURSTS_PER_PULL 16u /* at most this many bursts in one pull */
#define DPDK_RX_DESCRIPTORS 1024u
/* net_pcap with infinite_rx holds the whole capture in the pool: room for 32k frames. */
#define DPDK_MBUFS_PER_QUEUE 32767u
#define DPDK_ARGUMENTS_MAX 64u
#define DPDK_START_WAIT_MS 10000u

struct dpdk_source {
	uint16_t port;
	uint64_t idle_stop_ns;
	struct weir_schema schema;
	pthread_mutex_t lock; /* startup only: the first opener configures the port */
	bool configured;
	bool started;
	int configure_error;
	char error[256];
	uint16_t queue_count;
	uint16_t queues_ready;
	struct rte_mempool *pools[RTE_MAX_NUMA_NODES]; /* by socket */
	int timestamp_offset;	 /* mbuf dynfield holding microseconds (net_pcap), or -1 */
	uint64_t timestamp_flag; /* ol_flags bit saying the field is set */
	struct weir_packet_counters totals;
	uint64_t received;
};

struct dpdk_partition {
	struct dpdk_source *source;
	int queue; /* -1: this partition has no queue and ends at once */
	uint64_t last_packet_ns;
	struct weir_packet_counters counters;
	unsigned arena;
};

static pthread_mutex_t eal_lock = PTHREAD_MUTEX_INITIALIZER;
static bool eal_ready;

/* Splits @text at blanks into @argv (argv[0] = "weir"); adds -l 0 and a per-process file
 * prefix unless given, so DPDK takes one lcore and parallel runs never share files. */
static int split_arguments(char *text, char **argv, char *prefix, size_t prefix_length)
{
	int argc = 0;
	argv[argc++] = "weir";
	bool has_cores = false, has_prefix = false;
	for (char *save = NULL, *word = strtok_r(text, " \t\n", &save); word != NULL;
	     word = strtok_r(NULL, " \t\n", &save)) {
		if (argc >= (int)DPDK_ARGUMENTS_MAX - 4)
			return -E2BIG;
		has_cores |= strcmp(word, "-l") == 0 || strcmp(word, "-c") == 0 ||
			     strncmp(word, "--lcores", 8) == 0;
		has_prefix |= strncmp(word, "--file-prefix", 13) == 0;
		argv[argc++] = word;
	}
	if (!has_cores) {
		argv[argc++] = "-l";
		argv[argc++] = "0";
	}
	if (!has_prefix) {
		snprintf(prefix, prefix_length, "--file-prefix=weir%ld", (long)getpid());
		argv[argc++] = prefix;
	}
	argv[argc] = NULL;
	return argc;
}

static int eal_start(const char *arguments, char *error, size_t error_length)
{
	pthread_mutex_lock(&eal_lock);
	int rc = 0;
	if (!eal_ready) {
		char text[2048], prefix[64];
		char *argv[DPDK_ARGUMENTS_MAX];
		snprintf(text, sizeof(text), "%s", arguments);
		int argc = split_arguments(text, argv, prefix, sizeof(prefix));
		/* DPDK logs to stdout by default, where our rows go. */
		rte_openlog_stream(stderr);
		cpu_set_t affinity;
		pthread_getaffinity_np(pthread_self(), sizeof(affinity), &affinity);
		if (argc < 0 || rte_eal_init(argc, argv) < 0) {
			rc = argc < 0 ? argc : -rte_errno;
			snprintf(error, error_length, "DPDK EAL did not start with '%s': %s",
				 arguments,
				 argc < 0 ? "too many arguments" : rte_strerror(rte_errno));
		} else {
			/* The EAL pins this thread to its main lcore; the main thread is ours. */
			pthread_setaffinity_np(pthread_self(), sizeof(affinity), &affinity);
			eal_ready = true;
		}
	}
	pthread_mutex_unlock(&eal_lock);
	return rc;
}

static int port_fail(struct dpdk_source *source, int rc, const char *what)
{
	snprintf(source->error, sizeof(source->error), "DPDK port %u: %s: %s", source->port,
		 what, rte_strerror(-rc));
	source->configure_error = rc;
	return rc;
}

/* Configures and starts the port with one queue per worker where RSS allows.  Called once,
 * under source->lock, by the first partition to open. */
static int port_configure(struct dpdk_source *source, uint32_t worker_count)
{
	struct rte_eth_dev_info info;
	int rc = rte_eth_dev_info_get(source->port, &info);
	if (rc != 0)
		return port_fail(source, rc, "no such port (see --port, and --vdev or -a)");
	static uint8_t symmetric_key[40];
	for (size_t i = 0; i < sizeof(symmetric_key); i += 2) {
		symmetric_key[i] = 0x6d;
		symmetric_key[i + 1] = 0x5a;
	}
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	uint64_t rss = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
		       info.flow_type_rss_offloads;
	uint32_t queues = worker_count < info.max_rx_queues ? worker_count : info.max_rx_queues;
	if (rss == 0 || queues == 0)
		queues = 1;
	if (queues > 1) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = symmetric_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(symmetric_key);
		conf.rx_adv_conf.rss_conf.rss_hf = rss;
	}
	source->timestamp_offset = -1;
	if (strcmp(info.driver_name, "net_pcap") == 0) {
		int flag = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
		source->timestamp_offset =
			rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
		source->timestamp_flag = flag >= 0 ? UINT64_C(1) << flag : 0;
		if (flag < 0)
			source->timestamp_offset = -1;
	}
	/* weir never sends, but some drivers (net_tap) want as many TX queues as RX queues. */
	uint32_t tx_queues = queues <= info.max_tx_queues ? queues : 1;
	rc = rte_eth_dev_configure(source->port, (uint16_t)queues, (uint16_t)tx_queues, &conf);
	if (rc != 0)
		return port_fail(source, rc, "configure");
	int socket = rte_eth_dev_socket_id(source->port);
	for (uint32_t q = 0; q < tx_queues && rc == 0; q++)
		rc = rte_eth_tx_queue_setup(source->port, (uint16_t)q, 256,
					    socket < 0 ? 0u : (unsigned)socket, NULL);
	if (rc != 0)
		return port_fail(source, rc, "TX queue");
	source->queue_count = (uint16_t)queues;
	source->configured = true;
	return 0;
}

/* Sets up RX queue @queue on the calling worker's socket; the last queue starts the port.
 * Called under source->lock. */
static int queue_setup(struct dpdk_source *source, uint16_t queue)
{
	int socket = (int)rte_socket_id(); /* the registered, pinned worker's socket */
	if (socket < 0 || socket >= RTE_MAX_NUMA_NODES)
		socket = rte_eth_dev_socket_id(source->port);
	if (socket < 0 || socket >= RTE_MAX_NUMA_NODES)
		socket = 0;
	if (source->pools[socket] == NULL) {
		char name[32];
		snprintf(name, sizeof(name), "weir_rx_%u_%d", source->port, socket);
		source->pools[socket] = rte_pktmbuf_pool_create(
			name, DPDK_MBUFS_PER_QUEUE * source->queue_count, 256, 0,
			RTE_MBUF_DEFAULT_BUF_SIZE, socket);
		if (source->pools[socket] == NULL)
			return port_fail(source, -rte_errno, "mbuf pool");
	}
	int rc = rte_eth_rx_queue_setup(source->port, queue, DPDK_RX_DESCRIPTORS,
					(unsigned)socket, NULL, source->pools[socket]);
	if (rc != 0)
		return port_fail(source, rc, "RX queue");
	if (++source->queues_ready < source->queue_count)
		return 0;
	rc = rte_eth_dev_start(source->port);
	if (rc != 0)
		return port_fail(source, rc, "start");
	rte_eth_promiscuous_enable(source->port); /* a monitor sees every frame; may be refused */
	source->started = true;
	return 0;
}

/* Startup only: waits (bounded) until the worker with the last queue started the port. */
static int wait_started(struct dpdk_source *source)
{
	for (uint32_t waited_ms = 0;; waited_ms++) {
		pthread_mutex_lock(&source->lock);
		bool started = source->started;
		int rc = source->configure_error;
		pthread_mutex_unlock(&source->lock);
		if (rc != 0 || started)
			return rc;
		if (waited_ms == DPDK_START_WAIT_MS)
			return -ETIMEDOUT; /* a peer never opened its queue: it failed */
		struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
		nanosleep(&pause, NULL);
	}
}

static uint64_t realtime_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static int dpdk_open(void *ctx, uint32_t partition, uint32_t partition_count, unsigned arena,
		     void **partition_out)
{
	struct dpdk_source *source = ctx;
	/* A registered thread gets an lcore id, and with it the mempool's per-lcore cache. */
	rte_thread_register();
	pthread_mutex_lock(&source->lock);
	int rc = source->configure_error;
	if (rc == 0 && !source->configured)
		rc = port_configure(source, partition_count);
	bool has_queue = rc == 0 && partition < source->queue_count;
	if (has_queue)
		rc = queue_setup(source, (uint16_t)partition);
	pthread_mutex_unlock(&source->lock);
	if (rc == 0 && has_queue)
		rc = wait_started(source);
	if (rc != 0)
		return rc;
	struct dpdk_partition *part = weir_mem_alloc(sizeof(*part), WEIR_CACHE_LINE, arena);
	if (part == NULL)
		return -ENOMEM;
	part->source = source;
	part->arena = arena;
	part->queue = partition < source->queue_count ? (int)partition : -1;
	part->last_packet_ns = weir_clock_ns();
	*partition_out = part;
	return 0;
}

/* Parses the @got frames of one burst into events at @records, then frees the mbufs in
 * bulk.  Returns: the events written (frames without hosts are only counted). */
static uint32_t dpdk_parse_burst(struct dpdk_partition *part, struct rte_mbuf **mbufs,
				 uint16_t got, uint8_t *records)
{
	const struct dpdk_source *source = part->source;
	const uint32_t length = source->schema.record_length;
	/* Event time is the frame's capture stamp where the port gave one, else the time it
	 * was received: read once per burst, and on a stamping port only once a frame without
	 * a stamp shows up (net_pcap's infinite_rx replay copies data but not stamps). */
	const bool stamped = source->timestamp_offset >= 0;
	uint64_t burst_ns = stamped ? 0 : realtime_ns();
	uint32_t count = 0;
	WEIR_ASSERT(got <= DPDK_BURST);
	for (uint16_t i = 0; i < got; i++) {
		struct rte_mbuf *mbuf = mbufs[i];
		uint64_t timestamp;
		if (stamped && (mbuf->ol_flags & source->timestamp_flag)) {
			timestamp = 1000u * *RTE_MBUF_DYNFIELD(mbuf, source->timestamp_offset,
							       rte_mbuf_timestamp_t *);
		} else {
			if (burst_ns == 0)
				burst_ns = realtime_ns();
			timestamp = burst_ns;
		}
		/* Only the first segment is parsed: headers never span segments. */
		count += weir_packet_to_event(rte_pktmbuf_mtod(mbuf, uint8_t *),
					      rte_pktmbuf_data_len(mbuf), rte_pktmbuf_pkt_len(mbuf),
					      (int64_t)timestamp, WEIR_LINK_ETHERNET,
					      &part->counters, records + (size_t)count * length);
	}
	rte_pktmbuf_free_bulk(mbufs, got);
	WEIR_ASSERT(count <= got);
	return count;
}

/* Reads up to DPDK_BURSTS_PER_PULL bursts while the queue gives full ones: one pull then
 * carries several bursts through the worker's turn (stages, routing, its clock reads),
 * whose cost per pull would otherwise be paid every 32 frames.  A short burst means the
 * queue is drained, so the pull ends there rather than spin. */
static uint32_t dpdk_pull(void *partition, uint8_t *records, uint32_t capacity,
			  struct weir_pull_status *status)
{
	struct dpdk_partition *part = partition;
	const struct dpdk_source *source = part->source;
	if (part->queue < 0 || weir_stop_requested()) {
		status->ended = true;
		return 0;
	}
	const uint32_t length = source->schema.record_length;
	uint32_t count = 0, consumed = 0;
	for (uint32_t burst = 0; burst < DPDK_BURSTS_PER_PULL && count < capacity; burst++) {
		struct rte_mbuf *mbufs[DPDK_BURST];
		uint32_t room = capacity - count;
		uint16_t want = (uint16_t)(room < DPDK_BURST ? room : DPDK_BURST);
		uint16_t got = rte_eth_rx_burst(source->port, (uint16_t)part->queue, mbufs, want);
		if (got > 0)
			count += dpdk_parse_burst(part, mbufs, got,
						  records + (size_t)count * length);
		consumed += got;
		if (got < want)
			break;
	}
	WEIR_ASSERT(count <= capacity);
	if (consumed == 0) {
		status->ended = source->idle_stop_ns > 0 &&
				weir_clock_ns() - part->last_packet_ns >= source->idle_stop_ns;
		return 0;
	}
	part->last_packet_ns = weir_clock_ns();
	status->consumed = consumed;
	return count;
}

static void dpdk_close(void *ctx, void *partition)
{
	struct dpdk_source *source = ctx;
	struct dpdk_partition *part = partition;
	weir_packet_counters_add(&source->totals, &part->counters);
	weir_mem_free(part, part->arena);
}

static const struct weir_source_vtable dpdk_vtable = {
	.open = dpdk_open,
	.pull = dpdk_pull,
	.close = dpdk_close,
};

static void dpdk_report(void *ctx, FILE *stream)
{
	struct dpdk_source *source = ctx;
	char what[64];
	snprintf(what, sizeof(what), "DPDK port %u (%u RX queue%s)", source->port,
		 source->queue_count, source->queue_count == 1 ? "" : "s");
	weir_packet_counters_report(&source->totals, what, stream);
	if (source->error[0] != '\0')
		fprintf(stream, "weir: %s\n", source->error);
	if (source->idle_stop_ns > 0)
		fprintf(stream,
			"weir: DPDK port %u: the input ended after %llu ms without a packet "
			"(--idle-stop); that wait counts in the run time below\n",
			source->port, (unsigned long long)(source->idle_stop_ns / 1000000u));
	struct rte_eth_stats stats;
	if (source->started && rte_eth_stats_get(source->port, &stats) == 0)
		fprintf(stream,
			"weir: DPDK port %u: %llu received by the port, %llu missed (no free "
			"descriptor), %llu receive errors, %llu without an mbuf\n",
			source->port, (unsigned long long)stats.ipackets,
			(unsigned long long)stats.imissed, (unsigned long long)stats.ierrors,
			(unsigned long long)stats.rx_nombuf);
}

static void dpdk_add_stats(void *ctx, struct weir_job_stats *stats)
{
	const struct dpdk_source *source = ctx;
	for (uint32_t r = WEIR_PACKET_NOT_IP + 1; r < WEIR_PACKET_REASON_COUNT; r++)
		stats->input_skipped += source->totals.by_reason[r];
}

static void dpdk_destroy(void *ctx)
{
	struct dpdk_source *source = ctx;
	if (source->started)
		rte_eth_dev_stop(source->port);
	if (source->configured)
		rte_eth_dev_close(source->port);
	for (int socket = 0; socket < RTE_MAX_NUMA_NODES; socket++)
		rte_mempool_free(source->pools[socket]);
	pthread_mutex_destroy(&source->lock);
	weir_mem_free(source, WEIR_MEM_ARENA_DEFAULT);
}

int weir_job_source_dpdk(struct weir_job *job, const char *eal_arguments, uint16_t port,
			 uint64_t idle_stop_ms)
{
	WEIR_VERIFY(job != NULL && eal_arguments != NULL);
	char message[512];
	int rc = eal_start(eal_arguments, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "%s", message);
	if (!rte_eth_dev_is_valid_port(port))
		return weir_job_fail(job, -ENODEV,
				     "DPDK port %u does not exist (%u ports; add one with "
				     "--vdev or -a in the EAL arguments)",
				     port, rte_eth_dev_count_avail());
	struct dpdk_source *source = weir_mem_alloc(sizeof(*source), WEIR_CACHE_LINE,
						    WEIR_MEM_ARENA_DEFAULT);
	if (source == NULL)
		return weir_job_fail(job, -ENOMEM, "dpdk: out of memory");
	source->port = port;
	source->idle_stop_ns = idle_stop_ms * 1000000u;
	pthread_mutex_init(&source->lock, NULL);
	rc = weir_schema_parse(&source->schema, WEIR_PACKET_SCHEMA, message, sizeof(message));
	WEIR_VERIFY(rc == 0);
	WEIR_VERIFY(weir_packet_schema_is_native(&source->schema));
	struct weir_source as_source = {
		.vtable = &dpdk_vtable, .ctx = source, .schema = &source->schema};
	struct weir_component component = {
		.ctx = source,
		.destroy = dpdk_destroy,
		.report = dpdk_report,
		.add_stats = dpdk_add_stats,
	};
	return weir_job_attach_source(job, as_source, component);
}

