// FaultProxy: a TCP proxy for tests that stands between a client and a
// server (an S3 endpoint) and misbehaves on demand: it refuses connections,
// resets them after part of the server's reply, delays what it forwards, or
// plays a server that goes away in the middle of a transfer. Every fault it
// injects is counted, so a test can assert that the fault it set up fired.
//
// It listens on 127.0.0.1 on a port of its own (port(), endpoint()) and
// connects each accepted connection to the target. One thread accepts; one
// thread per connection relays both directions with poll(). The destructor
// stops and joins them all, closing every connection.
//
// Thread safety: every public method may be called from any thread while
// connections are being relayed. A fault set with Set() applies to the
// connections (or requests, see Fault::on_request) that come after it.
#ifndef STRATA_TESTS_TESTING_FAULT_PROXY_H_
#define STRATA_TESTS_TESTING_FAULT_PROXY_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/unique_fd.h"

namespace strata::testing {

class FaultProxy {
 public:
  struct Fault {
    enum Kind {
      kPass,        // forward everything
      kRefuse,      // reset the client's connection before anything is forwarded
      kResetReply,  // forward the request, then reset the client's connection
                    // after `reply_bytes` bytes of the server's reply (an
                    // interim HTTP answer, "100 Continue", that comes first
                    // is forwarded whole and not counted: the reply cut is
                    // the one sent once the request was handled)
      kDelay,       // wait `delay_ms` before forwarding each read, both ways
    };
    Kind kind = kPass;
    uint64_t reply_bytes = 0;
    int delay_ms = 0;
    // How many connections the fault applies to, then the proxy passes
    // (so that a client's retries succeed); -1: every one.
    int times = -1;
    // Empty: the fault applies to a connection from its start (kRefuse:
    // accepted, then reset at once). Else it applies from the first request
    // on a connection whose bytes contain this (for example "PUT
    // /bucket/key "): kRefuse resets the connection before forwarding that
    // request, kResetReply counts the reply bytes from there.
    std::string on_request;
  };

  // What went through, and which faults fired.
  struct Counts {
    uint64_t connections = 0;  // accepted
    uint64_t refused = 0;      // reset by kRefuse, or while down
    uint64_t resets = 0;       // reset mid-reply by kResetReply
    uint64_t delays = 0;       // reads delayed by kDelay
    uint64_t cut = 0;          // open connections reset when the server went down
    uint64_t bytes_up = 0;     // forwarded to the server
    uint64_t bytes_down = 0;   // forwarded to the client
  };

  // Forwards to `host` (an IPv4 address) and `port`. Aborts if it cannot
  // listen: there is no test without it.
  FaultProxy(const std::string& host, int port) {
    target_.sin_family = AF_INET;
    target_.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &target_.sin_addr) != 1) std::abort();
    listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listener_.get() < 0 ||
        bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        listen(listener_.get(), 64) != 0) {
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
    stop_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    down_signal_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (stop_.get() < 0 || down_signal_.get() < 0) std::abort();
    acceptor_ = std::thread([this] { Accept(); });
  }

  // Stops accepting, resets every open connection and joins every thread.
  ~FaultProxy() {
    Signal(stop_.get());
    acceptor_.join();
    std::vector<std::thread> relays;
    {
      std::scoped_lock lock(mu_);
      relays.swap(relays_);
    }
    for (std::thread& t : relays) t.join();
  }

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Replaces the fault (kPass: none). Connections a fault already applies
  // to keep it.
  void Set(Fault fault) {
    std::scoped_lock lock(mu_);
    fault_ = std::move(fault);
  }

  // The server goes away once `client_bytes` more bytes have been forwarded
  // to it: exactly that many pass, then every open connection is reset and
  // every new one refused, until Up().
  void GoDownAfter(uint64_t client_bytes) {
    if (client_bytes == 0) {
      GoDown();
      return;
    }
    budget_.store(client_bytes);
  }
  void GoDown() {
    budget_.store(kNoBudget);
    down_.store(true);
    Signal(down_signal_.get());
  }
  // The server is back: connections are forwarded again (with the fault
  // set, if any).
  void Up() {
    std::scoped_lock lock(mu_);
    budget_.store(kNoBudget);
    down_.store(false);
    uint64_t value;
    (void)!read(down_signal_.get(), &value, sizeof(value));
  }
  bool down() const { return down_.load(); }

  Counts counts() const {
    Counts c;
    c.connections = connections_.load();
    c.refused = refused_.load();
    c.resets = resets_.load();
    c.delays = delays_.load();
    c.cut = cut_.load();
    c.bytes_up = bytes_up_.load();
    c.bytes_down = bytes_down_.load();
    return c;
  }

 private:
  static constexpr uint64_t kNoBudget = std::numeric_limits<uint64_t>::max();

  // One accepted connection: the client's side and the server's.
  struct Link {
    UniqueFd client;
    UniqueFd server;
    bool armed = false;    // a fault applies to it
    Fault fault;           // which, once armed
    std::string seen;      // the tail of the client's bytes, to find on_request in
    uint64_t replied = 0;  // reply bytes forwarded since it was armed
  };

  static void Signal(int fd) {
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
  }

  // Resets the connection (RST, not FIN): what a client sees of a server
  // that died or a network that dropped it.
  static void Reset(UniqueFd& fd) {
    linger hard{1, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    fd.reset();
  }

  // Takes one use of the current fault, if it applies: to a connection just
  // accepted (`at_accept`), or to one whose client's latest bytes, `seen`,
  // hold Fault::on_request. Caller holds mu_.
  bool TakeFault(const std::string& seen, bool at_accept, Fault* out) {
    if (fault_.kind == Fault::kPass || fault_.times == 0) return false;
    if (at_accept != fault_.on_request.empty()) return false;
    if (!at_accept && seen.find(fault_.on_request) == std::string::npos) return false;
    if (fault_.times > 0) fault_.times--;
    *out = fault_;
    return true;
  }

  void Accept() {
    for (;;) {
      pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents == 0) continue;
      UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client.get() < 0) continue;
      connections_++;
      auto link = std::make_unique<Link>();
      link->client = std::move(client);
      bool refuse = down_.load();
      {
        std::scoped_lock lock(mu_);
        if (!refuse && TakeFault("", /*at_accept=*/true, &link->fault)) {
          link->armed = true;
          refuse = link->fault.kind == Fault::kRefuse;
        }
      }
      if (refuse) {
        refused_++;
        Reset(link->client);
        continue;
      }
      link->server.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (link->server.get() < 0 ||
          connect(link->server.get(), reinterpret_cast<const sockaddr*>(&target_),
                  sizeof(target_)) != 0) {
        Reset(link->client);  // as the server itself would have
        continue;
      }
      for (int fd : {link->client.get(), link->server.get()}) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      }
      std::scoped_lock lock(mu_);
      relays_.emplace_back([this, l = std::move(link)] { Relay(*l); });
    }
  }

  // Waits `ms` milliseconds, or less if the proxy stops. False if it stops.
  bool Wait(int ms) {
    pollfd p{stop_.get(), POLLIN, 0};
    return poll(&p, 1, ms) == 0;
  }

  // Writes all of `data` to the non-blocking `fd`. False if the peer is
  // gone or the proxy stops.
  bool SendAll(int fd, const char* data, size_t n) {
    while (n > 0) {
      ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
      if (w > 0) {
        data += w;
        n -= static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_.get(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return false;
      if (fds[1].revents != 0) return false;
    }
    return true;
  }

  // The length of the interim HTTP answers ("HTTP/1.1 100 Continue" and
  // the like, each whole) that `reply` starts with. On loopback such an
  // answer, written at once, arrives in one read.
  static uint64_t InterimAnswers(std::string_view reply) {
    uint64_t length = 0;
    while (reply.size() >= 12 && reply.substr(0, 7) == "HTTP/1." && reply[9] == '1') {
      const size_t end = reply.find("\r\n\r\n");
      if (end == std::string_view::npos) break;
      length += end + 4;
      reply.remove_prefix(end + 4);
    }
    return length;
  }

  // How many of `n` client bytes may go to the server before it goes down.
  uint64_t Allow(uint64_t n) {
    uint64_t budget = budget_.load();
    for (;;) {
      if (budget == kNoBudget) return n;
      const uint64_t take = std::min(n, budget);
      if (budget_.compare_exchange_weak(budget, budget - take)) {
        if (budget == take) GoDown();  // spent: down, once the bytes are sent
        return take;
      }
    }
  }

  // Relays one connection until either side closes, a fault ends it, the
  // server goes down or the proxy stops.
  void Relay(Link& l) {
    char buf[64 * 1024];
    bool client_open = true, server_open = true;  // for reading
    while (client_open || server_open) {
      pollfd fds[4] = {{client_open ? l.client.get() : -1, POLLIN, 0},
                       {server_open ? l.server.get() : -1, POLLIN, 0},
                       {stop_.get(), POLLIN, 0},
                       {down_signal_.get(), POLLIN, 0}};
      if (poll(fds, 4, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[2].revents != 0) break;
      if (down_.load()) {
        cut_++;
        break;
      }
      if (fds[0].revents != 0) {
        ssize_t n = read(l.client.get(), buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          if (n < 0) break;
          client_open = false;
          shutdown(l.server.get(), SHUT_WR);
        } else {
          if (!l.armed) {
            // Between reads only a tail too short to hold a whole match is
            // kept: one that straddles two reads is found, none twice.
            l.seen.append(buf, static_cast<size_t>(n));
            std::scoped_lock lock(mu_);
            if (TakeFault(l.seen, /*at_accept=*/false, &l.fault)) l.armed = true;
            const size_t keep = fault_.on_request.empty() ? 0 : fault_.on_request.size() - 1;
            if (l.seen.size() > keep) l.seen.erase(0, l.seen.size() - keep);
          }
          if (l.armed && l.fault.kind == Fault::kRefuse) {
            refused_++;
            break;
          }
          if (l.armed && l.fault.kind == Fault::kDelay) {
            delays_++;
            if (!Wait(l.fault.delay_ms)) break;
          }
          const uint64_t allowed = Allow(static_cast<uint64_t>(n));
          if (!SendAll(l.server.get(), buf, allowed)) break;
          bytes_up_ += allowed;
          if (allowed < static_cast<uint64_t>(n) || down_.load()) {
            cut_++;
            break;
          }
        }
      }
      if (fds[1].revents != 0) {
        ssize_t n = read(l.server.get(), buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          if (n < 0) break;
          server_open = false;
          shutdown(l.client.get(), SHUT_WR);
          continue;
        }
        uint64_t forward = static_cast<uint64_t>(n);
        bool reset = false;
        if (l.armed && l.fault.kind == Fault::kResetReply) {
          const uint64_t interim =
              l.replied == 0 ? InterimAnswers(std::string_view(buf, forward)) : 0;
          forward = interim + std::min(forward - interim, l.fault.reply_bytes - l.replied);
          l.replied += forward - interim;
          reset = static_cast<uint64_t>(n) > interim && l.replied == l.fault.reply_bytes;
        }
        if (l.armed && l.fault.kind == Fault::kDelay) {
          delays_++;
          if (!Wait(l.fault.delay_ms)) break;
        }
        if (!SendAll(l.client.get(), buf, forward)) break;
        bytes_down_ += forward;
        if (reset) {
          resets_++;
          break;
        }
      }
    }
    // However it ended, the client sees a reset unless both sides closed.
    if (client_open || server_open) Reset(l.client);
    l.client.reset();
    l.server.reset();
  }

  sockaddr_in target_{};
  int port_ = 0;
  UniqueFd listener_;
  UniqueFd stop_;         // readable once the proxy stops
  UniqueFd down_signal_;  // readable while the server is down
  std::thread acceptor_;

  std::mutex mu_;
  Fault fault_;                      // guarded by mu_
  std::vector<std::thread> relays_;  // guarded by mu_

  std::atomic<bool> down_{false};
  std::atomic<uint64_t> budget_{kNoBudget};
  std::atomic<uint64_t> connections_{0}, refused_{0}, resets_{0}, delays_{0}, cut_{0};
  std::atomic<uint64_t> bytes_up_{0}, bytes_down_{0};
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_FAULT_PROXY_H_
