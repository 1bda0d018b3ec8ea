// One export for review-worker (molt_add_worker): a review's text in, a score out.
#include <boost/describe.hpp>
#include <string>

#include "molt/worker/export_registry.hpp"

namespace {

struct ReviewText {
  std::string text;
  int weight = 1;
};
BOOST_DESCRIBE_STRUCT(ReviewText, (), (text, weight))
MOLT_DEFAULTS(ReviewText, weight)

struct Score {
  std::int64_t score;
};
BOOST_DESCRIBE_STRUCT(Score, (), (score))

}  // namespace

void molt_register_score_review(molt::worker::ExportRegistry& registry) {
  registry.add<ReviewText, Score>(
      "score_review", molt::ipc::Codec::Json, molt::ipc::Codec::Json,
      [](const ReviewText& in, molt::worker::ExportContext& ctx) {
        ctx.check();
        return Score{static_cast<std::int64_t>(in.text.size()) * in.weight};
      });
}
