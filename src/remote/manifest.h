// A session's metadata on a remote: the rows of its bundle (store/bundle.h,
// BundleRows) cut at content-defined points into pieces of 4 to 64 KiB,
// which are stored in packs like chunks (so a push sends only the pieces a
// change touched), and a manifest object that lists them in order.
//
// A manifest is text: the line "strata-manifest 1", then one line
// "SHA PACK OFFSET LENGTH" per piece (its SHA-256 and its pack entry). It is
// named by its own SHA-256.
#ifndef STRATA_REMOTE_MANIFEST_H_
#define STRATA_REMOTE_MANIFEST_H_

#include <string>
#include <string_view>
#include <vector>

#include "chunks/chunk_store.h"
#include "strata/status.h"

namespace strata::remote {

// Cuts `bytes` where a rolling hash of the last bytes (a gear hash) hits a
// pattern: pieces of at least 4 KiB, at most 64 KiB, about 16 KiB on
// average. The same bytes are cut at the same points wherever they are, so
// an insertion changes only the pieces around it.
std::vector<std::string_view> CutPieces(std::string_view bytes);

// The manifest body for `pieces` (remote left empty in each).
std::string EncodeManifest(const std::vector<chunks::RemoteRef>& pieces);
// Corruption naming `what` if `body` is not a manifest.
Result<std::vector<chunks::RemoteRef>> DecodeManifest(std::string_view body,
                                                      const std::string& what);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_MANIFEST_H_
