// graft data: make derived domains (MNIST-M-style, SynDigits-style, two moons) and inspect datasets.
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/core/files.h"

namespace graft::cli {

void add_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Make derived datasets and inspect datasets");
  data->require_subcommand(1);
  data->footer(
      "Dataset specs (accepted by every --data/--test/--source/--target option):\n"
      "  mnist:train|test  fashion-mnist:train|test  NAME:train|test (made by 'graft data make')\n"
      "  idx:IMAGES,LABELS  folder:DIR  list:FILE  npy:INPUTS[,LABELS]\n"
      "Views, applied left to right: @classes=5-9 @seed=N @per-class=N @limit=N @unlabelled @skip-bad @gray @rgb\n"
      "  e.g. fashion-mnist:train@classes=5-9@seed=1@per-class=10\n"
      "Data cache: $GRAFT_DATA, else ~/.cache/graft (filled by scripts/fetch_data.sh)");
  auto* make = data->add_subcommand("make", "Make a derived domain in the data cache");
  make->require_subcommand(1);

  auto mm = std::make_shared<data::MnistMOptions>();
  auto* mnistm = make->add_subcommand("mnistm", "MNIST digits blended with colour photo patches (|patch - digit|)");
  mnistm->add_option("--out", mm->out_dir, "output folder (default: CACHE/mnistm)");
  mnistm->add_option("--seed", mm->seed, "seed")->capture_default_str()->check(seed_check());
  mnistm->add_option("--limit", mm->limit, "only the first N images per split (0: all)")->capture_default_str();
  mnistm->add_option("--photos", mm->photos, "colour photos to cut patches from (default: CACHE/photos)");
  mnistm->callback([mm] {
    auto o = *mm;
    auto cache = graft::data_cache_dir();
    o.mnist_dir = cache + "/mnist";
    if (o.out_dir.empty()) o.out_dir = cache + "/mnistm";
    if (o.photos.empty()) o.photos = data::cached_photos();
    for (const auto& p : o.photos) graft::require_readable(p, "photo");
    data::make_mnistm(o);
    std::cout << "wrote " << o.out_dir << " (use it as mnistm:train / mnistm:test when in the cache)\n";
  });

  auto sd = std::make_shared<data::SynDigitsOptions>();
  auto no_photos = std::make_shared<bool>(false);
  auto* syn = make->add_subcommand("syndigits", "Digits rendered from the installed fonts (SynDigits-style), "
                                                "test fonts of other families than train fonts");
  syn->add_option("--out", sd->out_dir, "output folder (default: CACHE/syndigits)");
  syn->add_option("--seed", sd->seed, "seed")->capture_default_str();
  syn->add_option("--n-train", sd->n_train, "training images")->capture_default_str();
  syn->add_option("--n-test", sd->n_test, "test images")->capture_default_str();
  syn->add_option("--size", sd->size, "image side in pixels (28: MNIST's)")->capture_default_str();
  syn->add_option("--test-share", sd->test_share, "share of font families kept for test")->capture_default_str();
  syn->add_option("--fonts", sd->font_dirs, "folders searched for fonts")->capture_default_str();
  syn->add_option("--photos", sd->photos, "colour photos for backgrounds (default: CACHE/photos)");
  syn->add_flag("--no-photos", *no_photos, "backgrounds from solid colours and gradients only");
  syn->callback([sd, no_photos] {
    auto o = *sd;
    if (o.out_dir.empty()) o.out_dir = graft::data_cache_dir() + "/syndigits";
    if (*no_photos) o.photos.clear();
    else if (o.photos.empty()) o.photos = data::cached_photos();
    for (const auto& p : o.photos) graft::require_readable(p, "photo");
    data::make_syndigits(o);
    std::cout << "wrote " << o.out_dir << " (use it as syndigits:train / syndigits:test when in the cache)\n";
  });

  struct MoonsCli {
    data::MoonsOptions o;
    std::string name;
  };
  auto mo = std::make_shared<MoonsCli>();
  auto* moons = make->add_subcommand("moons", "Two interleaving moons, optionally rotated (a toy target domain)");
  moons->add_option("--rotate", mo->o.rotate_deg, "rotation in degrees")->capture_default_str();
  moons->add_option("--n", mo->o.n_train, "points per split")->capture_default_str();
  moons->add_option("--noise", mo->o.noise, "Gaussian noise")->capture_default_str();
  moons->add_option("--seed", mo->o.seed, "seed")->capture_default_str()->check(seed_check());
  moons->add_option("--name", mo->name, "dataset name in the cache (default moons or moons-rotD)");
  moons->add_option("--out", mo->o.out_dir, "output folder instead of the cache");
  moons->callback([mo] {
    auto o = mo->o;
    o.n_test = o.n_train;
    std::string name = mo->name.empty()
                           ? (o.rotate_deg == 0 ? "moons" : str("moons-rot", static_cast<int64_t>(std::lround(o.rotate_deg))))
                           : mo->name;
    if (o.out_dir.empty()) o.out_dir = graft::data_cache_dir() + "/" + name;
    data::make_moons(o);
    std::cout << "wrote " << o.out_dir << " (" << name << ":train / " << name << ":test)\n";
  });

  struct InfoOpts {
    Common common;
    std::string spec;
  };
  auto iop = std::make_shared<InfoOpts>();
  auto* info = data->add_subcommand("info", "Describe a dataset: size, example shape, classes and counts");
  info->add_option("spec", iop->spec, "dataset spec")->required();
  add_common(*info, iop->common);  // decoding image folders runs on the loader threads; --max-pixels
  info->callback([iop] {
    apply_common(iop->common);
    auto d = data::open_dataset(iop->spec);
    std::cout << d->describe() << "\nexample shape " << at::IntArrayRef(d->input_shape()) << "\nclasses "
              << d->num_classes() << ":\n";
    auto counts = data::class_counts(*d);
    for (size_t c = 0; c < counts.size(); ++c)
      std::cout << "  " << c << " " << d->class_names()[c] << ": " << counts[c] << "\n";
  });
}

}  // namespace graft::cli
