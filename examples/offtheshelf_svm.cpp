// Off-the-shelf transfer: features of one layer of a pretrained network, then a linear
// SVM on a few labels of the target task (Donahue et al. 2014, Razavian et al. 2014).
//   offtheshelf_svm MODEL LAYER TRAIN_SPEC TEST_SPEC [LABELS_PER_CLASS]
//   offtheshelf_svm run/model.ckpt fc1 fashion-mnist:train fashion-mnist:test 10
#include <graft/classify/linear.h>
#include <graft/core/check.h>
#include <graft/data/registry.h>
#include <graft/features/extract.h>
#include <graft/models/open.h>

#include <iostream>

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: offtheshelf_svm MODEL LAYER TRAIN_SPEC TEST_SPEC [LABELS_PER_CLASS]\n";
    return 2;
  }
  auto train = graft::data::open_dataset(argv[3]);
  auto test = graft::data::open_dataset(argv[4]);
  const int64_t per_class = argc > 5 ? std::stoll(argv[5]) : 10;
  train = graft::data::labels_per_class(train, per_class, /*seed=*/1);

  // A checkpoint, a TorchScript file or a zoo name; zoo models take the data's shape.
  auto m = graft::models::open_model(argv[1], train->input_shape(), train->class_names());
  graft::features::ExtractOptions ex;
  ex.layers = {argv[2]};
  ex.pool = "avg";
  ex.norm = "l2";
  auto f_train = graft::features::extract_in_memory(*m.model, m.meta, train, ex);
  auto f_test = graft::features::extract_in_memory(*m.model, m.meta, test, ex);

  graft::classify::LinearOptions lo;  // C = 0: chosen by cross-validation on the training labels
  lo.folds = 3;
  graft::classify::LinearClassifier svm(lo);
  svm.fit(f_train.layers[0], f_train.labels, train->num_classes());
  const double acc = svm.predict(f_test.layers[0]).eq(f_test.labels).to(at::kDouble).mean().item<double>();
  std::cout << "layer " << argv[2] << " (" << f_train.layers[0].size(1) << " features), " << train->size()
            << " labelled examples, C " << svm.C() << ": test accuracy " << 100 * acc << "%\n";
  return 0;
} catch (const graft::Error& e) {
  std::cerr << "offtheshelf_svm: " << e.what() << "\n";
  return 1;
}
