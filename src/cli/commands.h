/*
 * The pirec subcommands. Each lives in src/cli/cmd_<name>.c, parses its own options with
 * getopt_long, prints its own --help, and returns the process exit status:
 * 0 success, 1 the work failed (the message says what was lost or why), 2 bad usage.
 * Called on the main thread only.
 */
#ifndef PIREC_CLI_COMMANDS_H
#define PIREC_CLI_COMMANDS_H

int cmd_serve(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_ingest(int argc, char **argv);

#endif
