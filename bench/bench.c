/* Goal: `weir bench` says how fast a whole weir job runs, per worker, next to a reference
 * program doing the least work of the same kind on the same input, measured in the same run so
 * that the machine's state (frequency, noise, page cache) is shared by both.
 *
 * Method: a registry of workloads (bench_workloads[]).  Each names how to prepare its input
 * once, how to run the engine once (in a child process: DPDK's EAL starts once per process
 * and a DPDK port cannot be reopened after a job closes it, so the bench re-executes itself as
 * `/proc/self/exe bench --engine-once NAME ...` and reads one JSON line from the child's
 * stdout), and how to run its baseline once (NULL: none).  For each workload and worker count
 * we run one warm-up of each, then --reps pairs interleaved (engine, baseline, engine, ...),
 * and report medians with min and max.  The ratio compares the engine's rate per worker with
 * the baseline's rate per core; its median, min and max are over the pairs (engine run i with
 * baseline run i), so drift during the run hits both sides of each ratio alike.
 *
 * Workloads:
 *   flows  DPDK net_pcap (infinite_rx) -> parse -> conversation aggregates in 1 s windows ->
 *          /dev/null, against dpdk-testpmd --forward-mode=rxonly on the same vdev, which
 *          receives and frees each frame on one forwarding core (lcore 1).  Engine rate:
 *          stats.events_in / stats.seconds (the job's wall time, port start included);
 *          frames without IP hosts (ARP, PPPoE: 0.25% of gen_pcap's captures) are not events,
 *          so the engine's rate is that much under its frame rate.  Baseline rate: testpmd's
 *          cumulative port counter (RX-packets of its periodic NIC statistics), taken at its
 *          first and last printout and divided by the time between them as we read them;
 *          testpmd flushes each printout, and this skips its EAL start (about 2 s with
 *          --no-huge) without depending on its print period.
 *
 *   ysb    the Yahoo Streaming Benchmark, engine-only (bench/ysb.c): ad events in memory ->
 *          filter views -> join ad -> campaign -> count per campaign per 10 s tumbling
 *          window, against a fused single-threaded C loop over the same events.  The engine
 *          runs to the end of --events events (--seconds does not apply); each pair's
 *          per-(window, campaign) counts must have equal digests, else the bench fails.
 *          Both rates are events / seconds with the events' generation excluded.  The header
 *          also gives the memory-bandwidth ceiling for YSB's 78-byte records.
 *   nexmark-q0, -q1, -q2, -q5, -q7, -q8, shuffle-tax, checkpoint  in-memory or generated
 *          jobs whose engine runs to the end of --events events, described in
 *          bench/nexmark.c, bench/nexmark_windowed.c, bench/shuffle.c and bench/checkpoint.c;
 *          their entries come from bench/workloads.h.  A workload with a published
 *          reference rate (q5/q7/q8: Flink's per core) also reports weir per worker over it.
 *
 * Captures: net_pcap's infinite_rx keeps every frame of the file in mbufs of the port's pool;
 * weir's DPDK source gives a queue 32767 mbufs, so the bench replays at most --max-frames
 * (default 24000) frames of the capture: a longer pcap is cut to its first frames in a
 * temporary directory, and both programs replay that copy.
 *
 * Usage: weir bench [--list] [--json] [--reps N] [--seconds S] [--workers N[,N...]]
 *                   [--capture FILE] [--max-frames N] [--events N] [WORKLOAD...]
 * Environment: WEIR_SOURCE_ROOT (where tools/gen_pcap.py is; default the current directory),
 * WEIR_TESTPMD (the testpmd program; default dpdk-testpmd on PATH).
 * Exit: 0; 1 a run failed; 2 bad usage.  A missing baseline program is not a failure: the
 * engine is reported alone, with a null ratio. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/workloads.h"
#include "weir/weir.h"

extern char **environ;

#define BENCH_REPS_MAX 100u
#define BENCH_LINE_MAX 1024u
/* How long a child may take beyond its --seconds before we kill it: EAL start, port start,
 * windows firing at the end. */
#define BENCH_GRACE_NS (INT64_C(60) * 1000000000)
#define BENCH_PCAP_RECORD_MAX (256u * 1024u)
#define NS_PER_S 1e9
/* "Both outcomes are expected" (STYLE.md §5), without core/assert.h: bench/ embeds weir.h. */
#define WEIR_BENCH_MAYBE(condition) ((void)(condition))

/* ---- time, processes, lines ---- */

static int64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Starts @argv (argv[0] a path, or a name to find on PATH) with stdin from /dev/null, stdout
 * to a pipe whose read end goes to *stdout_fd and stderr to @stderr_path (NULL: ours).
 * Returns: 0 or -errno. */
static int spawn_child(char *const argv[], const char *stderr_path, pid_t *pid_out,
		       int *stdout_fd)
{
	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) != 0)
		return -errno;
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
	if (stderr_path != NULL)
		posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path,
						 O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = posix_spawnp(pid_out, argv[0], &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	close(pipe_fds[1]);
	if (rc != 0) {
		close(pipe_fds[0]);
		return -rc;
	}
	*stdout_fd = pipe_fds[0];
	return 0;
}

/* Waits for @pid until @deadline_ns, then kills it.  Returns: its wait status, or -1 if we
 * had to kill it. */
static int wait_child(pid_t pid, int64_t deadline_ns)
{
	for (;;) {
		int status = 0;
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			return status;
		if (done < 0 && errno != EINTR)
			return -1;
		if (monotonic_ns() >= deadline_ns) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
}

struct line_reader {
	int fd;
	size_t used;
	char buffer[4096];
};

/* Reads the next line of @reader into @line (without its newline; an over-long line is cut).
 * Returns: 1 a line, 0 end of file, -ETIMEDOUT at @deadline_ns, or -errno. */
static int read_line(struct line_reader *reader, char *line, size_t capacity,
		     int64_t deadline_ns)
{
	for (;;) {
		char *newline = memchr(reader->buffer, '\n', reader->used);
		if (newline != NULL || reader->used == sizeof(reader->buffer)) {
			size_t length = newline != NULL ? (size_t)(newline - reader->buffer)
							: reader->used;
			size_t copied = length < capacity - 1 ? length : capacity - 1;
			memcpy(line, reader->buffer, copied);
			line[copied] = '\0';
			size_t consumed = newline != NULL ? length + 1 : length;
			memmove(reader->buffer, reader->buffer + consumed, reader->used - consumed);
			reader->used -= consumed;
			return 1;
		}
		int64_t left_ms = (deadline_ns - monotonic_ns()) / 1000000;
		if (left_ms <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = reader->fd, .events = POLLIN};
		int ready = poll(&pfd, 1, left_ms > 1000 ? 1000 : (int)left_ms);
		if (ready < 0 && errno != EINTR)
			return -errno;
		if (ready <= 0)
			continue;
		ssize_t got = read(reader->fd, reader->buffer + reader->used,
				   sizeof(reader->buffer) - reader->used);
		if (got < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (got == 0)
			return 0; /* a last line without a newline is dropped: ours end in one */
		if (got > 0)
			reader->used += (size_t)got;
	}
}

/* Copies the file at @path to our stderr (a failed child's diagnostics). */
static void dump_file(const char *path, const char *what)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return;
	char line[BENCH_LINE_MAX];
	fprintf(stderr, "weir bench: %s said:\n", what);
	while (fgets(line, sizeof(line), file) != NULL)
		fprintf(stderr, "  %s", line);
	fclose(file);
}

/* Where the value of "key": starts in a flat JSON line, or NULL. */
static const char *json_value(const char *line, const char *key)
{
	char pattern[64];
	snprintf(pattern, sizeof(pattern), "\"%s\":", key);
	const char *at = strstr(line, pattern);
	return at != NULL ? at + strlen(pattern) : NULL;
}

/* A number after "key": in a flat JSON line.  Returns: 0 or -ENOENT. */
static int json_number(const char *line, const char *key, double *value)
{
	const char *at = json_value(line, key);
	if (at == NULL)
		return -ENOENT;
	char *end = NULL;
	*value = strtod(at, &end);
	return end == at ? -ENOENT : 0;
}

int bench_json_integer(const char *line, const char *key, int64_t *value)
{
	const char *at = json_value(line, key);
	if (at == NULL)
		return -EPROTO;
	char *end = NULL;
	errno = 0;
	*value = strtoll(at, &end, 10);
	return errno != 0 || end == at ? -EPROTO : 0;
}

int bench_job_create(struct weir_job **job_out, const struct weir_job_options *options,
		     const char *what)
{
	int rc = weir_job_create(job_out, options);
	if (rc != 0)
		fprintf(stderr, "weir bench: %s: bad job options (workers <= 256)\n", what);
	return rc;
}

/* "digest":"HEX" and "digest_total":N of an engine child's line into @sample.
 * Returns: 0 or -ENOENT (the workload reports no digest). */
static int json_digest(const char *line, struct bench_sample *sample)
{
	static const char key[] = "\"digest\":\"";
	const char *at = strstr(line, key);
	double total = 0;
	if (at == NULL || json_number(line, "digest_total", &total) != 0)
		return -ENOENT;
	char *end = NULL;
	errno = 0;
	sample->digest = strtoull(at + strlen(key), &end, 16);
	sample->digest_total = (uint64_t)total;
	return errno != 0 || end == at + strlen(key) || *end != '"' ? -ENOENT : 0;
}

/* ---- the engine child ---- */

struct bench_timer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool cancelled;
	double seconds;
};

/* Calls weir_stop() after timer->seconds unless cancelled first. */
static void *timer_main(void *arg)
{
	struct bench_timer *timer = arg;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	int64_t ns = (int64_t)(timer->seconds * NS_PER_S) + until.tv_nsec;
	until.tv_sec += (time_t)(ns / 1000000000);
	until.tv_nsec = (long)(ns % 1000000000);
	pthread_mutex_lock(&timer->lock);
	int rc = 0;
	while (!timer->cancelled && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&timer->wake, &timer->lock, &until);
	bool fire = !timer->cancelled;
	pthread_mutex_unlock(&timer->lock);
	if (fire)
		weir_stop();
	return NULL;
}

/* Runs @job with a timer thread that stops it after @seconds.  Returns: weir_job_run's. */
static int run_timed(struct weir_job *job, double seconds)
{
	struct bench_timer timer = {.seconds = seconds};
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&timer.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&timer.lock, NULL);
	pthread_t thread;
	int rc = pthread_create(&thread, NULL, timer_main, &timer);
	if (rc == 0) {
		rc = weir_job_run(job);
		pthread_mutex_lock(&timer.lock);
		timer.cancelled = true;
		pthread_cond_signal(&timer.wake);
		pthread_mutex_unlock(&timer.lock);
		pthread_join(thread, NULL);
	} else {
		rc = -rc;
	}
	pthread_cond_destroy(&timer.wake);
	pthread_mutex_destroy(&timer.lock);
	return rc;
}

/* Runs the job, fills @out and reports a failure (with the job's report) on stderr. */
static int run_job(struct weir_job *job, double seconds, struct bench_sample *out)
{
	int rc = run_timed(job, seconds);
	struct weir_job_stats stats;
	weir_job_get_stats(job, &stats);
	if (rc != 0 || stats.events_in == 0) {
		fprintf(stderr, "weir bench: engine: %s\n",
			rc != 0 ? weir_job_error(job) : "no events");
		weir_job_report(job, stderr);
		return rc != 0 ? rc : -ENODATA;
	}
	out->events = stats.events_in;
	out->seconds = stats.seconds;
	return 0;
}

/* ---- the flows workload ---- */

/* Writes the first @length bytes of @in to @path.  Returns: 1, or -errno. */
static int copy_prefix(FILE *in, long length, const char *path)
{
	FILE *out = fopen(path, "wb");
	if (out == NULL)
		return -errno;
	rewind(in);
	static char buffer[64 * 1024];
	long left = length;
	int rc = 1;
	while (left > 0 && rc == 1) {
		size_t want = left < (long)sizeof(buffer) ? (size_t)left : sizeof(buffer);
		size_t got = fread(buffer, 1, want, in);
		if (got == 0 || fwrite(buffer, 1, got, out) != got)
			rc = -EIO;
		left -= (long)got;
	}
	if (fclose(out) != 0 && rc == 1)
		rc = -EIO;
	return rc;
}

/* The pcap's record count, and a copy of its first @max_frames records at @copy_path if it
 * has more.  Returns: 1 copied, 0 the file is fine as it is (*frames = -1: not a classic pcap,
 * e.g. pcapng, not counted), or -errno. */
static int pcap_prefix(const char *path, uint32_t max_frames, const char *copy_path,
		       int64_t *frames)
{
	FILE *in = fopen(path, "rb");
	if (in == NULL)
		return -errno;
	uint8_t header[24], record[16];
	*frames = -1;
	int rc = 0;
	if (fread(header, 1, sizeof(header), in) != sizeof(header))
		goto out_close;
	uint32_t magic = (uint32_t)header[0] | (uint32_t)header[1] << 8 |
			 (uint32_t)header[2] << 16 | (uint32_t)header[3] << 24;
	bool little = magic == 0xa1b2c3d4u || magic == 0xa1b23c4du;
	if (!little && magic != 0xd4c3b2a1u && magic != 0x4d3cb2a1u)
		goto out_close;
	int64_t count = 0;
	long cut_at = -1;
	while (fread(record, 1, sizeof(record), in) == sizeof(record)) {
		const uint8_t *c = record + 8; /* captured length */
		uint32_t length = little ? (uint32_t)c[0] | (uint32_t)c[1] << 8 |
						   (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24
					 : (uint32_t)c[3] | (uint32_t)c[2] << 8 |
						   (uint32_t)c[1] << 16 | (uint32_t)c[0] << 24;
		if (length > BENCH_PCAP_RECORD_MAX || fseek(in, (long)length, SEEK_CUR) != 0)
			break; /* a damaged tail: replay what precedes it */
		if (++count == (int64_t)max_frames)
			cut_at = ftell(in);
	}
	*frames = count;
	if (count > (int64_t)max_frames)
		rc = 1;
out_close:
	if (rc == 1)
		rc = copy_prefix(in, cut_at, copy_path);
	fclose(in);
	return rc;
}

static int make_temp_dir(struct bench_env *env)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(env->temp_dir, sizeof(env->temp_dir), "%s/weirbench.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(env->temp_dir) == NULL) {
		int rc = -errno;
		fprintf(stderr, "weir bench: temporary directory %s: %s\n", env->temp_dir,
			strerror(errno));
		env->temp_dir[0] = '\0';
		return rc;
	}
	return 0;
}

/* The files the bench may leave in its temporary directory. */
static const char *const temp_names[] = {
	"generated.pcap", "capture.pcap", "engine.err", "testpmd.err", "gen_pcap.err",
	"ysb-rows.jsonl",
};

static void temp_path(const struct bench_env *env, const char *name, char *path,
		      size_t capacity)
{
	snprintf(path, capacity, "%s/%s", env->temp_dir, name);
}

static void remove_temp_dir(struct bench_env *env)
{
	if (env->temp_dir[0] == '\0')
		return;
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof(temp_names) / sizeof(temp_names[0]); i++) {
		temp_path(env, temp_names[i], path, sizeof(path));
		unlink(path);
	}
	rmdir(env->temp_dir);
	env->temp_dir[0] = '\0';
}

/* Runs @argv to its end (or kills it at @deadline_ns), keeping its last stdout line that
 * starts with '{' in @json ("" if none).  Returns: 0 it exited with 0, else -1. */
static int run_collect(char *const argv[], const char *stderr_path, int64_t deadline_ns,
		       char *json, size_t capacity)
{
	pid_t pid;
	struct line_reader reader = {.used = 0};
	json[0] = '\0';
	if (spawn_child(argv, stderr_path, &pid, &reader.fd) != 0)
		return -1;
	char line[BENCH_LINE_MAX];
	int rc;
	while ((rc = read_line(&reader, line, sizeof(line), deadline_ns)) == 1) {
		if (line[0] == '{')
			snprintf(json, capacity, "%s", line);
	}
	close(reader.fd);
	int status = wait_child(pid, rc == 0 ? deadline_ns : 0);
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Writes a capture with tools/gen_pcap.py (found under WEIR_SOURCE_ROOT, else ./). */
static int generate_capture(struct bench_env *env, const char *path)
{
	const char *root = getenv("WEIR_SOURCE_ROOT");
	char script[PATH_MAX], err_path[PATH_MAX], json[8];
	snprintf(script, sizeof(script), "%s/tools/gen_pcap.py", root != NULL ? root : ".");
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "weir bench: flows: no --capture, no data/sample.pcap, and no %s "
				"to make one (set WEIR_SOURCE_ROOT to weir's source tree)\n",
			script);
		return -ENOENT;
	}
	char *argv[] = {"python3", script, "--out", (char *)path, "--seed", "1",
			"--packets", "20000", "--quiet", NULL};
	temp_path(env, "gen_pcap.err", err_path, sizeof(err_path));
	fprintf(stderr, "weir bench: flows: generating a capture with %s\n", script);
	if (run_collect(argv, err_path, monotonic_ns() + 2 * BENCH_GRACE_NS, json,
			sizeof(json)) != 0) {
		dump_file(err_path, script);
		fprintf(stderr, "weir bench: flows: %s failed\n", script);
		return -EIO;
	}
	return 0;
}

/* @name found on PATH, or @override (an environment variable's value) if set. */
static void find_program(const char *name, const char *override, char *path,
			 size_t capacity)
{
	path[0] = '\0';
	if (override != NULL && override[0] != '\0') {
		if (access(override, X_OK) == 0)
			snprintf(path, capacity, "%s", override);
		return;
	}
	const char *search = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", search != NULL ? search : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		char candidate[PATH_MAX + 64];
		snprintf(candidate, sizeof(candidate), "%s/%s", dir, name);
		if (access(candidate, X_OK) == 0) {
			if (snprintf(path, capacity, "%s", candidate) >= (int)capacity)
				path[0] = '\0';
			return;
		}
	}
}

/* The capture to replay: --capture, data/sample.pcap, or a generated one; cut to
 * --max-frames frames if longer (see the top of this file). */
static int flows_input(struct bench_env *env)
{
	const struct bench_options *options = env->options;
	char source[PATH_MAX], cut[PATH_MAX];
	const char *origin = "";
	if (options->capture != NULL) {
		snprintf(source, sizeof(source), "%s", options->capture);
	} else if (access("data/sample.pcap", R_OK) == 0) {
		snprintf(source, sizeof(source), "data/sample.pcap");
	} else {
		temp_path(env, "generated.pcap", source, sizeof(source));
		origin = "gen_pcap.py --seed 1 --packets 20000: ";
		int rc = generate_capture(env, source);
		if (rc != 0)
			return rc;
	}
	temp_path(env, "capture.pcap", cut, sizeof(cut));
	int rc = pcap_prefix(source, options->max_frames, cut, &env->frames);
	if (rc < 0) {
		fprintf(stderr, "weir bench: flows: %s: %s\n", source, strerror(-rc));
		return rc;
	}
	int written = rc == 1 ? snprintf(env->note, sizeof(env->note),
					 "%sfirst %u of %lld frames of %s", origin,
					 options->max_frames, (long long)env->frames, source)
			      : snprintf(env->note, sizeof(env->note), "%s%s, %lld frames", origin,
					 source, (long long)env->frames);
	WEIR_BENCH_MAYBE(written >= (int)sizeof(env->note)); /* a long note is cut: harmless */
	if (rc == 1)
		env->frames = options->max_frames;
	written = snprintf(env->input, sizeof(env->input), "%s", rc == 1 ? cut : source);
	return written < (int)sizeof(env->input) ? 0 : -ENAMETOOLONG;
}

static int flows_prepare(struct bench_env *env)
{
	int rc = make_temp_dir(env);
	if (rc == 0)
		rc = flows_input(env);
	if (rc != 0)
		return rc;
	/* The path goes into EAL arguments split at blanks, and into a --vdev list split at
	 * commas. */
	if (strpbrk(env->input, " \t\n,") != NULL) {
		fprintf(stderr, "weir bench: flows: the capture's path must not hold blanks or "
				"commas (DPDK's --vdev): %s\n", env->input);
		return -EINVAL;
	}
	find_program("dpdk-testpmd", getenv("WEIR_TESTPMD"), env->testpmd, sizeof(env->testpmd));
	env->has_baseline = env->testpmd[0] != '\0';
	if (env->testpmd[0] == '\0')
		fprintf(stderr, "weir bench: flows: dpdk-testpmd is not installed (or WEIR_TESTPMD "
				"is not a program): reporting weir alone\n");
	return 0;
}

/* In the child: one weir job, DPDK source -> conversation flows per 1 s -> /dev/null. */
static int flows_engine_once(const struct bench_env *env, uint32_t workers,
			     struct bench_sample *out)
{
	char eal[PATH_MAX + 256];
	snprintf(eal, sizeof(eal),
		 "--no-huge --no-shconf -m 1024 --no-pci --log-level=error "
		 "--file-prefix=weirbench%ld --vdev net_pcap0,rx_pcap=%s,infinite_rx=1",
		 (long)getpid(), env->input);
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = workers;
	struct weir_job *job = NULL;
	int rc = bench_job_create(&job, &options, "flows");
	if (rc != 0)
		return rc;
	rc = weir_job_source_dpdk(job, eal, 0, 0);
	if (rc == 0)
		rc = weir_job_flows(job, WEIR_FLOWS_CONVERSATION, 1000000000);
	if (rc == 0)
		rc = weir_job_sink(job, "/dev/null", WEIR_FORMAT_JSONL);
	if (rc == 0)
		rc = run_job(job, env->options->seconds, out);
	else
		fprintf(stderr, "weir bench: flows: %s\n", weir_job_error(job));
	weir_job_destroy(job);
	return rc;
}

/* testpmd's port counter at its first and last NIC statistics printout, as we read them. */
struct testpmd_watch {
	uint32_t print_count;
	uint64_t first_packets, last_packets;
	int64_t first_ns, last_ns;
};

/* Reads testpmd's stdout; sends SIGINT once a printout comes @seconds after the first, then
 * reads to the end.  Returns: 0, or -ETIMEDOUT / -errno (the caller kills testpmd). */
static int watch_testpmd(int fd, pid_t pid, double seconds, struct testpmd_watch *watch)
{
	struct line_reader reader = {.fd = fd, .used = 0};
	char line[BENCH_LINE_MAX];
	bool in_port_block = false, interrupted = false;
	int64_t deadline = monotonic_ns() + BENCH_GRACE_NS + (int64_t)(seconds * NS_PER_S);
	int rc;
	while ((rc = read_line(&reader, line, sizeof(line), deadline)) == 1) {
		const char *at = strstr(line, "RX-packets:");
		if (strstr(line, "NIC statistics for port") != NULL)
			in_port_block = true;
		if (!in_port_block || at == NULL || interrupted)
			continue;
		in_port_block = false;
		int64_t now = monotonic_ns();
		uint64_t packets = strtoull(at + strlen("RX-packets:"), NULL, 10);
		if (watch->print_count++ == 0) {
			watch->first_ns = now;
			watch->first_packets = packets;
		}
		watch->last_ns = now;
		watch->last_packets = packets;
		if (now - watch->first_ns >= (int64_t)(seconds * NS_PER_S)) {
			kill(pid, SIGINT);
			interrupted = true;
			deadline = now + BENCH_GRACE_NS;
		}
	}
	return rc < 0 ? rc : 0;
}

/* dpdk-testpmd --forward-mode=rxonly on the same vdev: one forwarding core (lcore 1). */
static int flows_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	if (env->testpmd[0] == '\0')
		return -ENOENT;
	char prefix[64], vdev[PATH_MAX + 64], mbufs[64], err_path[PATH_MAX];
	snprintf(prefix, sizeof(prefix), "--file-prefix=weirtp%ld", (long)getpid());
	snprintf(vdev, sizeof(vdev), "net_pcap0,rx_pcap=%s,infinite_rx=1", env->input);
	/* --no-huge needs an explicit pool; infinite_rx keeps every frame of the file in it. */
	long long total = env->frames >= 0 ? (long long)env->frames + 8192 : 65536;
	snprintf(mbufs, sizeof(mbufs), "--total-num-mbufs=%lld", total);
	char *argv[] = {(char *)env->testpmd, "--no-huge", "--no-shconf", "-m", "1024",
			"--no-pci", "--log-level=error", prefix, "--vdev", vdev, "-l", "0-1", "--",
			"--forward-mode=rxonly", mbufs, "--stats-period", "1", "-a", NULL};
	temp_path(env, "testpmd.err", err_path, sizeof(err_path));
	pid_t pid;
	int fd;
	int rc = spawn_child(argv, err_path, &pid, &fd);
	if (rc != 0) {
		fprintf(stderr, "weir bench: %s: %s\n", env->testpmd, strerror(-rc));
		return rc;
	}
	struct testpmd_watch watch = {.print_count = 0};
	rc = watch_testpmd(fd, pid, env->options->seconds, &watch);
	close(fd);
	int status = wait_child(pid, rc == 0 ? monotonic_ns() + BENCH_GRACE_NS : 0);
	if (rc != 0 || watch.print_count < 2 || watch.last_ns <= watch.first_ns ||
	    watch.last_packets <= watch.first_packets) {
		dump_file(err_path, "dpdk-testpmd");
		fprintf(stderr, "weir bench: dpdk-testpmd: %u statistics printouts, exit status "
				"%d%s\n", watch.print_count, status, rc != 0 ? " (killed)" : "");
		return rc != 0 ? rc : -ENODATA;
	}
	out->events = watch.last_packets - watch.first_packets;
	out->seconds = (double)(watch.last_ns - watch.first_ns) / NS_PER_S;
	return 0;
}

/* ---- the ysb workload (bench/ysb.c) ---- */

/* The functions of bench/ysb.c are declared in bench/workloads.h. */

/* Makes the baseline's events; env->input is the file the engine's sink writes. */
static int ysb_prepare(struct bench_env *env)
{
	uint64_t events = bench_ysb_event_count(env->options->events);
	int rc = make_temp_dir(env);
	if (rc != 0)
		return rc;
	temp_path(env, "ysb-rows.jsonl", env->input, sizeof(env->input));
	fprintf(stderr, "weir bench: ysb: making %llu events for the baseline\n",
		(unsigned long long)events);
	struct bench_ysb *ysb = NULL;
	rc = bench_ysb_create(&ysb, events, env->note, sizeof(env->note), env->header,
			      sizeof(env->header), env->json_extra, sizeof(env->json_extra));
	if (rc != 0) {
		fprintf(stderr, "weir bench: ysb: %s\n", strerror(-rc));
		return rc;
	}
	env->state = ysb;
	env->has_baseline = true;
	return 0;
}

static int ysb_engine_once(const struct bench_env *env, uint32_t workers,
			   struct bench_sample *out)
{
	uint64_t events = bench_ysb_event_count(env->options->events);
	int rc = bench_ysb_engine_once(events, workers, env->input, &out->events, &out->seconds,
				       &out->digest, &out->digest_total);
	out->has_digest = rc == 0;
	return rc;
}

static int ysb_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	int rc = bench_ysb_baseline_once(env->state, &out->events, &out->seconds, &out->digest,
					 &out->digest_total);
	out->has_digest = rc == 0;
	return rc;
}

static void ysb_release(struct bench_env *env)
{
	bench_ysb_destroy(env->state);
	env->state = NULL;
}

/* ---- the registry ---- */

static const struct bench_workload bench_workloads[] = {
	{
		.name = "flows",
		.description = "DPDK net_pcap -> parse -> conversation aggregates per 1 s window",
		.baseline_name = "dpdk-testpmd --forward-mode=rxonly, 1 forwarding core",
		.baseline_unit = "packets",
		.prepare = flows_prepare,
		.engine_once = flows_engine_once,
		.baseline_once = flows_baseline_once,
	},
	{
		.name = "ysb",
		.description = "Yahoo Streaming Benchmark, engine-only: in-memory ad events -> "
			       "views -> join ad->campaign -> count per campaign per 10 s window",
		.baseline_name = "fused single-threaded C loop over packed 78-byte rows, 1 core",
		.baseline_unit = "events",
		.runs_to_end = true,
		.prepare = ysb_prepare,
		.engine_once = ysb_engine_once,
		.baseline_once = ysb_baseline_once,
		.release = ysb_release,
	},
	BENCH_NEXMARK_Q0,
	BENCH_NEXMARK_Q1,
	BENCH_NEXMARK_Q2,
	BENCH_NEXMARK_Q5,
	BENCH_NEXMARK_Q7,
	BENCH_NEXMARK_Q8,
	BENCH_SHUFFLE_TAX,
	BENCH_CHECKPOINT,
};

#define BENCH_WORKLOAD_COUNT (sizeof(bench_workloads) / sizeof(bench_workloads[0]))

static const struct bench_workload *find_workload(const char *name)
{
	for (size_t i = 0; i < BENCH_WORKLOAD_COUNT; i++)
		if (strcmp(bench_workloads[i].name, name) == 0)
			return &bench_workloads[i];
	return NULL;
}

/* ---- running and reporting ---- */

/* One engine repetition in a child: `/proc/self/exe bench --engine-once NAME ...`. */
static int engine_child(const struct bench_workload *workload, const struct bench_env *env,
			uint32_t workers, struct bench_sample *out)
{
	char workers_text[16], seconds_text[32], events_text[32], err_path[PATH_MAX];
	char json[BENCH_LINE_MAX];
	snprintf(workers_text, sizeof(workers_text), "%u", workers);
	snprintf(seconds_text, sizeof(seconds_text), "%.17g", env->options->seconds);
	snprintf(events_text, sizeof(events_text), "%llu",
		 (unsigned long long)env->options->events);
	char *argv[] = {"/proc/self/exe", "bench", "--engine-once", (char *)workload->name,
			"--input", (char *)env->input, "--workers", workers_text,
			"--seconds", seconds_text, "--events", events_text, NULL};
	if (env->options->events == 0)
		argv[10] = NULL; /* the workload's default */
	temp_path(env, "engine.err", err_path, sizeof(err_path));
	int64_t deadline = monotonic_ns() + BENCH_GRACE_NS +
			   (int64_t)(env->options->seconds * NS_PER_S);
	int rc = run_collect(argv, err_path, deadline, json, sizeof(json));
	double events = 0, seconds = 0;
	if (rc == 0 && (json_number(json, "events", &events) != 0 ||
			json_number(json, "seconds", &seconds) != 0 || seconds <= 0))
		rc = -1;
	if (rc != 0) {
		dump_file(err_path, "the engine's run");
		fprintf(stderr, "weir bench: %s: the engine's run failed\n", workload->name);
		return -EIO;
	}
	out->events = (uint64_t)events;
	out->seconds = seconds;
	out->has_digest = json_digest(json, out) == 0;
	return 0;
}

/* The hidden --engine-once mode: one run, one JSON line on stdout. */
static int engine_once_main(const struct bench_options *options)
{
	const struct bench_workload *workload = find_workload(options->engine_once);
	if (workload == NULL || options->input == NULL) {
		fprintf(stderr, "weir bench: --engine-once needs a workload and --input\n");
		return 2;
	}
	struct bench_env env = {.options = options, .frames = -1};
	snprintf(env.input, sizeof(env.input), "%s", options->input);
	struct bench_sample sample = {.events = 0};
	if (workload->engine_once(&env, options->workers[0], &sample) != 0)
		return 1;
	printf("{\"events\":%llu,\"seconds\":%.9f,\"workers\":%u",
	       (unsigned long long)sample.events, sample.seconds, options->workers[0]);
	if (sample.has_digest)
		printf(",\"digest\":\"%016llx\",\"digest_total\":%llu",
		       (unsigned long long)sample.digest, (unsigned long long)sample.digest_total);
	printf("}\n");
	return fflush(stdout) == 0 ? 0 : 1;
}

struct spread {
	double median, min, max;
};

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts @values. */
static struct spread spread_of(double *values, uint32_t count)
{
	qsort(values, count, sizeof(values[0]), compare_doubles);
	double median = count % 2 == 1 ? values[count / 2]
				       : (values[count / 2 - 1] + values[count / 2]) / 2;
	return (struct spread){.median = median, .min = values[0], .max = values[count - 1]};
}

struct bench_result {
	uint32_t workers;
	uint32_t count;
	bool has_baseline;
	struct bench_sample engine[BENCH_REPS_MAX];
	struct bench_sample baseline[BENCH_REPS_MAX];
};

/* The spreads of a result: engine events, seconds, events/s, per worker; baseline; ratio. */
struct bench_summary {
	struct spread events, seconds, rate, rate_per_worker, baseline_rate, ratio;
};

static struct bench_summary summarize(const struct bench_result *result)
{
	double events[BENCH_REPS_MAX], seconds[BENCH_REPS_MAX], rate[BENCH_REPS_MAX];
	double per_worker[BENCH_REPS_MAX], baseline[BENCH_REPS_MAX], ratio[BENCH_REPS_MAX];
	for (uint32_t i = 0; i < result->count; i++) {
		const struct bench_sample *a = &result->engine[i], *b = &result->baseline[i];
		events[i] = (double)a->events;
		seconds[i] = a->seconds;
		rate[i] = (double)a->events / a->seconds;
		per_worker[i] = rate[i] / result->workers;
		baseline[i] = result->has_baseline ? (double)b->events / b->seconds : 0;
		ratio[i] = result->has_baseline ? per_worker[i] / baseline[i] : 0;
	}
	struct bench_summary summary;
	summary.events = spread_of(events, result->count);
	summary.seconds = spread_of(seconds, result->count);
	summary.rate = spread_of(rate, result->count);
	summary.rate_per_worker = spread_of(per_worker, result->count);
	summary.baseline_rate = spread_of(baseline, result->count);
	summary.ratio = spread_of(ratio, result->count);
	return summary;
}

static struct spread scaled(struct spread spread, double factor)
{
	return (struct spread){.median = spread.median * factor, .min = spread.min * factor,
			       .max = spread.max * factor};
}

static void json_string(const char *key, const char *value)
{
	printf(",\"%s\":\"", key);
	for (const char *c = value; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if ((unsigned char)*c < 0x20)
			printf("\\u%04x", (unsigned)(unsigned char)*c);
		else
			putchar(*c);
	}
	putchar('"');
}

/* "key":v,"key_min":v,"key_max":v, or nulls when @present is false. */
static void json_spread(const char *key, struct spread spread, bool present)
{
	static const char *const suffixes[] = {"", "_min", "_max"};
	const double values[] = {spread.median, spread.min, spread.max};
	for (size_t i = 0; i < 3; i++) {
		if (present && isfinite(values[i]))
			printf(",\"%s%s\":%.6g", key, suffixes[i], values[i]);
		else
			printf(",\"%s%s\":null", key, suffixes[i]);
	}
}

static void print_json(const struct bench_workload *workload, const struct bench_env *env,
		       const struct bench_result *result)
{
	struct bench_summary s = summarize(result);
	printf("{\"workload\":\"%s\",\"workers\":%u,\"reps\":%u,\"events\":%.0f,\"seconds\":%.6g",
	       workload->name, result->workers, result->count, s.events.median,
	       s.seconds.median);
	json_spread("events_per_s", s.rate, true);
	json_spread("events_per_s_per_worker", s.rate_per_worker, true);
	if (result->has_baseline)
		json_string("baseline", workload->baseline_name);
	else
		printf(",\"baseline\":null");
	json_spread("baseline_events_per_s", s.baseline_rate, result->has_baseline);
	json_spread("ratio", s.ratio, result->has_baseline);
	if (workload->reference_events_per_s > 0) {
		json_string("reference", workload->reference_name);
		printf(",\"reference_events_per_s\":%.6g", workload->reference_events_per_s);
		json_spread("vs_reference", scaled(s.rate_per_worker,
						   1 / workload->reference_events_per_s), true);
	}
	if (env->frames >= 0)
		printf(",\"frames\":%lld", (long long)env->frames);
	json_string("input", env->note);
	printf("%s}\n", env->json_extra);
}

/* 12.34M, 567.8k, 12 */
static const char *human(double value, char *text, size_t capacity)
{
	if (value >= 1e6)
		snprintf(text, capacity, "%.2fM", value / 1e6);
	else if (value >= 1e3)
		snprintf(text, capacity, "%.1fk", value / 1e3);
	else
		snprintf(text, capacity, "%.0f", value);
	return text;
}

static void print_row(const struct bench_workload *workload, const struct bench_result *result)
{
	struct bench_summary s = summarize(result);
	char a[16], b[16], c[16], cell[64];
	printf("%7u", result->workers);
	snprintf(cell, sizeof(cell), "%s [%s .. %s]", human(s.rate_per_worker.median, a, 16),
		 human(s.rate_per_worker.min, b, 16), human(s.rate_per_worker.max, c, 16));
	printf("  %-30s", cell);
	if (!result->has_baseline) {
		printf("  %-30s  %-24s", "-", "-");
	} else {
		snprintf(cell, sizeof(cell), "%s [%s .. %s]", human(s.baseline_rate.median, a, 16),
			 human(s.baseline_rate.min, b, 16), human(s.baseline_rate.max, c, 16));
		printf("  %-30s  %.2f [%.2f .. %.2f]", cell, s.ratio.median, s.ratio.min,
		       s.ratio.max);
	}
	if (workload->reference_events_per_s > 0)
		printf("   %.0fx", s.rate_per_worker.median / workload->reference_events_per_s);
	printf("\n");
	fflush(stdout);
}

static void print_header(const struct bench_workload *workload, const struct bench_env *env)
{
	const struct bench_options *options = env->options;
	char unit[64];
	printf("%s: %s\n", workload->name, workload->description);
	printf("  input:    %s\n", env->note);
	printf("  baseline: %s\n", env->has_baseline ? workload->baseline_name
						     : "none (not installed)");
	printf("%s", env->header);
	if (workload->runs_to_end)
		printf("  medians of %u interleaved pairs of runs over the whole input (after one "
		       "warm-up each), [min .. max]\n", options->reps);
	else
		printf("  medians of %u interleaved pairs of %g s runs (after one warm-up each), "
		       "[min .. max]\n", options->reps, options->seconds);
	if (workload->reference_events_per_s > 0)
		printf("  reference: %s, %s events/s (last column: weir per worker over it)\n",
		       workload->reference_name,
		       human(workload->reference_events_per_s, unit, sizeof(unit)));
	snprintf(unit, sizeof(unit), "baseline %s/s per core", workload->baseline_unit);
	printf("%7s  %-30s  %-30s  %s%s\n", "workers", "weir events/s per worker", unit,
	       "weir/baseline per core", workload->reference_events_per_s > 0 ? "   vs ref" : "");
	fflush(stdout);
}

/* One engine run and, if there is one, one baseline run; when both give a digest of their
 * results, they must be equal.  Returns: 0, -EPROTO (they differ, said on stderr), or the
 * failed run's. */
static int measure_pair(const struct bench_workload *workload, const struct bench_env *env,
			uint32_t workers, bool has_baseline, struct bench_sample *engine,
			struct bench_sample *baseline)
{
	*engine = (struct bench_sample){.events = 0};
	*baseline = (struct bench_sample){.events = 0};
	int rc = engine_child(workload, env, workers, engine);
	if (rc == 0 && has_baseline)
		rc = workload->baseline_once(env, baseline);
	if (rc != 0 || !engine->has_digest || !baseline->has_digest)
		return rc;
	if (engine->digest != baseline->digest || engine->digest_total != baseline->digest_total) {
		fprintf(stderr, "weir bench: %s, %u worker%s: the engine's results differ from the "
				"baseline's: digest %016llx (total %llu) vs %016llx (total %llu)\n",
			workload->name, workers, workers == 1 ? "" : "s",
			(unsigned long long)engine->digest,
			(unsigned long long)engine->digest_total,
			(unsigned long long)baseline->digest,
			(unsigned long long)baseline->digest_total);
		return -EPROTO;
	}
	return 0;
}

/* One warm-up of each side, then --reps interleaved pairs. */
static int measure(const struct bench_workload *workload, const struct bench_env *env,
		   struct bench_result *result)
{
	const struct bench_options *options = env->options;
	struct bench_sample scratch_engine, scratch_baseline;
	result->has_baseline = workload->baseline_once != NULL && env->has_baseline;
	result->count = 0;
	fprintf(stderr, "weir bench: %s, %u worker%s: warm-up\n", workload->name,
		result->workers, result->workers == 1 ? "" : "s");
	int rc = measure_pair(workload, env, result->workers, result->has_baseline,
			      &scratch_engine, &scratch_baseline);
	for (uint32_t r = 0; r < options->reps && rc == 0; r++) {
		fprintf(stderr, "weir bench: %s, %u worker%s: repetition %u of %u\n",
			workload->name, result->workers, result->workers == 1 ? "" : "s", r + 1,
			options->reps);
		rc = measure_pair(workload, env, result->workers, result->has_baseline,
				  &result->engine[r], &result->baseline[r]);
		result->count += rc == 0;
	}
	return rc;
}

int bench_sink_run(struct weir_job *job, int rc, const char *sink_path, const char *what,
		   struct weir_job_stats *stats)
{
	bool discard = strcmp(sink_path, "/dev/null") == 0;
	if (rc == 0)
		rc = weir_job_sink(job, sink_path,
				   discard ? WEIR_FORMAT_DISCARD : WEIR_FORMAT_JSONL);
	return bench_job_finish(job, rc, what, stats);
}

int bench_job_finish(struct weir_job *job, int rc, const char *what,
		     struct weir_job_stats *stats)
{
	if (rc == 0)
		rc = weir_job_run(job);
	if (rc != 0) {
		fprintf(stderr, "weir bench: %s: %s\n", what, weir_job_error(job));
		weir_job_report(job, stderr);
	}
	weir_job_get_stats(job, stats);
	weir_job_destroy(job);
	return rc;
}

/* ---- plots: gnuplot draws what the table says ---- */

static FILE *plot_data; /* DIR/bench.dat while --plot collects rows, else NULL */

static int plot_open(const char *directory)
{
	if (mkdir(directory, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "weir bench: --plot %s: %s\n", directory, strerror(errno));
		return -1;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/bench.dat", directory);
	plot_data = fopen(path, "w");
	if (plot_data == NULL) {
		fprintf(stderr, "weir bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(plot_data, "# label weir_events_per_s_per_worker baseline_events_per_s\n");
	return 0;
}

static void plot_add(const struct bench_workload *workload, const struct bench_result *result)
{
	if (plot_data == NULL)
		return;
	struct bench_summary s = summarize(result);
	fprintf(plot_data, "\"%s, %u w\" %.6g ", workload->name, result->workers,
		s.rate_per_worker.median);
	if (result->has_baseline)
		fprintf(plot_data, "%.6g\n", s.baseline_rate.median);
	else
		fprintf(plot_data, "NaN\n");
}

/* Writes DIR/bench.gp and runs gnuplot on it.  Returns: 0, or -1 after saying why. */
static int plot_draw(const char *directory)
{
	fclose(plot_data);
	plot_data = NULL;
	char script[PATH_MAX], svg[PATH_MAX];
	snprintf(script, sizeof(script), "%s/bench.gp", directory);
	snprintf(svg, sizeof(svg), "%s/bench.svg", directory);
	FILE *gp = fopen(script, "w");
	if (gp == NULL) {
		fprintf(stderr, "weir bench: %s: %s\n", script, strerror(errno));
		return -1;
	}
	fprintf(gp,
		"set terminal svg size 1100,560 dynamic font 'sans,11'\n"
		"set output '%s'\n"
		"set title 'weir bench: median events/s (log scale)'\n"
		"set style data histograms\nset style histogram clustered gap 1\n"
		"set style fill solid 0.8 border -1\nset logscale y\nset yrange [1e5:*]\n"
		"set ylabel 'events per second'\nset grid ytics\nset key top left\n"
		"set xtics rotate by -35 left\n"
		"plot '%s/bench.dat' using 2:xtic(1) title 'weir, per worker', "
		"'' using 3 title 'baseline, one core'\n",
		svg, directory);
	fclose(gp);
	char *argv[] = {"gnuplot", script, NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ) != 0) {
		fprintf(stderr, "weir bench: --plot needs gnuplot (Debian: gnuplot-nox); the data "
				"is in %s/bench.dat\n", directory);
		return -1;
	}
	int status = 0;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "weir bench: gnuplot failed on %s\n", script);
		return -1;
	}
	fprintf(stderr, "weir bench: plot written to %s\n", svg);
	return 0;
}

static int run_workload(const struct bench_workload *workload,
			const struct bench_options *options)
{
	struct bench_env env = {.options = options, .frames = -1};
	static struct bench_result result; /* 3 KiB of samples: off the stack */
	int rc = workload->prepare(&env);
	if (rc == 0 && !options->json)
		print_header(workload, &env);
	for (uint32_t k = 0; k < options->worker_set_count && rc == 0; k++) {
		result.workers = options->workers[k];
		env.workers = options->workers[k];
		rc = measure(workload, &env, &result);
		if (rc == 0)
			plot_add(workload, &result);
		if (rc == 0 && options->json)
			print_json(workload, &env, &result);
		else if (rc == 0)
			print_row(workload, &result);
	}
	fflush(stdout);
	if (workload->release != NULL)
		workload->release(&env);
	remove_temp_dir(&env);
	return rc;
}

/* ---- options ---- */

enum {
	OPT_LIST = 1, OPT_JSON, OPT_REPS, OPT_SECONDS, OPT_WORKERS, OPT_CAPTURE, OPT_MAX_FRAMES,
	OPT_ENGINE_ONCE, OPT_INPUT, OPT_HELP, OPT_EVENTS, OPT_PLOT,
};

static const struct option bench_options_long[] = {
	{"list", no_argument, NULL, OPT_LIST},
	{"json", no_argument, NULL, OPT_JSON},
	{"reps", required_argument, NULL, OPT_REPS},
	{"seconds", required_argument, NULL, OPT_SECONDS},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"capture", required_argument, NULL, OPT_CAPTURE},
	{"max-frames", required_argument, NULL, OPT_MAX_FRAMES},
	{"engine-once", required_argument, NULL, OPT_ENGINE_ONCE},
	{"input", required_argument, NULL, OPT_INPUT},
	{"help", no_argument, NULL, OPT_HELP},
	{"events", required_argument, NULL, OPT_EVENTS},
	{"plot", required_argument, NULL, OPT_PLOT},
	{NULL, 0, NULL, 0},
};

static void bench_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir bench [--list] [--json] [--reps N] [--seconds S]\n"
		"                  [--workers N[,N...]] [--capture FILE] [--max-frames N]\n"
		"                  [--events N] [--plot DIR] [WORKLOAD...]\n"
		"Runs each WORKLOAD (default: all; see --list) as a weir job and its baseline\n"
		"program, interleaved: one warm-up each, then N pairs (default 3) of S-second\n"
		"runs (default 5); prints medians [min .. max] per worker count (default 1).\n"
		"flows replays --capture (default data/sample.pcap, else one made by\n"
		"tools/gen_pcap.py under $WEIR_SOURCE_ROOT), cut to its first --max-frames frames\n"
		"(default 24000), through DPDK net_pcap; baseline dpdk-testpmd ($WEIR_TESTPMD).\n"
		"ysb (Yahoo Streaming Benchmark) runs --events events (default 20000000) to the\n"
		"end, against a single-threaded C loop; their counts must agree.\n"
		"--plot DIR also draws the medians as DIR/bench.svg (with gnuplot).\n");
}

/* "1,2,4" into options->workers.  Returns: 0 or -EINVAL. */
static int parse_workers(struct bench_options *options, const char *text)
{
	options->worker_set_count = 0;
	const char *at = text;
	for (;;) {
		char *end = NULL;
		errno = 0;
		unsigned long value = strtoul(at, &end, 10);
		if (errno != 0 || end == at || value == 0 || value > 256 ||
		    options->worker_set_count == BENCH_WORKER_SETS_MAX)
			return -EINVAL;
		options->workers[options->worker_set_count++] = (uint32_t)value;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -EINVAL;
		at = end + 1;
	}
}

static int parse_number(const char *text, double low, double high, double *value)
{
	char *end = NULL;
	errno = 0;
	*value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(*value >= low && *value <= high))
		return -EINVAL;
	return 0;
}

/* Returns: 0, 1 for --help, -1 for a usage error (already reported). */
static int parse_bench_args(struct bench_options *options, int argc, char **argv)
{
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", bench_options_long, NULL)) != -1) {
		double value = 0;
		int rc = 0;
		switch (option) {
		case OPT_LIST: options->list = true; break;
		case OPT_JSON: options->json = true; break;
		case OPT_CAPTURE: options->capture = optarg; break;
		case OPT_ENGINE_ONCE: options->engine_once = optarg; break;
		case OPT_INPUT: options->input = optarg; break;
		case OPT_PLOT: options->plot_dir = optarg; break;
		case OPT_WORKERS: rc = parse_workers(options, optarg); break;
		case OPT_SECONDS: rc = parse_number(optarg, 0.1, 3600, &options->seconds); break;
		case OPT_REPS:
			rc = parse_number(optarg, 1, BENCH_REPS_MAX, &value);
			options->reps = (uint32_t)value;
			rc = rc == 0 && value != options->reps ? -EINVAL : rc;
			break;
		case OPT_EVENTS:
			rc = parse_number(optarg, 1, 1e9, &value);
			options->events = (uint64_t)value;
			rc = rc == 0 && value != (double)options->events ? -EINVAL : rc;
			break;
		case OPT_MAX_FRAMES:
			rc = parse_number(optarg, 1, 1e9, &value);
			options->max_frames = (uint32_t)value;
			rc = rc == 0 && value != options->max_frames ? -EINVAL : rc;
			break;
		case OPT_HELP: bench_usage(stdout); return 1;
		default: bench_usage(stderr); return -1;
		}
		if (rc != 0) {
			fprintf(stderr, "weir bench: bad value '%s' for --%s\n", optarg,
				bench_options_long[option - 1].name);
			return -1;
		}
	}
	return 0;
}

int weir_cmd_bench(int argc, char **argv)
{
	struct bench_options options = {
		.reps = 3, .seconds = 5, .workers = {1}, .worker_set_count = 1,
		.max_frames = 24000};
	int parsed = parse_bench_args(&options, argc, argv);
	if (parsed != 0)
		return parsed > 0 ? 0 : 2;
	if (options.engine_once != NULL)
		return engine_once_main(&options);
	if (options.list) {
		for (size_t i = 0; i < BENCH_WORKLOAD_COUNT; i++)
			printf("%-8s %s; baseline: %s\n", bench_workloads[i].name,
			       bench_workloads[i].description, bench_workloads[i].baseline_name);
		return 0;
	}
	for (int i = optind; i < argc; i++) {
		if (find_workload(argv[i]) == NULL) {
			fprintf(stderr, "weir bench: unknown workload '%s' (see --list)\n",
				argv[i]);
			return 2;
		}
	}
	if (options.plot_dir != NULL && plot_open(options.plot_dir) != 0)
		return 2;
	int status = 0;
	for (size_t i = 0; i < (optind < argc ? (size_t)(argc - optind) : BENCH_WORKLOAD_COUNT);
	     i++) {
		const struct bench_workload *workload =
			optind < argc ? find_workload(argv[optind + (int)i]) : &bench_workloads[i];
		if (run_workload(workload, &options) != 0)
			status = 1;
	}
	if (options.plot_dir != NULL && plot_draw(options.plot_dir) != 0)
		status = 1;
	return status;
}
