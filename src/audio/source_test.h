/*
 * source_test: hooks for unit tests only (not for the product). Control thread, before
 * the first read.
 */
#ifndef PIREC_AUDIO_SOURCE_TEST_H
#define PIREC_AUDIO_SOURCE_TEST_H

#include "audio/source.h"

/* Makes a tone source deliver as fast as it is read (tests analyse minutes of it). */
void audio_source_tone_unpaced(struct audio_source *s);

#endif
