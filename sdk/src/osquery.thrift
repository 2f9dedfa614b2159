// The extension interface osquery speaks on its extension socket, written for Osprey from
// osquery's published IDL: service, method, struct and field shapes (names, ids, types)
// must stay exactly as osquery's, or its SDKs (osquery-python, osquery-go, the C++ SDK)
// cannot talk to us. Generated Rust: `thrift --gen rs` (Debian's thrift-compiler 0.17) into
// osquery.rs beside this file; `cargo xtask test` regenerates it and fails on a difference.

namespace rs osquery

// One plugin call's arguments, and its rows.
typedef map<string, string> ExtensionPluginRequest
typedef list<map<string, string>> ExtensionPluginResponse

// An option (flag) as the manager reports it.
struct InternalOptionInfo {
  1:string value,
  2:string default_value,
  3:string type,
}
typedef map<string, InternalOptionInfo> InternalOptionList

// What an extension says about itself when it registers.
struct InternalExtensionInfo {
  1:string name,
  2:string version,
  3:string sdk_version,
  4:string min_sdk_version,
}

// The id the manager gives a registered extension (0: the manager itself).
typedef i64 ExtensionRouteUUID
// Plugin name -> its routes (for a table: one row per column).
typedef map<string, ExtensionPluginResponse> ExtensionRouteTable
// Registry name ("table", "config", "logger", "distributed") -> its plugins.
typedef map<string, ExtensionRouteTable> ExtensionRegistry
typedef map<ExtensionRouteUUID, InternalExtensionInfo> InternalExtensionList

enum ExtensionCode {
  EXT_SUCCESS = 0,
  EXT_FAILED = 1,
  EXT_FATAL = 2,
}

struct ExtensionStatus {
  1:i32 code,
  2:string message,
  3:ExtensionRouteUUID uuid,
}

struct ExtensionResponse {
  1:ExtensionStatus status,
  2:ExtensionPluginResponse response,
}

exception ExtensionException {
  1:i32 code,
  2:string message,
  3:ExtensionRouteUUID uuid,
}

// What every extension serves (and the manager too).
service Extension {
  ExtensionStatus ping(),
  ExtensionResponse call(1:string registry, 2:string item, 3:ExtensionPluginRequest request),
  void shutdown(),
}

// What the manager serves on its socket.
service ExtensionManager extends Extension {
  InternalExtensionList extensions(),
  InternalOptionList options(),
  ExtensionStatus registerExtension(1:InternalExtensionInfo info, 2:ExtensionRegistry registry),
  ExtensionStatus deregisterExtension(1:ExtensionRouteUUID uuid),
  ExtensionResponse query(1:string sql),
  ExtensionResponse getQueryColumns(1:string sql),
}
