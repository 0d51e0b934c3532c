// Source-only: the classifier trained on the source alone (the baseline every method is measured against).
#include "graft/adapt/method.h"

namespace graft::adapt {
namespace {
class SourceOnly : public Method {
 public:
  std::string name() const override { return "source-only"; }
  bool has_term() const override { return false; }
};
}  // namespace

MethodInfo source_only_method() {
  return {"source-only", "no adaptation: train on the labelled source only (the baseline)", false, false, {}, 1.0,
          [](const MethodOptions&) { return std::make_shared<SourceOnly>(); }};
}

}  // namespace graft::adapt
