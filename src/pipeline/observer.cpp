#include "pipeline/observer.h"

namespace isartor::pipeline {

std::string_view to_string(LayerOutcome outcome) {
  switch (outcome) {
    case LayerOutcome::kAnswered: return "answered";
    case LayerOutcome::kPassed: return "passed";
    case LayerOutcome::kBypassed: return "bypassed";
    case LayerOutcome::kFailed: return "failed";
  }
  return "failed";
}

}  // namespace isartor::pipeline
