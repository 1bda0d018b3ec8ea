#pragma once
// What an export sees of the request it serves: its cancellation, its deadline, and a place
// for metrics. Handlers call check() at safe points; it throws the status the request then
// answers (Timeout past the deadline, Cancelled after __cancel__ or at shutdown).

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "molt/core/cancel.hpp"
#include "molt/core/deadline.hpp"
#include "molt/ipc/envelope.hpp"

namespace molt::worker {

class ExportContext {
 public:
  // `max_answer_bytes`: the largest answer this call can send (the frame limit less the
  // envelope's room, on the request's wire: ipc::payload_room); 0 for none.
  ExportContext(core::CancelToken token, core::Deadline deadline, std::size_t max_answer_bytes = 0)
      : token_(std::move(token)), deadline_(deadline), max_answer_bytes_(max_answer_bytes) {}

  const core::CancelToken& token() const noexcept { return token_; }
  core::Deadline deadline() const noexcept { return deadline_; }

  // True once the request was cancelled or its deadline passed.
  bool cancelled() const noexcept { return token_.cancelled() || deadline_.expired(); }
  // Throws core::Error(Timeout) or core::Error(Cancelled) when the work must stop.
  void check() const;
  // Sleeps for `duration`, waking early and throwing as check() does when the request stops.
  void sleep_for(std::chrono::microseconds duration) const;

  // Extra metrics for the response (e.g. db_* keys); numbers or short strings.
  void add_metric(std::string key, ipc::MetricValue value) {
    metrics_.emplace_back(std::move(key), std::move(value));
  }
  ipc::Metrics& metrics() noexcept { return metrics_; }

  // An export whose answer encoding depends on the request (e.g. db_query's result_format)
  // says so here; the answer then carries this codec instead of the manifest's codec_out.
  void set_codec_out(ipc::Codec codec) noexcept { codec_out_ = codec; }
  std::optional<ipc::Codec> codec_out() const noexcept { return codec_out_; }

  // The largest answer that can go out (0: no limit): an export that gathers a result of
  // unknown size (a query) stops once it is past this, instead of building it all first.
  std::size_t max_answer_bytes() const noexcept { return max_answer_bytes_; }

  // Set by typed exports so the response can tell decode time from handler time.
  std::chrono::nanoseconds decode_time{0};

 private:
  core::CancelToken token_;
  core::Deadline deadline_;
  std::size_t max_answer_bytes_;
  ipc::Metrics metrics_;
  std::optional<ipc::Codec> codec_out_;
};

}  // namespace molt::worker
