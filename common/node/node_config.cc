#include "common/node/node_config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/rpc/http_transport.h"
#include "common/base/logging.h"
#include "common/base/proto_time.h"
#include "common/base/status_macros.h"
#include "common/base/text_config.h"

namespace mailroom {
namespace {

namespace cfg = ::mailroom::config::v1;
namespace cv1 = ::mailroom::common::v1;

std::string Directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void Resolve(const std::string& base, std::string* path) {
  if (!path->empty() && (*path)[0] != '/') *path = absl::StrCat(base, "/", *path);
}

void ResolvePaths(const std::string& base, NodeConfig* config) {
  Resolve(base, config->mutable_tls()->mutable_ca_file());
  Resolve(base, config->mutable_tls()->mutable_cert_file());
  Resolve(base, config->mutable_tls()->mutable_key_file());
  Resolve(base, config->mutable_data_dir());
  if (config->has_logging()) Resolve(base, config->mutable_logging()->mutable_file());
  if (config->has_delivery()) {
    Resolve(base, config->mutable_delivery()->mutable_outbox_file());
    Resolve(base, config->mutable_delivery()->mutable_trust_store_file());
  }
  if (config->has_broker()) {
    Resolve(base, config->mutable_broker()->mutable_state_file());
    Resolve(base, config->mutable_broker()->mutable_key_file());
    if (config->broker().has_ha()) {
      cfg::BrokerHaConfig* ha = config->mutable_broker()->mutable_ha();
      Resolve(base, ha->mutable_etcd_ca_file());
      Resolve(base, ha->mutable_etcd_cert_file());
      Resolve(base, ha->mutable_etcd_key_file());
    }
  }
  if (config->has_psn()) Resolve(base, config->mutable_psn()->mutable_template_dir());
}

bool ValidHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int port;
  return absl::SimpleAtoi(address.substr(colon + 1), &port) && port >= 0 && port <= 65535;
}

// "127.x.y.z:port", "[::1]:port" or "localhost:port".
bool IsLoopbackHostPort(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host == "localhost" || host == "[::1]") return true;
  in_addr v4;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

cfg::NodeConfig::RoleConfigCase SectionFor(cv1::Role role) {
  switch (role) {
    case cv1::ROLE_BROKER: return cfg::NodeConfig::kBroker;
    case cv1::ROLE_PAN: return cfg::NodeConfig::kPan;
    case cv1::ROLE_PSN: return cfg::NodeConfig::kPsn;
    case cv1::ROLE_MNT: return cfg::NodeConfig::kMnt;
    default: return cfg::NodeConfig::ROLE_CONFIG_NOT_SET;
  }
}

absl::StatusOr<LogLevel> ToLogLevel(cfg::LogLevel level) {
  switch (level) {
    case cfg::LOG_LEVEL_UNSPECIFIED:
    case cfg::LOG_LEVEL_INFO: return LogLevel::kInfo;
    case cfg::LOG_LEVEL_TRACE: return LogLevel::kTrace;
    case cfg::LOG_LEVEL_DEBUG: return LogLevel::kDebug;
    case cfg::LOG_LEVEL_WARN: return LogLevel::kWarn;
    case cfg::LOG_LEVEL_ERROR: return LogLevel::kError;
    default: return absl::InvalidArgumentError("unknown log level");
  }
}

// Appends to a log file created with mode 0600 (whatever the umask): log lines are redacted,
// but they still name mailboxes, guests and hosts. An existing file keeps its mode (an
// operator may have opened it to a log shipper's group); a symbolic link is not followed.
class FileLogSink final : public LogSink {
 public:
  explicit FileLogSink(const std::string& path)
      : fd_(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) {}
  ~FileLogSink() override {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  void Write(absl::string_view line) override {
    const std::string record = absl::StrCat(line, "\n");
    absl::MutexLock lock(&mu_);
    // One write per line with O_APPEND: lines of several processes never interleave.
    if (write(fd_, record.data(), record.size()) < 0) return;
  }

 private:
  absl::Mutex mu_;
  const int fd_;
};

}  // namespace

const char* LogComponentName(cfg::LogComponent component) {
  switch (component) {
    case cfg::LOG_COMPONENT_BROKER: return kLogBroker;
    case cfg::LOG_COMPONENT_TOKEN: return kLogToken;
    case cfg::LOG_COMPONENT_SMTP: return kLogSmtp;
    case cfg::LOG_COMPONENT_OUTBOX: return kLogOutbox;
    case cfg::LOG_COMPONENT_PAN: return kLogPan;
    case cfg::LOG_COMPONENT_PSN: return kLogPsn;
    case cfg::LOG_COMPONENT_MNT: return kLogMnt;
    case cfg::LOG_COMPONENT_RPC: return kLogRpc;
    case cfg::LOG_COMPONENT_CONFIG: return kLogConfig;
    default: return nullptr;
  }
}

absl::Status ValidateNodeConfig(const NodeConfig& config, cv1::Role role,
                                const FieldLocator* locator) {
  ConfigErrors errors(locator);
  static const std::regex kNodeName("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  if (config.node_name().empty()) {
    errors.Add("node_name", "is required");
  } else if (!std::regex_match(config.node_name(), kNodeName)) {
    errors.Add("node_name", "must be 1-63 letters, digits, '.', '_' or '-'");
  }
  if (config.role() != role) {
    errors.Add("role", absl::StrCat("must be ", cv1::Role_Name(role), " for this program (is ",
                                    cv1::Role_Name(config.role()), ")"));
  }
  if (config.listen_address().empty()) {
    errors.Add("listen_address", "is required (host:port)");
  } else if (!ValidHostPort(config.listen_address())) {
    errors.Add("listen_address", "must be host:port with a port 0-65535");
  }
  for (const auto& [field, value] :
       {std::pair{"tls.ca_file", config.tls().ca_file()},
        std::pair{"tls.cert_file", config.tls().cert_file()},
        std::pair{"tls.key_file", config.tls().key_file()}}) {
    if (value.empty()) {
      errors.Add(field, "is required: mailroom never serves gRPC in plaintext");
    } else if (access(value.c_str(), R_OK) != 0) {
      errors.Add(field, absl::StrCat("cannot read ", value));
    }
  }
  const bool role_node = role == cv1::ROLE_PAN || role == cv1::ROLE_PSN || role == cv1::ROLE_MNT;
  if (!config.broker_target().empty() && config.broker_targets_size() > 0) {
    errors.Add("broker_targets", "set either broker_target (one broker) or broker_targets, not both");
  } else if (role_node && config.broker_target().empty() && config.broker_targets_size() == 0) {
    errors.Add("broker_target", "is required on PAN, PSN and MnT nodes (or broker_targets)");
  } else if (!config.broker_target().empty() && !ValidHostPort(config.broker_target())) {
    errors.Add("broker_target", "must be host:port");
  }
  for (int i = 0; i < config.broker_targets_size(); ++i) {
    const std::string field = absl::StrCat("broker_targets[", i, "]");
    if (!ValidHostPort(config.broker_targets(i))) {
      errors.Add(field, "must be host:port");
    }
    for (int j = 0; j < i; ++j) {
      if (config.broker_targets(j) == config.broker_targets(i)) {
        errors.Add(field, absl::StrCat("repeats broker_targets[", j, "]"));
      }
    }
  }
  if (!config.mnt_target().empty() && !ValidHostPort(config.mnt_target())) {
    errors.Add("mnt_target", "must be host:port");
  }
  if (config.data_dir().empty()) {
    errors.Add("data_dir", "is required");
  } else {
    struct stat info;
    if (stat(config.data_dir().c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      errors.Add("data_dir", absl::StrCat("is not a directory: ", config.data_dir()));
    } else if (access(config.data_dir().c_str(), W_OK) != 0) {
      errors.Add("data_dir", absl::StrCat("is not writable: ", config.data_dir()));
    }
  }
  if (!config.metrics_listen_address().empty() && !ValidHostPort(config.metrics_listen_address())) {
    errors.Add("metrics_listen_address", "must be host:port");
  } else if (!config.metrics_listen_address().empty() && !config.metrics_allow_remote() &&
             !IsLoopbackHostPort(config.metrics_listen_address())) {
    errors.Add("metrics_listen_address",
               "is not a loopback address, and metrics are served without authentication: "
               "listen on 127.0.0.1, or set metrics_allow_remote: true to serve them to anyone "
               "who can reach the port");
  }
  for (int i = 0; i < config.logging().component_levels_size(); ++i) {
    const auto& entry = config.logging().component_levels(i);
    if (LogComponentName(entry.component()) == nullptr) {
      errors.Add(absl::StrCat("logging.component_levels[", i, "].component"), "is required");
    }
  }
  const auto expected_section = SectionFor(role);
  if (config.role_config_case() != cfg::NodeConfig::ROLE_CONFIG_NOT_SET &&
      config.role_config_case() != expected_section) {
    errors.Add("role_config", absl::StrCat("the section does not match role ",
                                           cv1::Role_Name(role)));
  }
  if (config.has_broker()) {
    for (int i = 0; i < config.broker().secret_expiry_alarm_days_size(); ++i) {
      const int days = config.broker().secret_expiry_alarm_days(i);
      if (days < 0 || days > 365) {
        errors.Add(absl::StrCat("broker.secret_expiry_alarm_days[", i, "]"), "must be 0..365");
      }
    }
    const auto& limits = config.broker().send_limits();
    if (limits.messages_per_minute() < 0) {
      errors.Add("broker.send_limits.messages_per_minute", "must not be negative");
    }
    if (limits.recipients_per_day() < 0) {
      errors.Add("broker.send_limits.recipients_per_day", "must not be negative");
    }
    if (limits.max_connections() < 0) {
      errors.Add("broker.send_limits.max_connections", "must not be negative");
    }
    const cfg::BrokerHaConfig& ha = config.broker().ha();
    for (int i = 0; i < ha.etcd_endpoints_size(); ++i) {
      const std::string& endpoint = ha.etcd_endpoints(i);
      if (!absl::StartsWith(endpoint, "https://") && !IsLoopbackHttpUrl(endpoint)) {
        errors.Add(absl::StrCat("broker.ha.etcd_endpoints[", i, "]"),
                   "must be an https:// URL (plain http only on loopback, for tests)");
      }
    }
    if (ha.etcd_endpoints_size() > 0 && !ValidHostPort(ha.advertised_address())) {
      errors.Add("broker.ha.advertised_address", "must be host:port (required with etcd)");
    }
    if (ha.has_lease_ttl() && ha.lease_ttl().seconds() < 2) {
      errors.Add("broker.ha.lease_ttl", "must be at least 2 seconds");
    }
    if (ha.etcd_cert_file().empty() != ha.etcd_key_file().empty()) {
      errors.Add("broker.ha.etcd_cert_file", "etcd_cert_file and etcd_key_file go together");
    }
    const std::string& authority = config.broker().default_authority_host();
    if (!authority.empty() && !absl::StartsWith(authority, "https://") &&
        !IsLoopbackHttpUrl(authority)) {
      errors.Add("broker.default_authority_host",
                 "must be an https:// URL (plain http only on loopback, for tests)");
    }
  }
  if (config.has_delivery()) {
    const int64_t size = config.delivery().max_message_size_bytes();
    if (size < 0 || size > 150LL * 1024 * 1024) {
      errors.Add("delivery.max_message_size_bytes", "must be 0..157286400 (Exchange's 150 MiB)");
    }
    if (config.delivery().smtp_connections() < 0) {
      errors.Add("delivery.smtp_connections", "must not be negative");
    }
    if (config.delivery().backlog_alarm_queued() < 0) {
      errors.Add("delivery.backlog_alarm_queued", "must not be negative");
    }
    if (config.delivery().backlog_alarm_age().seconds() < 0 ||
        config.delivery().backlog_alarm_age().nanos() < 0) {
      errors.Add("delivery.backlog_alarm_age", "must not be negative");
    }
    const absl::Duration grace = FromProto(config.delivery().offline_grace());
    if (grace < absl::ZeroDuration() || grace > absl::Hours(1)) {
      errors.Add("delivery.offline_grace", "must be 0 to 1 hour");
    }
    if (config.delivery().offline_messages_per_minute() < 0 ||
        config.delivery().offline_messages_per_minute() > 10000) {
      errors.Add("delivery.offline_messages_per_minute", "must be 0 to 10000");
    }
  }
  return errors.ToStatus();
}

absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path, cv1::Role role) {
  NodeConfig config;
  FieldLocator locator(path, &config);
  MR_RETURN_IF_ERROR(LoadTextConfigFile(path, &config, &locator));
  ResolvePaths(Directory(path), &config);
  // In a Kubernetes StatefulSet every pod shares one config file; the pod's own name (its
  // certificate's CN) comes from the environment.
  if (const char* node_name = std::getenv("MAILROOM_NODE_NAME");
      node_name != nullptr && node_name[0] != '\0') {
    config.set_node_name(node_name);
  }
  // The same goes for elected brokers: each pod advertises its own address.
  if (config.broker().has_ha()) {
    std::string* advertised = config.mutable_broker()->mutable_ha()->mutable_advertised_address();
    *advertised = absl::StrReplaceAll(*advertised, {{"{node_name}", config.node_name()}});
  }
  MR_RETURN_IF_ERROR(ValidateNodeConfig(config, role, &locator));
  return config;
}

absl::Status ApplyLoggingConfig(const cfg::LoggingConfig& logging) {
  MR_ASSIGN_OR_RETURN(const LogLevel level, ToLogLevel(logging.default_level()));
  Logging::SetDefaultLevel(level);
  for (const auto& entry : logging.component_levels()) {
    const char* name = LogComponentName(entry.component());
    absl::StatusOr<LogLevel> component_level = ToLogLevel(entry.level());
    if (name == nullptr || !component_level.ok()) continue;
    Logging::SetComponentLevel(name, *component_level);
  }
  if (!logging.file().empty()) {
    auto sink = std::make_shared<FileLogSink>(logging.file());
    if (!sink->ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("logging.file: cannot open ", logging.file(), " for appending"));
    }
    Logging::SetSink(std::move(sink));
  }
  return absl::OkStatus();
}

TlsFiles TlsFilesOf(const NodeConfig& config) {
  return TlsFiles{config.tls().ca_file(), config.tls().cert_file(), config.tls().key_file()};
}

}  // namespace mailroom
