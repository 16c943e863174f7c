/* pirec: one binary, one subcommand per job. */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "the recorder: web page, control API, events, capture, FLAC takes"},
    {"record", cmd_record, "one take from the command line, no server"},
    {"devices", cmd_devices, "list capture devices and what they can do"},
    {"repair", cmd_repair, "finalize FLAC files left unfinished by a crash or power loss"},
    {"send", cmd_send, "stream FROM to TO with the record module (e.g. file:// to ws://)"},
    {"ingest", cmd_ingest, "WebSocket server that receives record-module streams and stores them"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: pirec COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'pirec COMMAND --help' describes a command's options.\n"
                 "pirec %s\n", PIREC_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("pirec %s\n", PIREC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "pirec: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
