/* pirec record: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_record(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec record: not implemented yet\n");
    return 2;
}
