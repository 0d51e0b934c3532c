// graft predict: labels and scores for images or a dataset, as CSV.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/features/offtheshelf.h"
#include "graft/core/files.h"
#include "graft/train/trainer.h"

namespace graft::cli {

void add_predict(CLI::App& app) {
  struct Opts {
    Common common;
    std::string model, data, out;
    std::vector<std::string> images;
    int64_t top = 1, batch = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("predict", "Predict labels and scores for image files or a dataset (CSV)");
  sub->add_option("--model", o->model, "graft checkpoint: a trained model (graft train) or an off-the-shelf "
                                       "classifier (graft transfer --save)")->required();
  sub->add_option("images", o->images, "image files");
  sub->add_option("--data", o->data, "a dataset spec instead of image files");
  sub->add_option("--top", o->top, "how many classes and scores per input")->capture_default_str();
  sub->add_option("--out", o->out, "write the CSV here (default: standard output)");
  sub->add_option("--batch-size", o->batch, "examples per batch (0: from the model's input size, 256 for digits down to 8 for 224x224 photos)")->capture_default_str();
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    GRAFT_CHECK(o->images.empty() != o->data.empty(), "give image files or --data, not both and not neither");
    graft::require_readable(o->model, "model");
    io::Checkpoint ck;
    if (io::is_checkpoint(o->model)) {
      ck = io::load_checkpoint(o->model);
    } else {  // a TorchScript file that carries graft's metadata (graft export, finetune's model.pt)
      auto ts = open_model(o->model, {}, {}, 0, "", 0);
      GRAFT_CHECK(ts.from_checkpoint, "--model '", o->model, "' is neither a graft checkpoint nor a TorchScript file ",
                  "carrying its classes and preprocessing (made by graft export)");
      ck.model = ts.model;
      ck.meta = ts.meta;
      ck.path = o->model;
    }
    require_finite(ck, o->model);
    auto dev = parse_device(o->common.device);
    ck.model->to(dev);
    ck.model->train(false);
    OpenedModel m{ck.model, ck.meta, true};
    // Scores of a batch and the names of the classes they rank.
    std::function<at::Tensor(const at::Tensor&)> score;
    std::vector<std::string> classes = m.meta.class_names;
    std::shared_ptr<features::OffTheShelfModel> ots;
    if (features::OffTheShelfModel::holds(ck)) {
      ots = std::make_shared<features::OffTheShelfModel>(features::OffTheShelfModel::from_checkpoint(ck));
      classes = ots->class_names;
      score = [ots](const at::Tensor& x) { return ots->scores(x); };
    } else {
      auto model = m.model;
      score = [model, dev](const at::Tensor& x) { return at::softmax(model->forward(x.to(dev)), 1).cpu(); };
    }
    const auto num_classes = static_cast<int64_t>(classes.size());
    GRAFT_CHECK(o->top >= 1 && o->top <= num_classes, "--top must be in [1, ", num_classes, "]");
    data::DatasetPtr d;
    std::vector<std::string> names;
    if (!o->data.empty()) {
      d = data::open_dataset(o->data);
    } else {
      std::vector<std::pair<std::string, int64_t>> items;
      for (const auto& p : o->images) {
        graft::require_readable(p, "image");
        items.emplace_back(p, data::kNoLabel);
      }
      int ch = m.meta.input_shape.size() == 3 ? static_cast<int>(m.meta.input_shape[0]) : 0;
      d = std::make_shared<data::ImageFileDataset>(items, classes, "images",
                                                   data::ImageFileOptions().channels_(ch == 1 || ch == 3 ? ch : 0));
      names = o->images;
    }
    // Images may differ in size: resize each to the model's input before batching.
    auto shape = m.meta.input_shape;
    auto pipe = train::input_pipeline(m.meta, d->input_shape());
    if (!o->images.empty() && shape.size() == 3) {
      data::Pipeline p = data::Pipeline::parse(str("resize=", shape[1], "x", shape[2]));
      pipe = p.then(pipe);
    }
    int64_t values = 1;
    for (auto v : shape) values *= std::max<int64_t>(v, 1);
    const int64_t batch = o->batch > 0 ? o->batch : default_batch_size(values, 256, /*inference=*/true);
    data::Loader loader(d, pipe, data::LoaderOptions().batch_size_(batch).shuffle_(false).workers_(default_workers()));
    loader.start_epoch(0);
    std::ostringstream csv;
    csv << (o->images.empty() ? "index" : "path") << ",label";
    for (int64_t k = 1; k <= o->top; ++k) csv << ",class" << k << ",score" << k;
    csv << "\n" << std::setprecision(6);
    c10::NoGradGuard ng;
    while (auto b = loader.next()) {
      auto probs = score(b->input);
      auto top = probs.topk(o->top, 1);
      at::Tensor vals = std::get<0>(top), idx = std::get<1>(top);
      for (int64_t i = 0; i < b->size(); ++i) {
        int64_t pos = b->index[i].item<int64_t>();
        if (names.empty()) csv << pos;
        else csv << graft::csv_field(names[static_cast<size_t>(pos)]);
        csv << "," << b->label[i].item<int64_t>();
        for (int64_t k = 0; k < o->top; ++k) {
          auto c = idx[i][k].item<int64_t>();
          csv << "," << graft::csv_field(classes[static_cast<size_t>(c)]) << "," << vals[i][k].item<float>();
        }
        csv << "\n";
      }
    }
    if (o->out.empty()) std::cout << csv.str();
    else graft::write_text_atomically(o->out, csv.str());
  });
}

}  // namespace graft::cli
