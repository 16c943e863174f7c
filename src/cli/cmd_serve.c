/* pirec serve: not built yet. */
#include "cli/commands.h"

#include <stdio.h>

int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pirec serve: not implemented yet\n");
    return 2;
}
