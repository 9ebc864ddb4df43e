// Argument checks shared by both backends. Each failure throws flashmla::Error whose message
// names the argument, the expected and the actual value.
#pragma once

#include "flashmla/decode.h"

namespace flashmla {

// validate_decode_args and validate_metadata_args are public: flashmla/decode.h.

// Message builder: "<argument>: expected <expected>, got <actual>".
[[noreturn]] void throw_invalid(const std::string& argument, const std::string& expected,
                                const std::string& actual);

}  // namespace flashmla
