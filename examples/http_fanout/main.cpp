// http_fanout: one live byte feed (stdin, or generated lines) broadcast to every client of
// `GET /stream`, as a chunked HTTP/1.1 response: one HTTP chunk per bytecast chunk, and the
// last-chunk `0\r\n\r\n` when the feed ends, so `curl -N http://127.0.0.1:PORT/stream` works.
// `GET /stats` answers with the server's stats as JSON. Other paths get 404, other methods 405,
// a malformed request 400 (and the connection closed).
// Everything else (options, the feed, signals, the pump) lives in ../common/fanout_*.hpp,
// shared with tcp_fanout.
#include <bytecast/bytecast.hpp> // first: it prepares Asio for coroutines on every compiler

#include "common/fanout_server.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t max_request_head = 8 * 1024; // request line and headers, larger: 431
constexpr auto request_timeout = 10s;              // to send them, slower: 408

// --- parsing (RFC 9112) ----------------------------------------------------------------------

struct request {
  std::string_view method;
  std::string_view target;  // as sent: "/stream?x=1", or "http://host/stream?x=1" (absolute-form)
  std::string_view path;    // the target's path, without its query: "/stream"
  std::string_view version; // "HTTP/1.1"
  bool http_1_1 = false;    // HTTP/1.1, or a later 1.x, which is 1.1 to us (RFC 9110 section 2.5)
};

// tchar of RFC 9110: what a method or a header name is made of.
bool is_token(std::string_view s) {
  constexpr std::string_view specials = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           specials.find(ch) != std::string_view::npos;
  });
}

bool is_visible(std::string_view s) { // VCHAR only: no controls, no spaces, no bytes >= 0x80
  return std::all_of(s.begin(), s.end(), [](unsigned char ch) { return ch > ' ' && ch < 0x7f; });
}

bool is_field_value(std::string_view s) { // visible characters, spaces and tabs, obs-text
  // As unsigned char: `char` is signed here, and obs-text (0x80-0xFF, e.g. UTF-8) is negative.
  return std::all_of(s.begin(), s.end(), [](unsigned char ch) { return ch == '\t' || (ch >= ' ' && ch != 0x7f); });
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
  });
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

// A field value without the optional whitespace around it.
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Host = uri-host [":" port] (RFC 9110 section 7.2, RFC 3986 section 3.2.2): a name or an IPv4
// address (a reg-name: letters, digits, "-._~!$&'()*+,;=" and %-escapes; possibly empty) or an
// IPv6 address in brackets, then maybe ":" and digits.
bool is_host(std::string_view s) {
  std::string_view port;
  if (s.starts_with('[')) {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return false;
    const std::string_view ip = s.substr(1, close - 1);
    const auto ipv6_char = [](char ch) {
      return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.';
    };
    if (ip.empty() || !std::all_of(ip.begin(), ip.end(), ipv6_char)) return false;
    port = s.substr(close + 1);
  } else {
    const std::size_t colon = s.find(':');
    const std::string_view name = s.substr(0, colon);
    constexpr std::string_view others = "-._~!$&'()*+,;=%";
    const auto name_char = [&](char ch) {
      return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
             others.find(ch) != std::string_view::npos;
    };
    if (!std::all_of(name.begin(), name.end(), name_char)) return false;
    port = s.substr(name.size());
  }
  return port.empty() || (port.front() == ':' && std::all_of(port.begin() + 1, port.end(), is_digit));
}

// The target's path without its query, from the origin-form "/stream?x=1" or the absolute-form
// "http://host:port/stream?x=1" (RFC 9112 section 3.2.2: every server must accept it; an
// empty path there is "/"). Empty when the target is neither.
std::string_view target_path(std::string_view target) {
  if (!target.starts_with('/')) {
    const std::size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return {};
    const std::string_view scheme = target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) return {};
    target.remove_prefix(scheme_end + 3);
    const std::size_t authority_end = std::min(target.find_first_of("/?"), target.size());
    const std::string_view authority = target.substr(0, authority_end);
    // An http URI needs a host (RFC 9110 section 4.2.1); user:password@ is refused with it.
    if (authority.empty() || authority.front() == ':' || !is_host(authority)) return {};
    target.remove_prefix(authority_end);
    if (target.empty() || target.front() == '?') return "/";
  }
  return target.substr(0, target.find('?'));
}

// Content-Length = 1*DIGIT (RFC 9110 section 8.6). Several such lines, or a list ("5, 5"), are
// valid only when every value is the same; `length` holds the first. False: a 400.
bool add_content_length(std::string_view value, std::optional<std::uint64_t>& length) {
  for (;;) {
    const std::size_t comma = value.find(',');
    const std::string_view item = trim(value.substr(0, comma));
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (item.empty() || !is_digit(item.front()) || ec != std::errc{} || end != item.data() + item.size()) return false;
    if (length && *length != n) return false;
    length = n;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

// Where the head ends (just past its empty line), or npos while it is incomplete. Lines end with
// CRLF; a bare LF is accepted too (RFC 9112 section 2.2).
std::size_t end_of_head(std::string_view data) {
  for (std::size_t lf = data.find('\n'); lf != std::string_view::npos; lf = data.find('\n', lf + 1)) {
    if (lf + 1 < data.size() && data[lf + 1] == '\n') return lf + 2;
    if (lf + 2 < data.size() && data[lf + 1] == '\r' && data[lf + 2] == '\n') return lf + 3;
  }
  return std::string_view::npos;
}

// Splits off the next line of `head`, without its CRLF (or LF).
std::string_view next_line(std::string_view& head) {
  std::size_t lf = head.find('\n');
  std::string_view line = head.substr(0, lf);
  head.remove_prefix(lf == std::string_view::npos ? head.size() : lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// 0 for a well-formed request, else the status to answer with (400, or 505 for HTTP/2 and up).
int parse_request(std::string_view head, request& r) {
  std::string_view line = next_line(head);
  while (line.empty() && !head.empty()) line = next_line(head); // empty lines before it: ignored

  // request-line = method SP request-target SP HTTP-version
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return 400;
  r.method = line.substr(0, sp1);
  r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.version = line.substr(sp2 + 1);
  if (!is_token(r.method) || !is_visible(r.target)) return 400;
  r.path = target_path(r.target);
  if (r.path.empty()) return 400;
  const bool version_form = r.version.size() == 8 && r.version.starts_with("HTTP/") && r.version[6] == '.' &&
                            r.version[5] >= '0' && r.version[5] <= '9' && r.version[7] >= '0' && r.version[7] <= '9';
  if (!version_form) return 400;
  if (r.version[5] != '1') return 505;
  r.http_1_1 = r.version[7] != '0';

  // field-line = field-name ":" OWS field-value OWS
  int hosts = 0;
  std::optional<std::uint64_t> content_length; // checked, though the server reads no body
  for (std::string_view field = next_line(head); !field.empty(); field = next_line(head)) {
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) return 400;
    std::string_view name = field.substr(0, colon); // no whitespace before the colon, no folding
    std::string_view value = field.substr(colon + 1);
    if (!is_token(name) || !is_field_value(value)) return 400;
    if (iequals(name, "Host") && (++hosts > 1 || !is_host(trim(value)))) return 400;
    if (iequals(name, "Content-Length") && !add_content_length(value, content_length)) return 400;
  }
  // RFC 9112 section 3.2: exactly one valid Host in HTTP/1.1, even with an absolute-form target
  // (whose host then counts instead: this server serves any host name).
  if (hosts == 0 && r.http_1_1) return 400;
  return 0;
}

std::string_view reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

// --- the connection --------------------------------------------------------------------------

enum class head_status { complete, too_large, gone };

// Reads until the empty line that ends the request head, at most max_request_head bytes.
asio::awaitable<head_status> read_head(asio::ip::tcp::socket& socket, std::string& data) {
  std::array<char, 1024> buffer;
  while (end_of_head(data) == std::string_view::npos) {
    if (data.size() >= max_request_head) co_return head_status::too_large;
    bytecast::error_code ec;
    const std::size_t room = std::min(buffer.size(), max_request_head - data.size());
    std::size_t n = co_await socket.async_read_some(asio::buffer(buffer.data(), room),
                                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return head_status::gone;
    data.append(buffer.data(), n);
  }
  co_return head_status::complete;
}

// A whole response with `body` (only its length for HEAD: `with_body` false), then the
// connection closes.
asio::awaitable<void> respond(fanout::server& server, fanout::client& c, int status, std::string_view content_type,
                              std::string_view body, bool with_body, std::string_view extra_headers = {}) {
  const std::string text(reason(status));
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " + text + "\r\n";
  response += "Content-Type: " + std::string(content_type) + "\r\n";
  response += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  response += "Connection: close\r\n";
  response += extra_headers;
  response += "\r\n";
  if (with_body) response += body;
  server.log(c, std::to_string(status) + " " + text);
  const bytecast::error_code ec = co_await server.write(c, asio::buffer(response));
  if (ec)
    server.log(c, "gone before the answer was sent (" + ec.message() + ")");
  else
    co_await fanout::close_gracefully(c.socket);
}

// A short text response, its status's reason, then the connection closes.
asio::awaitable<void> respond(fanout::server& server, fanout::client& c, int status, bool with_body = true,
                              std::string_view extra_headers = {}) {
  const std::string body = std::string(reason(status)) + "\n";
  co_await respond(server, c, status, "text/plain; charset=utf-8", body, with_body, extra_headers);
}

asio::awaitable<void> serve(fanout::server& server, fanout::client& c) {
  std::string data;
  asio::steady_timer deadline(co_await asio::this_coro::executor, request_timeout);
  bytecast::error_code ec;
  c.awaiting_request = true; // a shutdown closes the connection now: it has nothing to drain
  auto read = co_await (read_head(c.socket, data) || deadline.async_wait(asio::redirect_error(asio::use_awaitable, ec)));
  c.awaiting_request = false;
  if (read.index() == 1) co_return co_await respond(server, c, 408);
  switch (std::get<0>(read)) {
    case head_status::complete: break;
    case head_status::too_large: co_return co_await respond(server, c, 431);
    case head_status::gone:
      server.log(c, c.socket.is_open() ? "gone before its request was complete"
                                       : "closed before its request was complete: the server shuts down");
      co_return;
  }

  request req;
  std::string_view head(data.data(), end_of_head(data)); // what follows it is ignored
  if (int status = parse_request(head, req); status != 0) co_return co_await respond(server, c, status);

  const bool head_only = req.method == "HEAD";
  server.log(c, std::string(req.method) + " " + std::string(req.target) + " " + std::string(req.version));
  if (req.path == "/stats") {
    if (req.method != "GET" && !head_only) co_return co_await respond(server, c, 405, true, "Allow: GET, HEAD\r\n");
    co_return co_await respond(server, c, 200, "application/json", server.stats_json(), !head_only,
                               "Cache-Control: no-store\r\n");
  }
  if (req.path != "/stream") co_return co_await respond(server, c, 404, !head_only);
  if (req.method != "GET" && !head_only) co_return co_await respond(server, c, 405, true, "Allow: GET, HEAD\r\n");

  // HTTP/1.0 knows no chunked encoding: raw bytes, and the end of the connection ends the body.
  const bool chunked = req.http_1_1;
  const std::string response = std::string("HTTP/1.1 200 OK\r\n"
                                           "Content-Type: application/octet-stream\r\n"
                                           "Cache-Control: no-store\r\n") +
                               (chunked ? "Transfer-Encoding: chunked\r\n" : "") + "Connection: close\r\n\r\n";

  // A HEAD gets the head and no stream: a stream that nobody reads fills up, and under
  // --policy wait it would hold the feed back for everyone while this connection closes.
  if (head_only) {
    ec = co_await server.write(c, asio::buffer(response));
    if (ec)
      server.log(c, "gone before the response head was sent (" + ec.message() + ")");
    else
      co_await fanout::close_gracefully(c.socket);
    co_return;
  }

  // Subscribe before the response head goes out, so that nothing written meanwhile is missed.
  auto stream = server.subscribe();
  ec = co_await server.write(c, asio::buffer(response));
  if (ec) {
    server.log(c, "gone before the response head was sent (" + ec.message() + ")");
    co_return;
  }
  if (chunked)
    co_await server.stream_to(c, std::move(stream), fanout::chunked_framing{});
  else
    co_await server.stream_to(c, std::move(stream), fanout::raw_framing{});
}

} // namespace

int main(int argc, char** argv) {
  return fanout::run(argc, argv, "http_fanout",
                     "Broadcasts one live byte feed to every client of GET /stream, as a chunked HTTP/1.1 response.",
                     serve);
}
