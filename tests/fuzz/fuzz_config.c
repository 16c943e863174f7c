/* Fuzzes the configuration file of `pirec serve --config` (src/server/config.c, inih):
 * the file is the input. */
#include "fuzz_util.h"

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[512];
    fuzz_memfile(data, size, path, sizeof path);
    static struct server_config cfg;
    config_defaults(&cfg);
    int rc = config_load(path, &cfg, err, sizeof err);
    if (rc == -EINVAL && !err[0])
        abort(); /* a refusal always says why */
    return 0;
}
