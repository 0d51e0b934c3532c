#pragma once
/// Surrogate tasks whose labels are free: a network trained on them from unlabelled
/// images becomes a backbone for extract, finetune and adapt like any other.
///   rotation  (Gidaris et al. 2018) every image four times, turned by 0, 90, 180 and
///             270 degrees; the label is the turn.
///   exemplar  (Dosovitskiy et al. 2014) K seed images, each its own pseudo-class; every
///             sample of a class is a fresh random augmentation of its seed image.
#include <string>
#include <vector>

#include "graft/data/dataset.h"

namespace graft::selfsup {

/// The rotation task over `images` (labels ignored): 4 * N examples, example i is image
/// i / 4 turned counter-clockwise by 90 * (i % 4) degrees, label i % 4.
/// Throws graft::Error for an empty set or non-square images.
data::DatasetPtr rotation_task(const data::DatasetPtr& images);

/// The exemplar task: `classes` seed images drawn without replacement (seeded), each
/// repeated `copies` times with label = its pseudo-class. The randomness comes from the
/// training augmentation (exemplar_augment), which differs per example and epoch.
/// Throws graft::Error when `images` has fewer than `classes` examples, or for classes < 2
/// or copies < 1.
data::DatasetPtr exemplar_task(const data::DatasetPtr& images, int64_t classes, int64_t copies, uint64_t seed);

/// Default augmentations (transform specs) for an image shape (C,H,W): exemplar's strong
/// translation, zoom, rotation, flips and brightness/contrast; rotation's small
/// translation only (flips would change which turn an image shows).
std::string exemplar_augment(const std::vector<int64_t>& shape);
std::string rotation_augment(const std::vector<int64_t>& shape);

}  // namespace graft::selfsup
