// Fine-tuning a TorchScript model (e.g. torch.jit.script(torchvision_model).save("m.pt")):
// keep its layers up to a cut, add a new head for the target classes, train.
//   finetune_torchscript MODEL.pt TRAIN_SPEC TEST_SPEC OUT_DIR [EPOCHS [CUT]]
#include <graft/core/check.h>
#include <graft/data/registry.h>
#include <graft/models/open.h>
#include <graft/train/finetune.h>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: finetune_torchscript MODEL.pt TRAIN_SPEC TEST_SPEC OUT_DIR [EPOCHS [CUT]]\n";
    return 2;
  }
  auto train = graft::data::open_dataset(argv[2]);
  auto test = graft::data::open_dataset(argv[3]);
  graft::data::DatasetPtr val;
  std::tie(train, val) = graft::data::split(train, /*fraction=*/0.2, /*seed=*/0);

  // TorchScript files carry no input description: take the data's, as RGB (gray images
  // are converted), the input most ImageNet-style networks expect.
  auto pretrained = graft::models::open_model(argv[1], train->input_shape(), train->class_names(), /*channels=*/3);
  graft::train::FinetuneOptions opts;  // Adam, lr 1e-3, early stopping on the validation loss
  opts.out_dir(argv[4]).epochs(argc > 5 ? std::stoll(argv[5]) : 3);
  if (argc > 6) opts.cut_after(argv[6]);
  opts.train.batch_size = 16;
  opts.train.quiet = true;
  auto r = graft::train::fine_tune(pretrained, train, val, test, opts,
                                   [](const std::string& w) { std::cerr << "warning: " << w << "\n"; });
  std::cout << "cut after " << r.plan.cut << ", " << r.plan.frozen.size() << " frozen layer(s); kept epoch "
            << r.train.best_epoch << "; test accuracy " << 100 * r.train.test.accuracy << "%; model "
            << r.train.model_path << "\n";
  return 0;
} catch (const graft::Error& e) {
  std::cerr << "finetune_torchscript: " << e.what() << "\n";
  return 1;
}
