#pragma once
// Bridges a CancelToken to Asio's per-operation cancellation: bind an awaited operation to
// bridge.slot() and it stops (operation_aborted) when the token is cancelled, whichever thread
// cancels it. Kept out of cancel.hpp so that code without Asio does not pay for its headers.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <memory>

#include "molt/core/cancel.hpp"

namespace molt::core {

class AsioCancelBridge {
 public:
  AsioCancelBridge(const CancelToken& token, boost::asio::any_io_executor executor,
                   boost::asio::cancellation_type type = boost::asio::cancellation_type::terminal)
      : signal_(std::make_shared<boost::asio::cancellation_signal>()) {
    // Emitting is not thread-safe: hop onto the executor that runs the operation.
    registration_ = token.on_cancel([signal = signal_, executor, type] {
      boost::asio::post(executor, [signal, type] { signal->emit(type); });
    });
  }

  boost::asio::cancellation_slot slot() { return signal_->slot(); }

 private:
  std::shared_ptr<boost::asio::cancellation_signal> signal_;
  CancelRegistration registration_;
};

}  // namespace molt::core
