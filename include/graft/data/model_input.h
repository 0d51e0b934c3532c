#pragma once
/// The deterministic pipeline between a dataset's examples and a model's input.
#include <cstdint>
#include <vector>

#include "graft/data/transforms.h"
#include "graft/io/checkpoint.h"

namespace graft::data {

/// Turns examples of per-example shape data_shape into inputs of the model described
/// by meta: channel conversion (gray <-> RGB) and a resize when the shapes differ,
/// then meta.preprocess. Throws graft::Error when a non-image shape differs.
Pipeline model_input_pipeline(const io::ModelMeta& meta, const std::vector<int64_t>& data_shape);

}  // namespace graft::data
