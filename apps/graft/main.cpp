// graft: transfer learning and domain adaptation on libtorch. Each subcommand is a
// thin shell over the library; main() turns every error into one line and exit 1.
#include <c10/util/Exception.h>

#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"

int main(int argc, char** argv) {
  graft::tune_allocator();
  CLI::App app{"graft: transfer learning and domain adaptation of deep networks (libtorch)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "graft 0.1.0");
  graft::cli::add_layers(app);
  graft::cli::add_train(app);
  graft::cli::add_finetune(app);
  graft::cli::add_extract(app);
  graft::cli::add_linear(app);
  graft::cli::add_transfer(app);
  graft::cli::add_adapt(app);
  graft::cli::add_pretrain(app);
  graft::cli::add_semisup(app);
  graft::cli::add_study(app);
  graft::cli::add_eval(app);
  graft::cli::add_predict(app);
  graft::cli::add_data(app);
  graft::cli::add_demo(app);
  graft::cli::add_launch(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const graft::Error& e) {
    std::cerr << "graft: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    std::cerr << "graft: error (libtorch): " << m.substr(0, m.find('\n')) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "graft: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
