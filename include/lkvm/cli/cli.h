/*
 * cli.h - the lkvm command line: option parsing for "lkvm run" into an
 * lkvm_config, kept apart from main() so unit tests can feed it argv
 * vectors.  Used only by the lkvm program, not part of liblkvm.a.
 */
#ifndef LKVM_CLI_H
#define LKVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lkvm.h"

/* Exit statuses of the lkvm program (README and lkvm(1) document them). */
#define LKVM_STATUS_OK		0
#define LKVM_STATUS_ERROR	1
#define LKVM_STATUS_USAGE	2
#define LKVM_STATUS_PANIC	123
#define LKVM_STATUS_TIMEOUT	124

struct cli_run {
	struct lkvm_config cfg;
	const char *log_path;
	bool stats;
	bool help;
	unsigned int exit_offset;	/* --exit-code-offset */
	const char **disks;	/* malloc'd array of argv pointers */
	const char **nets;	/* the same for -n */
	char **devices;		/* "TYPE[,OPTIONS]" for --TYPE, malloc'd */
	char *host_kernel;	/* no kernel named: the host's, malloc'd */
};

/*
 * Parses "run" options (argv[0] is "run").  Returns 0, or -EINVAL/-ENOENT
 * with one line of explanation in err.  Checks that the named files can
 * be read.  Free with cli_run_free().
 */
int cli_parse_run(int argc, char **argv, struct cli_run *r, char *err,
		  size_t errlen);
void cli_run_free(struct cli_run *r);

/* Maps a finished run to the program's exit status. */
int cli_exit_status(const struct lkvm_result *res, unsigned int offset);

extern const char cli_run_usage[];
/* cli_run_usage plus the device options the library offers. */
void cli_run_usage_print(FILE *f);
extern const char cli_usage[];

/*
 * The commands for running VMs (list, stop, pause, resume, stat, debug,
 * balloon), in ctl.c: argv[0] is the command.  Returns the exit status.
 */
bool cli_is_ctl_command(const char *cmd);
/* lkvm export (cli/export.c): argv[0] is "export". */
extern const char cli_export_usage[];
int cli_export_main(int argc, char **argv);
int cli_ctl_main(int argc, char **argv);
struct ctl_opts;
int cli_parse_ctl(int argc, char **argv, struct ctl_opts *o, int *cmd,
		  char *err, size_t errlen);

/* Raw terminal mode for the console; restored by term_restore(). */
struct termios;
int term_raw(int fd, struct termios *saved);
void term_restore(int fd, const struct termios *saved);

#endif
