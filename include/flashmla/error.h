// flashmla: the one exception type every public entry point throws.
#pragma once

#include <stdexcept>
#include <string>

namespace flashmla {

// Thrown for invalid arguments, unsupported combinations and CUDA failures.
// The message names the argument, what was expected and what was given,
// so a serving engine can log it and carry on: the process stays usable.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace flashmla
