#pragma once
// A loopback HTTP/1.1 server for upstream-client tests: answers every request with one canned
// response (status line, headers and body exactly as given; set_response replaces it) and closes
// the connection. Records the raw requests it read. Runs its accept loop on its own thread until
// destroyed. Thread-safe.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace isartor::testing {

class CannedHttpServer {
 public:
  // `response`: the whole response, e.g. "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n...".
  explicit CannedHttpServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("CannedHttpServer: cannot listen on loopback");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedHttpServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  CannedHttpServer(const CannedHttpServer&) = delete;
  CannedHttpServer& operator=(const CannedHttpServer&) = delete;

  std::string url(const std::string& path = "/v1/chat/completions") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  // Answers the requests accepted from now on.
  void set_response(std::string response) {
    std::lock_guard lock(mu_);
    response_ = std::move(response);
  }
  // The raw requests received so far.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stopping_) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string request = read_request(client);
      std::string response;
      {
        std::lock_guard lock(mu_);
        requests_.push_back(std::move(request));
        response = response_;
      }
      for (std::size_t sent = 0; sent < response.size();) {
        const ssize_t n = ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
      }
      ::close(client);
    }
  }

  // Headers, then as many body bytes as Content-Length says.
  static std::string read_request(int client) {
    std::string data;
    char buffer[4096];
    std::size_t wanted = std::string::npos;
    while (data.size() < wanted) {
      const ssize_t n = ::recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      data.append(buffer, static_cast<std::size_t>(n));
      const auto end = data.find("\r\n\r\n");
      if (wanted == std::string::npos && end != std::string::npos) {
        const auto at = data.find("Content-Length: ");
        const std::size_t length = at != std::string::npos && at < end ? std::stoul(data.substr(at + 16)) : 0;
        wanted = end + 4 + length;
      }
    }
    return data;
  }

  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace isartor::testing
