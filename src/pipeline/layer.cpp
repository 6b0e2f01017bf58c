#include "pipeline/layer.h"

namespace isartor::pipeline {

std::string_view to_string(LayerId layer) {
  switch (layer) {
    case LayerId::kL1a: return "l1a";
    case LayerId::kL1b: return "l1b";
    case LayerId::kL2: return "l2";
    case LayerId::kL3: return "l3";
  }
  return "l3";
}

}  // namespace isartor::pipeline
