// Certificates for local TLS test servers, generated at test time: a CA of its own and a
// server certificate for 127.0.0.1 / localhost signed by it, all as PEM text.
#pragma once

#include <string>

namespace sluice::testing {

struct TestCertificates {
  std::string ca_pem;    // give clients this as their ca_file
  std::string cert_pem;  // the server's certificate
  std::string key_pem;   // the server's private key
};

// The CA is named ca_name plus a suffix unique to this call. Throws std::runtime_error naming
// the OpenSSL step that failed.
TestCertificates make_test_certificates(const std::string& ca_name);

}  // namespace sluice::testing
