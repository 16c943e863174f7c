/* pirec devices: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec devices: not implemented yet\n");
    return 2;
}
