#pragma once
/// Builders of derived domains, so that adaptation benchmarks need no download.
/// Their outputs are ordinary datasets (IDX or .npy files) that users could make themselves.
#include <cstdint>
#include <string>
#include <utility>
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

/// Options for the SynDigits-style domain (Ganin & Lempitsky 2015 rendered digits from
/// Windows fonts; graft renders them from the TrueType/OpenType/Type 1 fonts installed,
/// e.g. Debian's font packages listed in scripts/setup.sh).
struct SynDigitsOptions {
  std::vector<std::string> font_dirs = {"/usr/share/fonts", "/usr/local/share/fonts"};  ///< searched recursively
  std::vector<std::string> photos;  ///< colour photos for textured backgrounds (may be empty: then none)
  std::string out_dir;              ///< where to write {train,t10k}-{images-idx4,labels-idx1}-ubyte
  uint64_t seed = 0;
  int64_t n_train = 25000;
  int64_t n_test = 9000;
  int64_t size = 28;                ///< output images are size x size RGB (28: MNIST's size)
  double test_share = 0.25;         ///< share of font families kept for the test split
};

/// One usable font face: file, face index in it, family and style names.
struct FontFace {
  std::string file;
  int64_t index = 0;
  std::string family, style;
};

/// Faces under `dirs` (files ending .ttf .otf .ttc .t1 .pfb) that draw all ten digits as ten
/// distinct non-empty glyphs whose names (where the face names glyphs) are zero..nine, one
/// per (family, style) (OpenType preferred over Type 1), sorted by family then style.
/// Dingbat faces (digits mapped to symbols) and keycap faces (a frame round each glyph) are
/// left out.
std::vector<FontFace> find_digit_fonts(const std::vector<std::string>& dirs);

/// Splits faces by family group (the family name's first word, so that Go and Go Mono, or
/// Nimbus Sans and Nimbus Sans Narrow, stay together): a group's faces are all in train or
/// all in test. Groups are ordered by a fixed hash of their name (independent of the seed
/// and of which other fonts are installed) and the first round(test_share * groups) go to
/// test (at least one group each side). Metric clones under other names (Arimo, Liberation
/// Sans, Nimbus Sans) are different groups.
/// Throws graft::Error for fewer than two families.
/// Ensures: the two lists share no family group and together hold every face.
std::pair<std::vector<FontFace>, std::vector<FontFace>> split_fonts_by_family(const std::vector<FontFace>& faces,
                                                                              double test_share);

/// Builds the SynDigits-style dataset: digit i % 10 (so labels are balanced), in order
/// shuffled by the seed, drawn with a random face of its split, random stroke weight,
/// height (45-85% of the image), rotation (+-15 degrees), shear, position, blur, and a
/// foreground colour contrasting with a background that is a solid colour, a linear
/// gradient or a photo crop. Rendered at twice the size and reduced (anti-aliased).
/// Deterministic given the seed and the installed fonts. Writes RGB IDX files (N,H,W,3),
/// fonts.txt (the faces of each split) and README.txt, each atomically.
/// Throws graft::Error when no font draws the digits or fewer than two families are found.
void make_syndigits(const SynDigitsOptions& opts);

/// The colour photos of the data cache ($GRAFT_DATA/photos), sorted.
std::vector<std::string> cached_photos();

}  // namespace graft::data
