// Unsupervised domain adaptation with DANN (Ganin et al., JMLR 2016): labelled source,
// unlabelled target; the model is chosen without target labels.
//   dann SOURCE_SPEC TARGET_SPEC TARGET_TEST_SPEC OUT_DIR [EPOCHS [ARCH]]
//   dann mnist:train mnistm:train@unlabelled mnistm:test run-dann 10 dann_mnist
#include <graft/adapt/adapt.h>
#include <graft/core/check.h>
#include <graft/data/registry.h>
#include <graft/models/open.h>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: dann SOURCE_SPEC TARGET_SPEC TARGET_TEST_SPEC OUT_DIR [EPOCHS [ARCH]]\n";
    return 2;
  }
  auto source = graft::data::open_dataset(argv[1]);
  auto target = graft::data::open_dataset(argv[2]);
  auto target_test = graft::data::open_dataset(argv[3]);
  // A fresh zoo network fed RGB so that gray source and colour target share one input.
  auto shape = source->input_shape();
  auto m = graft::models::open_model(argc > 6 ? argv[6] : "dann_mnist", shape, source->class_names(),
                                     /*channels=*/3);

  graft::adapt::AdaptConfig cfg;
  cfg.method = "dann";
  cfg.epochs = argc > 5 ? std::stoll(argv[5]) : 10;
  cfg.batch_size = 32;
  cfg.out_dir = argv[4];
  cfg.quiet = true;
  auto r = graft::adapt::run_adapt(m.model, m.meta, source, target, target_test, cfg);
  std::cout << "DANN: selected epoch " << r.selected_epoch << " (no target labels used); target test accuracy "
            << 100 * r.selected_target_acc << "%; model " << r.model_path << "\n";
  return 0;
} catch (const graft::Error& e) {
  std::cerr << "dann: " << e.what() << "\n";
  return 1;
}
