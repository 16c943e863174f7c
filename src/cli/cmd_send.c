/* pirec send: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_send(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec send: not implemented yet\n");
    return 2;
}
