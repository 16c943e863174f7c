/* source: what the three backends share. */
#include "audio/source.h"

void audio_source_close(struct audio_source *s)
{
    if (s && s->ops && s->ops->close)
        s->ops->close(s);
}
