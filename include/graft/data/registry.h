#pragma once
/// Dataset specs: one string names any dataset graft can read, plus views on it.
///
///   mnist:train | mnist:test               full MNIST from the data cache (scripts/fetch_data.sh)
///   fashion-mnist:train | fashion-mnist:test   Debian's dataset-fashion-mnist
///   NAME:train | NAME:test                 a dataset made by `graft data make` in the cache
///                                          (IDX or .npy files in $GRAFT_DATA/NAME)
///   idx:IMAGES,LABELS                      any IDX pair (raw or .gz)
///   folder:DIR                             one subfolder per class
///   list:FILE                              "path label" lines
///   npy:INPUTS[,LABELS]                    tensors from .npy
///
/// Views follow, each introduced by '@' and applied left to right (@seed, wherever it
/// stands, seeds every seeded view of the spec):
///   @classes=5-9   @per-class=10   @seed=3   @limit=1000   @unlabelled   @skip-bad   @gray  @rgb
///   @max-pixels=N (image files: refuse images above N pixels; default --max-pixels, 64 Mpx)
///   @decode-size=HxW (image files: decode large images reduced, no smaller than HxW)
/// e.g. "fashion-mnist:train@classes=5-9@per-class=10@seed=2".
#include <string>
#include <vector>

#include "graft/data/dataset.h"

namespace graft::data {

/// Opens the dataset a spec names. Throws graft::Error naming the spec and what to
/// do (e.g. run scripts/fetch_data.sh, or `graft data make mnistm`) when it cannot.
DatasetPtr open_dataset(const std::string& spec);

/// Fashion-MNIST's ten class names.
const std::vector<std::string>& fashion_mnist_classes();

/// The built-in names open_dataset knows (for --help and error messages).
std::vector<std::string> builtin_dataset_names();

}  // namespace graft::data
