// flashmla: umbrella header.
#pragma once

#include "flashmla/decode.h"
#include "flashmla/error.h"
#include "flashmla/types.h"
#include "flashmla/version.h"
