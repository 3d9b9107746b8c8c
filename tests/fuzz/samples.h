// Small but varied sample data for the fuzz targets and their seed corpora:
// a session with every kind of node, snapshots, a fork, a restore, key-value
// state and tool calls; its export as a bundle and as a tarball.
#ifndef STRATA_TESTS_FUZZ_SAMPLES_H_
#define STRATA_TESTS_FUZZ_SAMPLES_H_

#include <string>

#include "strata/store.h"

namespace strata::fuzz {

// Creates session `name` (forked from a session `name`-base, restored once)
// in `store` holding directories, regular files spanning several blocks, a
// symlink, a hard link, a fifo, xattrs, snapshots, key-value state and two
// tool calls (one with output). Dies on failure.
void FillSampleSession(Store& store, const std::string& name);

// The bytes of a bundle of a sample session (block size `block_size`).
std::string SampleBundle(uint32_t block_size);

// The bytes of a pax tarball of a sample session's head (WriteTar).
std::string SampleTar();

}  // namespace strata::fuzz

#endif  // STRATA_TESTS_FUZZ_SAMPLES_H_
