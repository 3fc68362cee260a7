/* How every job-running command ends: the run, its error, the report, the exit status. */
#include <errno.h>
#include <stdio.h>

#include "cli/commands.h"

int weir_cli_run(struct weir_job *job, const char *command, const char *state_dir, bool quiet)
{
	int rc = weir_job_run(job);
	int status = 0;
	if (rc != 0) {
		fprintf(stderr, "weir %s: %s\n", command, weir_job_error(job));
		/* Placement errors (--workers, --cores) are configuration, not a crash. */
		status = rc == -EINVAL ? 2 : 1;
	}
	struct weir_job_stats stats;
	weir_job_get_stats(job, &stats);
	if (rc == 0 && stats.already_finished) {
		fprintf(stderr, "weir %s: the job in %s had already finished (checkpoint %llu); "
			"its output is complete\n", command, state_dir,
			(unsigned long long)stats.recovered_epoch);
		weir_job_destroy(job);
		return 0;
	}
	/* Bad input, refused and late events are reported even with --quiet. */
	bool noteworthy = stats.input_skipped > 0 || stats.state_full > 0 || stats.late_dropped > 0;
	if ((rc == 0 || stats.events_in > 0) && (!quiet || noteworthy))
		weir_job_report(job, stderr);
	if (status == 0 && stats.state_full > 0)
		status = 3;
	weir_job_destroy(job);
	return status;
}
