// The kinds of bytecast stream behind one interface, for a rule that holds for byte and typed
// streams alike: it is one TEMPLATE_TEST_CASE over the kinds, not one copy per kind. Part of
// test_util.hpp (included at its end): a test includes test_util.hpp, never this file alone.
#pragma once

namespace bytecast_test {

// The asynchronous reads of a stream: a byte stream has all three, a typed stream async_next.
enum class read_op { next, next_chunk, read_some };

inline const char* name(read_op o) {
  switch (o) {
    case read_op::next: return "async_next";
    case read_op::next_chunk: return "async_next_chunk";
    case read_op::read_some: return "async_read_some";
  }
  return "?";
}

// Byte streams: a value is written as its characters and read back as text; the end of the
// stream is the empty span (a written value is never empty: an empty write delivers nothing).
struct byte_kind {
  using writer_type = bytecast::byte_writer;
  using stream_type = bytecast::byte_stream;
  using value_type = std::string;
  using next_type = std::span<const std::byte>;  // what async_next completes with and try_next returns
  static constexpr std::array read_ops{read_op::next, read_op::next_chunk, read_op::read_some};

  static value_type value(int i) { return std::to_string(i); }
  static int number(const value_type& v) { return std::stoi(v); }
  // The item a read returned; empty for the end (or an error, or nothing yet).
  static std::optional<value_type> item(next_type b) {
    if (b.empty()) return std::nullopt;
    return to_string(b);
  }
  static std::size_t queued(const stream_type& s) { return s.queued_chunks(); }
};

// Typed streams of T: a value is a T; the end of the stream is the nullopt.
template <class T>
struct typed_kind {
  using writer_type = bytecast::typed_writer<T>;
  using stream_type = bytecast::typed_stream<T>;
  using value_type = T;
  using next_type = std::optional<T>;
  static constexpr std::array read_ops{read_op::next};

  static value_type value(int i) {
    if constexpr (std::is_same_v<T, std::string>)
      return std::to_string(i);
    else
      return T(i);
  }
  static int number(const value_type& v) {
    if constexpr (std::is_same_v<T, std::string>)
      return std::stoi(v);
    else
      return static_cast<int>(v);
  }
  static std::optional<value_type> item(next_type v) { return v; }
  static std::size_t queued(const stream_type& s) { return s.queued_items(); }
};

// One asynchronous read of a stream of kind `Kind`, by one of `Kind::read_ops`, with a callback
// that records the item. Seeded so that an inline completion is visible; must outlive the operation.
template <class Kind>
struct any_read {
  using value_type = typename Kind::value_type;

  read_op op;
  int calls = 0;
  bytecast::error_code ec = not_called;
  std::optional<value_type> value;  // the item read: empty for the end, an error or a read of 0 bytes
  std::size_t n = 987654321;        // async_read_some only
  std::array<char, 64> buf{};       // async_read_some only

  explicit any_read(read_op o = read_op::next) : op(o) {}
  [[nodiscard]] bool empty() const { return !value.has_value(); }

  void start(typename Kind::stream_type& s) {
    start_with(s, [](auto handler) { return handler; });
  }
  // Started with its handler bound to `slot`: per-operation cancellation.
  void start(typename Kind::stream_type& s, asio::cancellation_slot slot) {
    start_with(s, [slot](auto handler) { return asio::bind_cancellation_slot(slot, std::move(handler)); });
  }

 private:
  template <class Wrap>
  void start_with(typename Kind::stream_type& s, Wrap wrap) {
    switch (op) {
      case read_op::next:
        s.async_next(wrap([this](bytecast::error_code e, typename Kind::next_type v) {
          record(e, Kind::item(std::move(v)));
        }));
        return;
      case read_op::next_chunk:
        if constexpr (std::is_same_v<Kind, byte_kind>) {
          s.async_next_chunk(
              wrap([this](bytecast::error_code e, bytecast::chunk c) { record(e, Kind::item(c.bytes())); }));
          return;
        }
        break;
      case read_op::read_some:
        if constexpr (std::is_same_v<Kind, byte_kind>) {
          s.async_read_some(asio::buffer(buf), wrap([this](bytecast::error_code e, std::size_t k) {
            n = k;
            record(e, k == 0 ? std::nullopt : std::optional<std::string>(std::in_place, buf.data(), std::min(k, buf.size())));
          }));
          return;
        }
        break;
    }
    FAIL(name(op) << " is not a read of this kind of stream");
  }

  void record(bytecast::error_code e, std::optional<value_type> v) {
    ++calls;
    ec = e;
    value = std::move(v);
  }
};

// Kinds for rules about limits and positions: every value is an int of fixed weight, so that a
// limit of `n * Kind::weight` holds n items of either kind. Byte writers carry an int as 4
// decimal digits (4 bytes), typed writers as an int (1 item).
struct byte_int_kind {
  using writer = bytecast::byte_writer;
  using stream = bytecast::byte_stream;
  static constexpr std::size_t weight = 4;
  static std::string text(int v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d", v);
    return buf;
  }
  static void write(writer& w, int v) { w.write(text(v)); }
  template <class Token>
  static auto async_write(writer& w, int v, Token&& token) {
    return w.async_write(asio::buffer(text(v)), std::forward<Token>(token));
  }
  // A read's result as an int: nullopt for the end (and on an error).
  static std::optional<int> number(bytecast::error_code ec, std::span<const std::byte> b) {
    if (ec || b.empty()) return std::nullopt;
    return std::stoi(to_string(b));
  }
  static std::optional<int> try_next(stream& s, bytecast::error_code& ec) { return number(ec, s.try_next(ec)); }
  static asio::awaitable<std::optional<int>> next(stream& s) {
    const auto b = co_await s.next();
    co_return number({}, b);
  }
  static std::size_t queued(const stream& s) { return s.queued_chunks(); }
};

struct typed_int_kind {
  using writer = bytecast::typed_writer<int>;
  using stream = bytecast::typed_stream<int>;
  static constexpr std::size_t weight = 1;
  static void write(writer& w, int v) { w.write(v); }
  template <class Token>
  static auto async_write(writer& w, int v, Token&& token) {
    return w.async_write(v, std::forward<Token>(token));
  }
  static std::optional<int> number(bytecast::error_code ec, const std::optional<int>& v) {
    return ec ? std::nullopt : v;
  }
  static std::optional<int> try_next(stream& s, bytecast::error_code& ec) {
    auto v = s.try_next(ec);
    return number(ec, v);
  }
  static asio::awaitable<std::optional<int>> next(stream& s) { co_return co_await s.next(); }
  static std::size_t queued(const stream& s) { return s.queued_items(); }
};

}  // namespace bytecast_test
