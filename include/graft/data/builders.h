#pragma once
/// Builders of derived domains, so that adaptation benchmarks need no download.
/// Their outputs are ordinary datasets (IDX or .npy files) that users could make themselves.
#include <cstdint>
#include <string>
#include <vector>

namespace graft::data {

/// Options for the MNIST-M-style target domain (Ganin & Lempitsky 2015 blended
/// MNIST digits with patches of BSDS500 photos: out = |patch - digit| per channel).
struct MnistMOptions {
  std::string mnist_dir;               ///< folder with MNIST's IDX files
  std::vector<std::string> photos;     ///< colour photos to cut patches from
  std::string out_dir;                 ///< where to write {train,t10k}-{images-idx4,labels-idx1}-ubyte
  uint64_t seed = 0;
  int64_t limit = 0;                   ///< only the first N images of each split (0: all), for tests
};

/// Builds the MNIST-M-style dataset. Each digit image gets a random crop of a random
/// photo (same size as the digit, photos rescaled at random scales for variety), and
/// the output pixel is |patch - digit| per channel. Writes RGB IDX files (N,H,W,3)
/// atomically, and a README.txt saying how they were made.
/// Throws graft::Error for missing MNIST files or no usable colour photos.
void make_mnistm(const MnistMOptions& opts);

/// Options for two interleaving moons (Ganin et al. JMLR 2016's toy problem).
struct MoonsOptions {
  std::string out_dir;    ///< writes {train,test}_x.npy (float32 (N,2)) and {train,test}_y.npy (int64)
  int64_t n_train = 300;  ///< points per split (half per moon)
  int64_t n_test = 300;
  double noise = 0.1;     ///< Gaussian noise standard deviation
  double rotate_deg = 0;  ///< rotation of the whole set about its centre (the target domain)
  uint64_t seed = 0;
};

/// Writes the two-moons dataset. The unrotated set and a rotated one made with the
/// same seed have the same points, turned by rotate_deg.
void make_moons(const MoonsOptions& opts);

/// The colour photos of the data cache ($GRAFT_DATA/photos), sorted.
std::vector<std::string> cached_photos();

}  // namespace graft::data
