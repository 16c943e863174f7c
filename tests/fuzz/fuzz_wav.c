/* Fuzzes WAV headers (src/audio/source_file.c's parser, static: reached through
 * audio_source_open_file): the file is the input; a file that opens is read to its end. */
#include "fuzz_util.h"

#include "audio/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    fuzz_memfile(data, size, path, sizeof path);
    struct audio_source *src;
    struct file_source_options opt = {0};
    if (audio_source_open_file(&src, path, NULL, &opt) < 0)
        return 0;
    static uint8_t buf[256 * 8 * 4];
    size_t fb = audio_frame_bytes(&src->format);
    if (!fb || fb > 8 * 4)
        abort();
    for (int i = 0; i < 1000; i++) {
        ssize_t n = audio_source_read(src, buf, 256);
        if (n <= 0)
            break;
        if (n > 256)
            abort();
    }
    audio_source_close(src);
    return 0;
}
