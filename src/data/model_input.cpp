#include "graft/data/model_input.h"

#include "graft/core/check.h"

namespace graft::data {

Pipeline model_input_pipeline(const io::ModelMeta& meta, const std::vector<int64_t>& data_shape) {
  Pipeline p;
  const auto& m = meta.input_shape;
  if (m.size() == 3 && data_shape.size() == 3) {
    if (data_shape[0] != m[0]) p.then(Pipeline::parse(m[0] == 3 ? "rgb" : "gray"));
    if (data_shape[1] != m[1] || data_shape[2] != m[2]) p.then(Pipeline::parse(str("resize=", m[1], "x", m[2])));
  } else {
    GRAFT_CHECK(data_shape == m, "the data's examples have shape ", at::IntArrayRef(data_shape),
                " but the model takes ", at::IntArrayRef(m));
  }
  return p.then(Pipeline::parse(meta.preprocess));
}

}  // namespace graft::data
