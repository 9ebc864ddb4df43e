// Builds kernel parameter structs from validated public arguments.
#pragma once

#include "common/decode_params.h"
#include "flashmla/decode.h"

namespace flashmla {

MetadataParams make_metadata_params(const MetadataArgs& args);
DecodeParams make_decode_params(const DecodeArgs& args);

}  // namespace flashmla
