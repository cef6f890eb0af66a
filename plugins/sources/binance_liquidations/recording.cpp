// Pieces of `binance_liquidations` that need no host: stream URLs.
#include <cctype>

#include "binance_liquidations.hpp"

namespace sluice::binance {

std::string stream_url(const std::string& url, const std::vector<std::string>& symbols) {
  if (symbols.empty()) return url;
  const size_t host_start = url.find("://");
  const size_t path_start = url.find('/', host_start == std::string::npos ? 0 : host_start + 3);
  std::string out = url.substr(0, path_start) + "/market/stream?streams=";
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i > 0) out += '/';
    for (char c : symbols[i]) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    out += "@forceOrder";
  }
  return out;
}

}  // namespace sluice::binance
