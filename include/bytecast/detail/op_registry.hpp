// Copyright (c) 2026 The bytecast authors. Distributed under the Boost Software License, Version 1.0.
#ifndef BYTECAST_DETAIL_OP_REGISTRY_HPP
#define BYTECAST_DETAIL_OP_REGISTRY_HPP

// The registry of everything that parks operations on one execution context, and the
// per-context service that frees those operations when the context shuts down.

#include <bytecast/detail/config.hpp>
#include <bytecast/detail/operation.hpp>

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

BYTECAST_NAMESPACE_BEGIN
namespace detail {

class op_registry;

// Something that parks operations: a stream's queue, a writer. It is listed in its execution
// context's registry for as long as it lives.
class registry_node {
 public:
  registry_node(const registry_node&) = delete;
  registry_node& operator=(const registry_node&) = delete;

  // Called at shutdown with the registry's lock held: hands every parked operation (one whose
  // handler is not queued on an executor) to `out`, and forgets it.
  virtual void take_parked(std::vector<operation*>& out) = 0;

 protected:
  explicit registry_node(std::shared_ptr<op_registry> registry);
  ~registry_node() = default;
  // Every derived destructor calls this first, so that a shutdown never sees a half-destroyed node.
  void unregister() noexcept;

 private:
  friend class op_registry;
  std::shared_ptr<op_registry> registry_;
  registry_node* prev_ = nullptr; // guarded by the registry's mutex
  registry_node* next_ = nullptr; // guarded by the registry's mutex
};

// Every node whose executor belongs to one execution context. Shared by the context's service and
// the nodes, so that a node outliving its context (a stream kept after the io_context was
// destroyed) still unregisters safely.
//
// Lock order: this mutex, then a node's own lock (take_parked takes it). A node must therefore
// never be destroyed (its destructor takes this mutex) while its owner holds a node lock.
class op_registry {
 public:
  void add(registry_node* n) {
    std::lock_guard lock(mutex_);
    if (shut_down_) return;
    n->next_ = head_;
    if (head_ != nullptr) head_->prev_ = n;
    head_ = n;
  }

  void remove(registry_node* n) noexcept {
    std::lock_guard lock(mutex_);
    if (n->prev_ != nullptr) n->prev_->next_ = n->next_;
    if (n->next_ != nullptr) n->next_->prev_ = n->prev_;
    if (head_ == n) head_ = n->next_;
    n->prev_ = n->next_ = nullptr;
  }

  // Parked operations are destroyed after every lock is released: destroying a handler may destroy
  // streams and writers, and so nodes. Operations already posted sit in the executor's queue,
  // which destroys them itself.
  void shutdown() {
    std::vector<operation*> parked;
    {
      std::lock_guard lock(mutex_);
      shut_down_ = true;
      while (head_ != nullptr) {
        registry_node* n = std::exchange(head_, head_->next_);
        n->prev_ = n->next_ = nullptr;
        n->take_parked(parked);
      }
    }
    for (operation* op : parked) op->destroy();
  }

 private:
  std::mutex mutex_;
  registry_node* head_ = nullptr; // guarded by mutex_
  bool shut_down_ = false;        // guarded by mutex_
};

inline registry_node::registry_node(std::shared_ptr<op_registry> registry) : registry_(std::move(registry)) {
  if (registry_) registry_->add(this);
}

inline void registry_node::unregister() noexcept {
  if (registry_) registry_->remove(this);
}

// One per execution context, as Asio's own I/O objects have: when the context shuts down it
// destroys the handlers of operations parked in bytecast, so a stream or writer whose io_context is
// destroyed first neither leaks nor touches it later.
class stream_service : public asio::execution_context::service {
 public:
  using key_type = stream_service;
  inline static asio::execution_context::id id;

  explicit stream_service(asio::execution_context& ctx)
      : asio::execution_context::service(ctx), registry_(std::make_shared<op_registry>()) {}

  [[nodiscard]] const std::shared_ptr<op_registry>& registry() const noexcept { return registry_; }

 private:
  void shutdown() override { registry_->shutdown(); }

  std::shared_ptr<op_registry> registry_;
};

// The registry of the context that runs `ex`.
template <class Executor>
[[nodiscard]] std::shared_ptr<op_registry> registry_for(const Executor& ex) {
  return asio::use_service<stream_service>(asio::query(ex, asio::execution::context)).registry();
}

} // namespace detail
BYTECAST_NAMESPACE_END

#endif // BYTECAST_DETAIL_OP_REGISTRY_HPP
