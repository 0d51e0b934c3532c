#include <gtest/gtest.h>
#include <torch/torch.h>

#include "graft/classify/linear.h"
#include "graft/core/check.h"
#include "graft/io/npy.h"
#include "test_util.h"

using namespace graft;
using classify::LinearClassifier;
using classify::LinearOptions;

namespace {
// k Gaussian blobs in d dimensions, n per class.
std::pair<torch::Tensor, torch::Tensor> blobs(int64_t n, int64_t k, int64_t d, double spread, uint64_t seed) {
  torch::manual_seed(seed);
  auto centres = torch::randn({k, d}) * 3;
  auto y = torch::arange(k).repeat_interleave(n);
  auto x = centres.index_select(0, y) + torch::randn({n * k, d}) * spread;
  return {x, y};
}
}  // namespace

TEST(Linear, SvmAndLogisticSeparateBlobsAndChooseCByCv) {
  auto [x, y] = blobs(30, 4, 5, 0.5, 1);
  for (std::string loss : {"squared_hinge", "hinge", "logistic"}) {
    LinearOptions o;
    o.loss = loss;
    o.C_grid = {0.01, 1};
    o.folds = 3;
    LinearClassifier c(o);
    c.fit(x, y);
    EXPECT_EQ(c.cv_scores().size(), 2u) << loss;
    EXPECT_GT((c.predict(x) == y).to(torch::kFloat).mean().item<float>(), 0.97) << loss;
    EXPECT_EQ(c.decision_function(x).sizes(), at::IntArrayRef({120, 4}));
  }
  // binary problems keep both classes' scores
  auto [xb, yb] = blobs(20, 2, 3, 0.5, 2);
  LinearOptions o;
  o.C = 1;
  LinearClassifier c(o);
  c.fit(xb, yb);
  EXPECT_GT((c.predict(xb) == yb).to(torch::kFloat).mean().item<float>(), 0.95);
}

TEST(Linear, LogisticMatchesScikitLearn) {
  test::TempDir d;
  auto [x, y] = blobs(25, 3, 4, 2.0, 3);  // overlapping: the optimum is interior
  io::write_npy(d / "x.npy", x);
  io::write_npy(d / "y.npy", y);
  LinearOptions o;
  o.loss = "logistic";
  o.C = 0.5;
  o.standardize = false;
  o.tol = 1e-4;
  LinearClassifier c(o);
  c.fit(x, y);
  io::write_npy(d / "p.npy", torch::softmax(c.decision_function(x), 1));
  auto r = test::run(test::python() + " -c \"import numpy as n; from sklearn.linear_model import LogisticRegression as L; "
                     "x=n.load('" + (d / "x.npy") + "'); y=n.load('" + (d / "y.npy") + "'); p=n.load('" + (d / "p.npy") +
                     "'); q=L(C=0.5, tol=1e-8, max_iter=5000).fit(x,y).predict_proba(x); "
                     "e=abs(p-q).max(); print('max diff', e); assert e < 2e-3\"");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(Linear, SavesLoadsAndRejectsBadInput) {
  test::TempDir d;
  auto [x, y] = blobs(10, 3, 4, 0.3, 4);
  LinearOptions o;
  o.C = 1;
  LinearClassifier c(o);
  c.fit(x, y);
  c.save(d / "c.lin", {{"layer", "fc1"}});
  nlohmann::json extra;
  auto back = LinearClassifier::load(d / "c.lin", &extra);
  EXPECT_TRUE(torch::allclose(back.decision_function(x), c.decision_function(x)));
  EXPECT_EQ(extra["layer"], "fc1");
  EXPECT_THROW(LinearClassifier::load(test::fixtures() + "/resnet_tiny.pt"), Error);

  LinearClassifier fresh(o);
  EXPECT_THROW(fresh.fit(x, y.narrow(0, 0, 5)), Error);                 // lengths differ
  auto nan = x.clone();
  nan[0][0] = std::nanf("");
  EXPECT_THROW(fresh.fit(nan, y), Error);                               // NaN features
  EXPECT_THROW(fresh.fit(x, torch::zeros_like(y)), Error);              // one class
  EXPECT_THROW(fresh.fit(x.narrow(1, 0, 1).squeeze(1), y), Error);      // wrong shape
  LinearOptions cv;
  cv.folds = 20;
  EXPECT_THROW(LinearClassifier(cv).fit(x, y), Error);                  // folds > class size
  cv.loss = "svm";
  EXPECT_THROW(LinearClassifier{cv}, Error);
  EXPECT_THROW(c.decision_function(torch::zeros({2, 9})), Error);
}

TEST(Linear, AveragePrecisionVocStyle) {
  EXPECT_DOUBLE_EQ(classify::average_precision(torch::tensor({0.9, 0.8, 0.1}), torch::tensor({1, 1, 0})), 1.0);
  // ranks: +, -, +  -> precision at recall 0.5 is 1, at recall 1 is 2/3
  EXPECT_NEAR(classify::average_precision(torch::tensor({0.9, 0.5, 0.4}), torch::tensor({1, 0, 1})), 0.5 + 0.5 * 2 / 3.0,
              1e-12);
  auto s = torch::tensor({{0.9, 0.1}, {0.2, 0.8}, {0.6, 0.7}});
  auto t = torch::tensor({{1, 0}, {0, 1}, {0, 1}});
  EXPECT_NEAR(classify::mean_average_precision(s, t), 1.0, 1e-12);
}

TEST(Linear, CliFitEvalPredictAndBadInput) {
  test::TempDir d;
  auto [x, y] = blobs(20, 3, 4, 0.4, 5);
  io::write_npy(d / "f.npy", x);
  io::write_npy(d / "f.labels.npy", y);
  auto fit = test::cli("linear fit --features " + (d / "f.npy") + " --C-grid 0.1,1 --folds 3 --out " + (d / "c.lin"));
  ASSERT_EQ(fit.code, 0) << fit.out;
  EXPECT_NE(fit.out.find("cross-validated accuracy"), std::string::npos) << fit.out;
  auto ev = test::cli("linear eval --classifier " + (d / "c.lin") + " --features " + (d / "f.npy"));
  ASSERT_EQ(ev.code, 0) << ev.out;
  EXPECT_NE(ev.out.find("confusion matrix"), std::string::npos) << ev.out;
  auto pr = test::cli("linear predict --classifier " + (d / "c.lin") + " --features " + (d / "f.npy"));
  EXPECT_NE(pr.out.find("index,label,score"), std::string::npos) << pr.out;

  io::write_npy(d / "short.npy", y.narrow(0, 0, 7));
  auto bad = test::cli("linear fit --features " + (d / "f.npy") + " --labels " + (d / "short.npy") + " --out " + (d / "x.lin"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("same length"), std::string::npos) << bad.out;
  io::write_npy(d / "int.npy", x.to(torch::kLong));
  auto dtype = test::cli("linear fit --features " + (d / "int.npy") + " --labels " + (d / "f.labels.npy") + " --out " + (d / "x.lin"));
  EXPECT_NE(dtype.out.find("float32"), std::string::npos) << dtype.out;
  auto nanx = x.clone();
  nanx[3][1] = std::numeric_limits<float>::infinity();
  io::write_npy(d / "nan.npy", nanx);
  auto nan = test::cli("linear fit --features " + (d / "nan.npy") + " --labels " + (d / "f.labels.npy") + " --C 1 --out " + (d / "x.lin"));
  EXPECT_NE(nan.out.find("NaN or infinite"), std::string::npos) << nan.out;
  EXPECT_FALSE(std::filesystem::exists(d / "x.lin"));
}
