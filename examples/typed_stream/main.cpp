// typed_stream: one typed_writer<event> broadcasts application events (a std::variant) to three
// consumers that each do something different with them: a logger prints every event, a metrics
// counter tallies them per kind, an alert monitor reacts to errors only. The writer is closed by
// going out of scope, not by close(): every stream still gets every event, then std::nullopt.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/asio_backend.hpp" // asio::, standalone or Boost.Asio

#include <array>
#include <cstddef>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>


// --- The events -------------------------------------------------------------------------------

struct user_login {
  std::string user;
};
struct page_view {
  std::string user;
  std::string page;
};
struct purchase {
  std::string user;
  int cents;
};
struct error_event {
  int code;
  std::string message;
};
using event = std::variant<user_login, page_view, purchase, error_event>;

constexpr std::array<const char*, std::variant_size_v<event>> kind_names{"login", "page_view", "purchase", "error"};

template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

std::string describe(const event& e) {
  return std::visit(overloaded{
                        [](const user_login& l) { return "login: " + l.user; },
                        [](const page_view& v) { return "page_view: " + v.user + " -> " + v.page; },
                        [](const purchase& p) {
                          std::ostringstream s;
                          s << "purchase: " << p.user << " paid $" << p.cents / 100 << '.' << std::setw(2)
                            << std::setfill('0') << p.cents % 100;
                          return s.str();
                        },
                        [](const error_event& err) { return "error: " + std::to_string(err.code) + " " + err.message; },
                    },
                    e);
}

// --- Keeping the output in order --------------------------------------------------------------

// Consumers acknowledge each event on `acks` (a second typed writer), and the producer waits for
// all of them before publishing the next one, so the lines always print in the same order.
// A real program would not need this: each consumer reads at its own pace.
constexpr int consumer_count = 3;

asio::awaitable<void> wait_for_acks(bytecast::typed_stream<int>& acks) {
  for (int i = 0; i < consumer_count; ++i) co_await acks.next();
}

// --- The three consumers ----------------------------------------------------------------------

// Prints every event.
asio::awaitable<void> logger(bytecast::typed_stream<event> events, bytecast::typed_writer<int>& acks) {
  acks.write(1); // ready
  int n = 0;
  for (;;) {
    std::optional<event> e = co_await events.next();
    if (!e) break; // std::nullopt: the writer is gone and every event was delivered
    std::cout << "[Logger]  #" << ++n << ' ' << describe(*e) << '\n';
    acks.write(1);
  }
  std::cout << "[Logger]  end of stream after " << n << " events\n";
}

// Counts the events of each kind; reports when the stream ends.
asio::awaitable<void> metrics(bytecast::typed_stream<event> events, bytecast::typed_writer<int>& acks) {
  acks.write(1);
  std::array<int, std::variant_size_v<event>> per_kind{};
  long revenue_cents = 0;
  while (std::optional<event> e = co_await events.next()) {
    ++per_kind[e->index()];
    if (const auto* p = std::get_if<purchase>(&*e)) revenue_cents += p->cents;
    acks.write(1);
  }
  std::cout << "[Metrics] end of stream; events per kind:\n";
  for (std::size_t k = 0; k < per_kind.size(); ++k)
    std::cout << "[Metrics]   " << std::left << std::setw(10) << kind_names[k] << per_kind[k] << '\n';
  std::cout << "[Metrics]   revenue: $" << revenue_cents / 100 << '.' << std::right << std::setw(2)
            << std::setfill('0') << revenue_cents % 100 << std::setfill(' ') << '\n';
}

// Reacts to errors only; every other event is acknowledged and otherwise ignored.
asio::awaitable<void> alerts(bytecast::typed_stream<event> events, bytecast::typed_writer<int>& acks) {
  acks.write(1);
  int raised = 0;
  while (std::optional<event> e = co_await events.next()) {
    if (const auto* err = std::get_if<error_event>(&*e)) {
      ++raised;
      std::cout << "[Alerts]  ALERT " << raised << ": error " << err->code << " (" << err->message << ")"
                << (err->code >= 500 ? " -> paging the on-call engineer" : "") << '\n';
    }
    acks.write(1);
  }
  std::cout << "[Alerts]  end of stream; " << raised << " alerts raised\n";
}

// --- The producer -----------------------------------------------------------------------------

// Owns the writer: when this coroutine returns, the writer is destroyed, and that closes it.
asio::awaitable<void> produce(bytecast::typed_writer<event> writer, bytecast::typed_stream<int> acks) {
  const std::vector<event> script{
      user_login{"alice"},
      page_view{"alice", "/home"},
      page_view{"alice", "/pricing"},
      user_login{"bob"},
      purchase{"alice", 4999},
      error_event{503, "payment gateway timeout"},
      page_view{"bob", "/docs"},
      error_event{404, "no such page: /docz"},
  };

  co_await wait_for_acks(acks); // every consumer is waiting
  int n = 0;
  for (const event& e : script) {
    std::cout << "[Producer] publishing event " << ++n << " (" << kind_names[e.index()] << ")\n";
    writer.write(e); // each stream gets its own copy of the event
    co_await wait_for_acks(acks);
  }
  std::cout << "[Producer] published " << script.size() << " events to " << writer.stream_count()
            << " streams; the writer goes out of scope\n\n";
} // ~typed_writer(): like close(), every stream gets std::nullopt after the events above

int main() {
  std::cout << "=== Typed Stream Example ===\n\n";

  asio::io_context ctx; // one thread: the output comes out in the same order on every run
  bytecast::typed_writer<event> writer{ctx};
  std::cout << "Created typed_writer<event> with ID: " << writer.id() << '\n';

  bytecast::typed_writer<int> acks{ctx};
  auto ack_stream = acks.stream();
  asio::co_spawn(ctx, logger(writer.stream(), acks), asio::detached);
  asio::co_spawn(ctx, metrics(writer.stream(), acks), asio::detached);
  asio::co_spawn(ctx, alerts(writer.stream(), acks), asio::detached);
  std::cout << "Created " << consumer_count << " typed_stream<event> consumers: logger, metrics, alerts\n\n";

  asio::co_spawn(ctx, produce(std::move(writer), std::move(ack_stream)), asio::detached);
  ctx.run(); // returns once every consumer saw std::nullopt

  std::cout << "\n=== Example Complete ===\n\n"
            << "Key takeaways:\n"
            << "- typed_writer<T> broadcasts values of any copyable T, here a std::variant of events\n"
            << "- Each typed_stream<T> receives its own copy of every value, in the writer's order\n"
            << "- Consumers are independent: each decides what to do with each event\n"
            << "- Destroying the writer closes it: streams get every value, then std::nullopt\n";
}
