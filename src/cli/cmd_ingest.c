/* pirec ingest: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_ingest(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec ingest: not implemented yet\n");
    return 2;
}
