/* pirec repair: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_repair(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec repair: not implemented yet\n");
    return 2;
}
